//! WAV (RIFF) prompts and recordings.
//!
//! Prompts are accepted only in the formats a G.711 call can play without resampling:
//! 8 kHz mono PCM16 (format 1), µ-law (format 7) and A-law (format 6), also when wrapped
//! in `WAVE_FORMAT_EXTENSIBLE`. Anything else is refused with an error that names the
//! format found (e.g. "PCM 16-bit, 2 channels, 44100 Hz"), so an operator uploading a
//! CD-quality file learns what to convert. Unknown chunks (`LIST`, `fact`, ...) are
//! skipped; a `data` size larger than the file (streamed writers) is clamped.

use std::fmt;

use crate::Audio;
use crate::g711;

/// The only sample rate accepted.
pub const SAMPLE_RATE: u32 = 8000;

const FORMAT_PCM: u16 = 1;
const FORMAT_ALAW: u16 = 6;
const FORMAT_MULAW: u16 = 7;
const FORMAT_EXTENSIBLE: u16 = 0xFFFE;

/// The format description found in a WAV file's `fmt ` chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavFormat {
    /// The format tag (1 PCM, 6 A-law, 7 µ-law, 3 float, ...); for
    /// `WAVE_FORMAT_EXTENSIBLE` the tag of the sub-format.
    pub format_tag: u16,
    /// Number of channels.
    pub channels: u16,
    /// Samples per second.
    pub sample_rate: u32,
    /// Bits per sample.
    pub bits_per_sample: u16,
}

impl fmt::Display for WavFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.format_tag {
            FORMAT_PCM => "PCM",
            3 => "IEEE float",
            FORMAT_ALAW => "A-law",
            FORMAT_MULAW => "mu-law",
            0x11 => "IMA ADPCM",
            0x55 => "MP3",
            _ => "format",
        };
        write!(
            f,
            "{name} (tag {}) {}-bit, {} channel{}, {} Hz",
            self.format_tag,
            self.bits_per_sample,
            self.channels,
            if self.channels == 1 { "" } else { "s" },
            self.sample_rate
        )
    }
}

/// Why a WAV file could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WavError {
    /// The bytes are not a RIFF/WAVE file, or a chunk is truncated.
    #[error("not a valid WAV file: {0}")]
    Malformed(&'static str),
    /// A valid WAV file in a format that cannot be played on a G.711 call.
    #[error(
        "unsupported WAV format: {0}; prompts must be 8000 Hz mono 16-bit PCM, mu-law or A-law"
    )]
    Unsupported(WavFormat),
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Reads a WAV file into 8 kHz mono linear PCM (see the module docs for what is accepted).
pub fn read_wav(bytes: &[u8]) -> Result<Audio, WavError> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" {
        return Err(WavError::Malformed("missing RIFF header"));
    }
    if &bytes[8..12] != b"WAVE" {
        return Err(WavError::Malformed("RIFF file is not WAVE"));
    }
    let mut format: Option<WavFormat> = None;
    let mut data: Option<&[u8]> = None;
    let mut pos = 12usize;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = u32_at(bytes, pos + 4).ok_or(WavError::Malformed("truncated chunk"))? as usize;
        let body_start = pos + 8;
        let body_end = body_start.saturating_add(size).min(bytes.len());
        let body = &bytes[body_start..body_end];
        match id {
            b"fmt " => {
                if body.len() < 16 {
                    return Err(WavError::Malformed("fmt chunk shorter than 16 bytes"));
                }
                let mut tag = u16_at(body, 0).unwrap_or(0);
                if tag == FORMAT_EXTENSIBLE {
                    // The sub-format GUID starts at offset 24; its first two bytes are the tag.
                    tag = u16_at(body, 24)
                        .ok_or(WavError::Malformed("truncated WAVE_FORMAT_EXTENSIBLE"))?;
                }
                format = Some(WavFormat {
                    format_tag: tag,
                    channels: u16_at(body, 2).unwrap_or(0),
                    sample_rate: u32_at(body, 4).unwrap_or(0),
                    bits_per_sample: u16_at(body, 14).unwrap_or(0),
                });
            }
            b"data" => {
                data = Some(body);
                if format.is_some() {
                    break;
                }
            }
            _ => {}
        }
        // Chunks are padded to an even length.
        pos = body_start.saturating_add(size).saturating_add(size & 1);
    }
    let format = format.ok_or(WavError::Malformed("no fmt chunk"))?;
    let data = data.ok_or(WavError::Malformed("no data chunk"))?;
    if format.channels != 1 || format.sample_rate != SAMPLE_RATE {
        return Err(WavError::Unsupported(format));
    }
    let samples: Vec<i16> = match (format.format_tag, format.bits_per_sample) {
        (FORMAT_PCM, 16) => data
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect(),
        (FORMAT_MULAW, 8) => data.iter().map(|&c| g711::ulaw_decode(c)).collect(),
        (FORMAT_ALAW, 8) => data.iter().map(|&c| g711::alaw_decode(c)).collect(),
        _ => return Err(WavError::Unsupported(format)),
    };
    Ok(Audio::new(samples))
}

/// Writes 8 kHz mono PCM16 samples as a canonical 44-byte-header WAV file.
pub fn write_wav_pcm16(samples: &[i16]) -> Vec<u8> {
    write_wav(
        FORMAT_PCM,
        16,
        &samples
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect::<Vec<_>>(),
    )
}

/// Writes samples as an 8 kHz mono µ-law WAV file (half the size of PCM16).
pub fn write_wav_ulaw(samples: &[i16]) -> Vec<u8> {
    let data: Vec<u8> = samples.iter().map(|&s| g711::ulaw_encode(s)).collect();
    write_wav(FORMAT_MULAW, 8, &data)
}

