//! G.711 µ-law (PCMU, payload type 0) and A-law (PCMA, payload type 8).
//!
//! Encoding and decoding are table lookups: the pacer encodes one 160-sample frame for
//! every playing session every 20 ms, so the per-sample cost must be a single load.
//! The tables are computed once, on first use, from the reference algorithms of the
//! ITU-T G.711 / Sun `g711.c` implementation (kept below as `*_reference` and checked
//! against the tables in the tests). The encode tables have one entry per 16-bit sample
//! (64 KiB each), so the table result is exactly the reference result for every input.

use std::sync::LazyLock;

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 32635;

/// µ-law encoding of one linear sample, computed (not looked up).
fn ulaw_encode_reference(sample: i16) -> u8 {
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(ULAW_CLIP) + ULAW_BIAS;
    let mut exponent = 7;
    let mut mask = 0x4000;
    while exponent > 0 && s & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) | mantissa) as u8
}

/// µ-law decoding of one code, computed (not looked up).
fn ulaw_decode_reference(code: u8) -> i16 {
    let u = !code;
    let exponent = (u >> 4) & 0x07;
    let mantissa = i32::from(u & 0x0F);
    let t = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    (if u & 0x80 != 0 { -t } else { t }) as i16
}

/// Segment end points of the A-law compander (13-bit magnitudes).
const ALAW_SEG_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];

/// A-law encoding of one linear sample, computed (not looked up).
fn alaw_encode_reference(sample: i16) -> u8 {
    let mut pcm = i32::from(sample) >> 3;
    let mask: i32 = if pcm >= 0 {
        0xD5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    let segment = ALAW_SEG_END.iter().position(|&end| pcm <= end);
    let code = match segment {
        None => 0x7F,
        Some(seg) => {
            let seg = seg as i32;
            let shift = if seg < 2 { 1 } else { seg };
            (seg << 4) | ((pcm >> shift) & 0x0F)
        }
    };
    (code ^ mask) as u8
}

/// A-law decoding of one code, computed (not looked up).
fn alaw_decode_reference(code: u8) -> i16 {
    let a = code ^ 0x55;
    let mut t = i32::from(a & 0x0F) << 4;
    let segment = (a & 0x70) >> 4;
    match segment {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= segment - 1;
        }
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

struct Tables {
    ulaw_enc: Box<[u8]>,
    alaw_enc: Box<[u8]>,
    ulaw_dec: [i16; 256],
    alaw_dec: [i16; 256],
}

static TABLES: LazyLock<Tables> = LazyLock::new(|| {
    let mut ulaw_enc = vec![0u8; 65536].into_boxed_slice();
    let mut alaw_enc = vec![0u8; 65536].into_boxed_slice();
    for i in 0..=u16::MAX {
        let s = i as i16;
        ulaw_enc[usize::from(i)] = ulaw_encode_reference(s);
        alaw_enc[usize::from(i)] = alaw_encode_reference(s);
    }
    let mut ulaw_dec = [0i16; 256];
    let mut alaw_dec = [0i16; 256];
    for c in 0..=u8::MAX {
        ulaw_dec[usize::from(c)] = ulaw_decode_reference(c);
        alaw_dec[usize::from(c)] = alaw_decode_reference(c);
    }
    Tables {
        ulaw_enc,
        alaw_enc,
        ulaw_dec,
        alaw_dec,
    }
});

/// Encodes one linear 16-bit sample as µ-law (PCMU).
#[inline]
pub fn ulaw_encode(sample: i16) -> u8 {
    TABLES.ulaw_enc[usize::from(sample as u16)]
}

/// Decodes one µ-law (PCMU) code to a linear 16-bit sample.
#[inline]
pub fn ulaw_decode(code: u8) -> i16 {
    TABLES.ulaw_dec[usize::from(code)]
}

/// Encodes one linear 16-bit sample as A-law (PCMA).
#[inline]
pub fn alaw_encode(sample: i16) -> u8 {
    TABLES.alaw_enc[usize::from(sample as u16)]
}

/// Decodes one A-law (PCMA) code to a linear 16-bit sample.
#[inline]
pub fn alaw_decode(code: u8) -> i16 {
    TABLES.alaw_dec[usize::from(code)]
}

/// Converts a µ-law code to the A-law code of the same (decoded) level, for bridging
/// legs that negotiated different codecs.
#[inline]
pub fn ulaw_to_alaw(code: u8) -> u8 {
    alaw_encode(ulaw_decode(code))
}

/// Converts an A-law code to the µ-law code of the same (decoded) level.
#[inline]
pub fn alaw_to_ulaw(code: u8) -> u8 {
    ulaw_encode(alaw_decode(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_known_values() {
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(ulaw_encode(1000), 0xCE);
        assert_eq!(ulaw_decode(0xCE), 988);
    }

    #[test]
    fn alaw_known_values() {
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_decode(0x2A), -32256);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
        assert_eq!(alaw_encode(1000), 0xFA);
        assert_eq!(alaw_decode(0xFA), 1008);
    }

    #[test]
    fn tables_match_reference_for_every_input() {
        for i in 0..=u16::MAX {
            let s = i as i16;
            assert_eq!(ulaw_encode(s), ulaw_encode_reference(s), "ulaw {s}");
            assert_eq!(alaw_encode(s), alaw_encode_reference(s), "alaw {s}");
        }
    }

    #[test]
    fn encode_of_decode_is_identity() {
        for c in 0..=u8::MAX {
            // 0x7F is µ-law's negative zero; it decodes to 0, which encodes as 0xFF.
            if c != 0x7F {
                assert_eq!(ulaw_encode(ulaw_decode(c)), c, "ulaw code {c:#04x}");
            }
            assert_eq!(alaw_encode(alaw_decode(c)), c, "alaw code {c:#04x}");
        }
    }

    #[test]
    fn round_trip_error_is_bounded() {
        // The quantisation error grows with the level: at most half a step of the segment.
        for s in (-32000i32..32000).step_by(7) {
            let s16 = s as i16;
            let u = i32::from(ulaw_decode(ulaw_encode(s16)));
            let a = i32::from(alaw_decode(alaw_encode(s16)));
            let bound = (s.abs() / 16).max(16);
            assert!((u - s).abs() <= bound, "ulaw {s} -> {u}");
            assert!((a - s).abs() <= bound, "alaw {s} -> {a}");
        }
    }

    #[test]
    fn transcoding_keeps_the_level() {
        assert_eq!(ulaw_to_alaw(0xFF), 0xD5);
        assert_eq!(alaw_to_ulaw(0xD5), 0xFE, "A-law has no zero level: +8");
        let v = ulaw_decode(0xCE);
        assert!((i32::from(alaw_decode(ulaw_to_alaw(0xCE))) - i32::from(v)).abs() < 40);
    }
}
