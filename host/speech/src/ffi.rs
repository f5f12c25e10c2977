//! The part of the libespeak-ng C API used here, resolved at run time with
//! libloading (`speak_lib.h`, API revision 12).
//!
//! Everything in this module runs on the single speech thread (see
//! `tts.rs`): the library keeps global state and is not re-entrant.
#![allow(unsafe_code)]

use std::ffi::{CString, c_char, c_int, c_short, c_uint, c_void};

use libloading::Library;

/// `AUDIO_OUTPUT_SYNCHRONOUS`: `espeak_Synth` returns when synthesis is done,
/// handing the audio to the callback on the calling thread.
const AUDIO_OUTPUT_SYNCHRONOUS: c_int = 2;
/// `espeakINITIALIZE_DONT_EXIT`: report missing data instead of `exit(1)`.
const INITIALIZE_DONT_EXIT: c_int = 0x8000;
/// `POS_CHARACTER`.
const POS_CHARACTER: c_int = 1;
/// `espeakCHARS_UTF8`. No `espeakSSML`/`espeakPHONEMES`: text is plain text.
const CHARS_UTF8: c_uint = 1;
/// `espeakRATE` parameter (words per minute).
const PARAM_RATE: c_int = 1;
/// `espeakEVENT_LIST_TERMINATED`.
const EVENT_LIST_TERMINATED: c_int = 0;
/// `EE_OK`.
const EE_OK: c_int = 0;

/// `espeak_EVENT`; only `kind` and `user_data` are read.
#[repr(C)]
struct Event {
    kind: c_int,
    unique_identifier: c_uint,
    text_position: c_int,
    length: c_int,
    audio_position: c_int,
    sample: c_int,
    user_data: *mut c_void,
    /// `union { int number; const char *name; char string[8]; }`.
    id: *const c_void,
}

type SynthCallback = unsafe extern "C" fn(*mut c_short, c_int, *mut Event) -> c_int;
type InitializeFn = unsafe extern "C" fn(c_int, c_int, *const c_char, c_int) -> c_int;
type SetSynthCallbackFn = unsafe extern "C" fn(SynthCallback);
type SynthFn = unsafe extern "C" fn(
    *const c_void,
    usize,
    c_uint,
    c_int,
    c_uint,
    c_uint,
    *mut c_uint,
    *mut c_void,
) -> c_int;
type SetVoiceByNameFn = unsafe extern "C" fn(*const c_char) -> c_int;
type SetParameterFn = unsafe extern "C" fn(c_int, c_int, c_int) -> c_int;
type TerminateFn = unsafe extern "C" fn() -> c_int;

/// Samples collected by [`synth_callback`] for one `espeak_Synth` call.
struct Collector {
    samples: Vec<i16>,
    max: usize,
    truncated: bool,
}

/// The synth callback: appends the block to the [`Collector`] named by the
/// event list's `user_data`. Returns 1 (abort) past the collector's limit.
unsafe extern "C" fn synth_callback(wav: *mut c_short, n: c_int, events: *mut Event) -> c_int {
    let mut user_data: *mut c_void = std::ptr::null_mut();
    if !events.is_null() {
        let mut e = events;
        loop {
            // SAFETY: espeak-ng passes an array of events terminated by an
            // entry of kind LIST_TERMINATED; we stop at that entry and never
            // read past it.
            let ev = unsafe { &*e };
            if !ev.user_data.is_null() {
                user_data = ev.user_data;
                break;
            }
            if ev.kind == EVENT_LIST_TERMINATED {
                break;
            }
            // SAFETY: `e` is not the terminator, so the next entry exists.
            e = unsafe { e.add(1) };
        }
    }
    if user_data.is_null() {
        return 0;
    }
    // SAFETY: the only user_data passed to espeak_Synth is a `&mut Collector`
    // that lives on the stack of `Espeak::synth`, which is blocked inside the
    // synchronous espeak_Synth call for as long as callbacks can happen; no
    // other reference to it exists meanwhile.
    let collector = unsafe { &mut *user_data.cast::<Collector>() };
    if !wav.is_null() && n > 0 {
        // SAFETY: espeak-ng hands over `n` valid samples at `wav`.
        let block = unsafe { std::slice::from_raw_parts(wav, n as usize) };
        let room = collector.max.saturating_sub(collector.samples.len());
        if block.len() > room {
            collector.samples.extend_from_slice(&block[..room]);
            collector.truncated = true;
            return 1;
        }
        collector.samples.extend_from_slice(block);
    }
    0
}

/// An opened (and, after [`Espeak::initialize`], initialised) libespeak-ng.
pub(crate) struct Espeak {
    initialize: InitializeFn,
    set_synth_callback: SetSynthCallbackFn,
    synth: SynthFn,
    set_voice_by_name: SetVoiceByNameFn,
    set_parameter: SetParameterFn,
    terminate: TerminateFn,
    initialised: bool,
    /// Kept last so the function pointers above never outlive it.
    _library: Library,
}