/// Writes samples as an 8 kHz mono A-law WAV file.
pub fn write_wav_alaw(samples: &[i16]) -> Vec<u8> {
    let data: Vec<u8> = samples.iter().map(|&s| g711::alaw_encode(s)).collect();
    write_wav(FORMAT_ALAW, 8, &data)
}

fn write_wav(tag: u16, bits: u16, data: &[u8]) -> Vec<u8> {
    // Sizes are capped at u32 (a WAV limit); 8 kHz audio reaches that after 74 hours.
    let data_len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let block_align = bits / 8;
    let mut out = Vec::with_capacity(44 + data.len() + 1);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36u32.saturating_add(data_len)).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    out.extend_from_slice(&(SAMPLE_RATE * u32::from(block_align)).to_le_bytes());
    out.extend_from_slice(&block_align.to_le_bytes());
    out.extend_from_slice(&bits.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp() -> Vec<i16> {
        (0..800)
            .map(|i| ((i * 37) % 20000 - 10000) as i16)
            .collect()
    }

    /// A header with arbitrary fields and `data` as the data chunk.
    fn custom(tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
        let mut v = write_wav(tag, bits, data);
        v[22..24].copy_from_slice(&channels.to_le_bytes());
        v[24..28].copy_from_slice(&rate.to_le_bytes());
        v
    }

    #[test]
    fn pcm16_round_trips() {
        let s = ramp();
        let a = read_wav(&write_wav_pcm16(&s)).expect("pcm16");
        assert_eq!(&a.samples[..], &s[..]);
        assert_eq!(a.duration_ms(), 100);
    }

    #[test]
    fn ulaw_and_alaw_files_decode() {
        let s = ramp();
        let u = read_wav(&write_wav_ulaw(&s)).expect("ulaw");
        let a = read_wav(&write_wav_alaw(&s)).expect("alaw");
        assert_eq!(u.samples.len(), 800);
        assert_eq!(a.samples.len(), 800);
        for (i, &x) in s.iter().enumerate() {
            assert_eq!(u.samples[i], g711::ulaw_decode(g711::ulaw_encode(x)));
            assert_eq!(a.samples[i], g711::alaw_decode(g711::alaw_encode(x)));
        }
    }

    #[test]
    fn skips_unknown_chunks_and_odd_padding() {
        let mut v = write_wav_pcm16(&[1, 2, 3]);
        // Insert an odd-sized LIST chunk (padded) between fmt and data.
        let list = [b"LIST".as_slice(), &3u32.to_le_bytes(), b"abc", &[0]].concat();
        v.splice(36..36, list);
        let a = read_wav(&v).expect("with LIST");
        assert_eq!(&a.samples[..], &[1, 2, 3]);
    }

    #[test]
    fn extensible_pcm_is_accepted() {
        let mut v = write_wav_pcm16(&[5, 6]);
        // Rewrite fmt as a 40-byte WAVE_FORMAT_EXTENSIBLE chunk.
        let mut fmt = v[20..36].to_vec();
        fmt[0..2].copy_from_slice(&FORMAT_EXTENSIBLE.to_le_bytes());
        fmt.extend_from_slice(&22u16.to_le_bytes());
        fmt.extend_from_slice(&16u16.to_le_bytes());
        fmt.extend_from_slice(&4u32.to_le_bytes());
        fmt.extend_from_slice(&[
            1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71,
        ]);
        v.splice(16..36, [40u32.to_le_bytes().as_slice(), &fmt].concat());
        assert_eq!(&read_wav(&v).expect("extensible").samples[..], &[5, 6]);
    }

    #[test]
    fn stereo_is_refused_naming_the_format() {
        let v = custom(FORMAT_PCM, 2, 8000, 16, &[0; 8]);
        let err = read_wav(&v).unwrap_err();
        assert!(matches!(err, WavError::Unsupported(f) if f.channels == 2));
        let text = err.to_string();
        assert!(text.contains("2 channels"), "{text}");
        assert!(text.contains("PCM"), "{text}");
    }

    #[test]
    fn cd_rate_is_refused_naming_the_rate() {
        let v = custom(FORMAT_PCM, 1, 44100, 16, &[0; 8]);
        let text = read_wav(&v).unwrap_err().to_string();
        assert!(text.contains("44100 Hz"), "{text}");
        assert!(text.contains("8000 Hz mono"), "{text}");
    }

    #[test]
    fn float_and_8bit_pcm_are_refused() {
        let f = read_wav(&custom(3, 1, 8000, 32, &[0; 8])).unwrap_err();
        assert!(f.to_string().contains("IEEE float"), "{f}");
        let p8 = read_wav(&custom(FORMAT_PCM, 1, 8000, 8, &[0; 8])).unwrap_err();
        assert!(p8.to_string().contains("8-bit"), "{p8}");
    }

    #[test]
    fn malformed_inputs_are_errors_not_panics() {
        assert_eq!(
            read_wav(b"hello").unwrap_err(),
            WavError::Malformed("missing RIFF header")
        );
        assert_eq!(
            read_wav(b"RIFF\0\0\0\0AVI LIST").unwrap_err(),
            WavError::Malformed("RIFF file is not WAVE")
        );
        let full = write_wav_pcm16(&[1, 2, 3, 4]);
        for n in 0..full.len() {
            let _ = read_wav(&full[..n]);
        }
        // data chunk claims more bytes than there are: clamped
        let mut v = write_wav_pcm16(&[1, 2]);
        v[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(&read_wav(&v).expect("clamped").samples[..], &[1, 2]);
        // no data chunk
        let v = write_wav_pcm16(&[]);
        assert_eq!(
            read_wav(&v[..36]).unwrap_err(),
            WavError::Malformed("no data chunk")
        );
    }
}
