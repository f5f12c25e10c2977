//! Sample-rate conversion to the telephone rate with a polyphase windowed-sinc
//! filter.
//!
//! For a ratio `L/M` (22,050 → 8,000 Hz is 160/441) the low-pass prototype is
//! a Kaiser-windowed sinc evaluated at the `L` fractional offsets an output
//! sample can fall on, `TAPS` coefficients each, computed once per converter.
//! An output sample then costs `TAPS` multiply-adds on the input samples
//! around it, instead of filtering the `L`-times upsampled signal (the naive
//! approach the ADR measured as slower than synthesis itself). Each phase is
//! normalised to unity DC gain.

/// Coefficients per output sample.
const TAPS: usize = 64;
/// Kaiser window shape (about 60 dB stop-band attenuation).
const BETA: f64 = 6.0;
/// Cut-off as a fraction of the lower Nyquist frequency (3,800 Hz for 8 kHz).
const CUTOFF: f64 = 0.95;

/// A converter from one fixed rate to another.
#[derive(Debug, Clone)]
pub(crate) struct Resampler {
    up: u64,
    down: u64,
    /// `up` phases of `TAPS` coefficients; phase `p` tap `j` weights input
    /// sample `ip + j - (TAPS/2 - 1)` for an output at `ip + p/up`.
    table: Vec<f32>,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Zeroth-order modified Bessel function of the first kind (power series).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let half = x / 2.0;
    for k in 1..50 {
        term *= half / k as f64;
        let t2 = term * term;
        sum += t2;
        if t2 < sum * 1e-17 {
            break;
        }
    }
    sum
}

impl Resampler {
    /// A converter from `from` Hz to `to` Hz (both non-zero).
    pub(crate) fn new(from: u32, to: u32) -> Self {
        let (from, to) = (u64::from(from.max(1)), u64::from(to.max(1)));
        let g = gcd(from, to);
        let (up, down) = (to / g, from / g);
        // Cut-off in cycles per input sample, below the lower Nyquist frequency.
        let fc = CUTOFF * 0.5 * (from.min(to) as f64) / from as f64;
        let half = TAPS as f64 / 2.0;
        let i0_beta = bessel_i0(BETA);
        let mut table = Vec::with_capacity(up as usize * TAPS);
        for phase in 0..up {
            let frac = phase as f64 / up as f64;
            let start = table.len();
            for j in 0..TAPS {
                // Distance from the output instant to the input sample, in input samples.
                let d = (half - 1.0 - j as f64) + frac;
                let x = 2.0 * fc * d;
                let sinc = if x.abs() < 1e-12 {
                    1.0
                } else {
                    (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x)
                };
                let r = d / half;
                let window = if r.abs() >= 1.0 {
                    0.0
                } else {
                    bessel_i0(BETA * (1.0 - r * r).sqrt()) / i0_beta
                };
                table.push(2.0 * fc * sinc * window);
            }
            let sum: f64 = table[start..].iter().sum();
            if sum.abs() > 1e-12 {
                for c in &mut table[start..] {
                    *c /= sum;
                }
            }
        }
        Resampler {
            up,
            down,
            table: table.into_iter().map(|c| c as f32).collect(),
        }
    }

    /// Converts a whole signal.
    pub(crate) fn process(&self, input: &[i16]) -> Vec<i16> {
        if self.up == 1 && self.down == 1 {
            return input.to_vec();
        }
        let n = input.len() as u64;
        let out_len = (n * self.up).div_ceil(self.down) as usize;
        let mut out = Vec::with_capacity(out_len);
        let back = TAPS / 2 - 1;
        for k in 0..out_len as u64 {
            let pos = k * self.down;
            let ip = (pos / self.up) as usize;
            let phase = (pos % self.up) as usize;
            let coeffs = &self.table[phase * TAPS..(phase + 1) * TAPS];
            let acc: f32 = if ip >= back && ip - back + TAPS <= input.len() {
                input[ip - back..ip - back + TAPS]
                    .iter()
                    .zip(coeffs)
                    .map(|(&x, &c)| f32::from(x) * c)
                    .sum()
            } else {
                // Near the edges: samples outside the signal are zero.
                coeffs
                    .iter()
                    .enumerate()
                    .filter_map(|(j, &c)| {
                        (ip + j)
                            .checked_sub(back)
                            .and_then(|i| input.get(i))
                            .map(|&x| f32::from(x) * c)
                    })
                    .sum()
            };
            out.push(acc.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, rate: u32, secs: f64, amp: f64) -> Vec<i16> {
        let n = (f64::from(rate) * secs) as usize;
        (0..n)
            .map(|i| {
                (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin())
                    as i16
            })
            .collect()
    }

    /// RMS of the middle half (away from the filter's edge transients).
    fn rms_mid(s: &[i16]) -> f64 {
        let m = &s[s.len() / 4..s.len() * 3 / 4];
        (m.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / m.len() as f64).sqrt()
    }

    #[test]
    fn length_follows_the_ratio() {
        let r = Resampler::new(22_050, 8000);
        assert_eq!((r.up, r.down), (160, 441));
        assert_eq!(r.process(&vec![0; 22_050]).len(), 8000);
        assert_eq!(r.process(&[]).len(), 0);
        assert_eq!(r.process(&[1000]).len(), 1);
        assert_eq!(Resampler::new(8000, 8000).process(&[1, 2, 3]), [1, 2, 3]);
    }

    #[test]
    fn passband_is_kept_and_aliases_are_removed() {
        let r = Resampler::new(22_050, 8000);
        let amp = 10_000.0;
        let input_rms = amp / 2f64.sqrt();
        for f in [300.0, 1000.0, 3000.0] {
            let out = r.process(&sine(f, 22_050, 1.0, amp));
            let ratio = rms_mid(&out) / input_rms;
            assert!((0.9..1.05).contains(&ratio), "{f} Hz kept at {ratio}");
        }
        // Above 4 kHz a naive decimator would fold these into the voice band.
        for f in [5000.0, 6000.0, 9000.0] {
            let out = r.process(&sine(f, 22_050, 1.0, amp));
            let ratio = rms_mid(&out) / input_rms;
            assert!(ratio < 0.01, "{f} Hz leaks at {ratio} (more than -40 dB)");
        }
    }

    #[test]
    fn dc_is_unity_and_full_scale_does_not_wrap() {
        let r = Resampler::new(22_050, 8000);
        let out = r.process(&vec![i16::MAX; 4410]);
        let mid = &out[100..out.len() - 100];
        assert!(mid.iter().all(|&x| x >= i16::MAX - 2), "{:?}", &mid[..4]);
        let square: Vec<i16> = (0..4410)
            .map(|i| {
                if (i / 20) % 2 == 0 {
                    i16::MAX
                } else {
                    i16::MIN
                }
            })
            .collect();
        // Gibbs overshoot must clamp, not wrap around.
        let out = r.process(&square);
        assert!(out.iter().any(|&x| x > 30_000) && out.iter().any(|&x| x < -30_000));
    }
}