/// libloading's error with its whole `source()` chain, each cause once.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        cause = c.source();
    }
    text
}

/// Resolves `name` as a `T` function pointer.
///
/// # Safety
/// `T` must be the exact C signature of the symbol.
unsafe fn symbol<T: Copy>(lib: &Library, name: &str) -> Result<T, String> {
    // SAFETY: the caller guarantees T matches the symbol's signature; the
    // pointer is copied out and only used while `lib` is alive (Espeak keeps it).
    unsafe { lib.get::<T>(name.as_bytes()) }
        .map(|s| *s)
        .map_err(|e| format!("symbol {name}: {}", error_chain(&e)))
}

impl Espeak {
    /// Opens the library at `path` and resolves the functions used.
    pub(crate) fn open(path: &str) -> Result<Self, String> {
        // SAFETY: loading libespeak-ng runs its ELF constructors, which only
        // set up static data; no other code of ours depends on them.
        let lib = unsafe { Library::new(path) }
            .map_err(|e| format!("cannot load {path}: {}", error_chain(&e)))?;
        // SAFETY (all six): the types are the prototypes of speak_lib.h.
        unsafe {
            Ok(Espeak {
                initialize: symbol(&lib, "espeak_Initialize")?,
                set_synth_callback: symbol(&lib, "espeak_SetSynthCallback")?,
                synth: symbol(&lib, "espeak_Synth")?,
                set_voice_by_name: symbol(&lib, "espeak_SetVoiceByName")?,
                set_parameter: symbol(&lib, "espeak_SetParameter")?,
                terminate: symbol(&lib, "espeak_Terminate")?,
                initialised: false,
                _library: lib,
            })
        }
    }

    /// Initialises in synchronous mode without `exit()` on errors and
    /// installs the callback; returns the library's sample rate. Fails when
    /// the English voice (and so the data) cannot be loaded.
    pub(crate) fn initialize(&mut self) -> Result<u32, String> {
        // SAFETY: called once, on the speech thread, before any other call;
        // NULL path means the default data location; DONT_EXIT keeps a
        // missing data folder from terminating the process.
        let rate = unsafe {
            (self.initialize)(
                AUDIO_OUTPUT_SYNCHRONOUS,
                500,
                std::ptr::null(),
                INITIALIZE_DONT_EXIT,
            )
        };
        self.initialised = true;
        // SAFETY: synth_callback has the t_espeak_callback signature and
        // stays valid as long as the library is loaded (it is our code).
        unsafe { (self.set_synth_callback)(synth_callback) };
        if rate <= 0 {
            return Err(format!("espeak_Initialize failed ({rate})"));
        }
        // With DONT_EXIT a missing data folder is only reported on stderr and
        // the sample rate is still returned: loading a voice is the real check.
        if !self.set_voice("en") {
            return Err("espeak-ng data not found: cannot load voice \"en\" \
                 (is espeak-ng-data installed?)"
                .to_owned());
        }
        Ok(rate as u32)
    }

    /// Selects a voice by name (`en`, `de`, `en-us`); false if unknown.
    pub(crate) fn set_voice(&mut self, name: &str) -> bool {
        let Ok(c) = CString::new(name) else {
            return false;
        };
        // SAFETY: initialised, single thread, `c` is a valid C string for
        // the duration of the call.
        unsafe { (self.set_voice_by_name)(c.as_ptr()) == EE_OK }
    }

    /// Sets the speaking rate in words per minute.
    pub(crate) fn set_rate(&mut self, wpm: i32) {
        // SAFETY: initialised, single thread, plain integer arguments.
        unsafe { (self.set_parameter)(PARAM_RATE, wpm, 0) };
    }

    /// Synthesises `text` at the library's rate; at most `max` samples.
    /// Returns the samples and whether they were cut at `max`.
    pub(crate) fn synth(&mut self, text: &CString, max: usize) -> Result<(Vec<i16>, bool), String> {
        let mut collector = Collector {
            samples: Vec::new(),
            max,
            truncated: false,
        };
        let bytes = text.as_bytes_with_nul();
        // SAFETY: initialised, single thread. `text` is NUL terminated and
        // outlives the synchronous call; user_data points to `collector`,
        // which outlives the call and is only touched by synth_callback
        // during it (see there).
        let rc = unsafe {
            (self.synth)(
                bytes.as_ptr().cast(),
                bytes.len(),
                0,
                POS_CHARACTER,
                0,
                CHARS_UTF8,
                std::ptr::null_mut(),
                (&raw mut collector).cast(),
            )
        };
        if rc != EE_OK && !collector.truncated {
            return Err(format!("espeak_Synth failed ({rc})"));
        }
        Ok((collector.samples, collector.truncated))
    }
}

impl Drop for Espeak {
    fn drop(&mut self) {
        if self.initialised {
            // SAFETY: on the speech thread, after its last call; frees the
            // library's buffers before the library is unloaded.
            unsafe { (self.terminate)() };
        }
    }
}
