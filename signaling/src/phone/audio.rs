//! Sound on the phone leg, with no I/O: the G.711 laws, the phone side's
//! jitter buffer, the queues the room's voices wait in before they are mixed,
//! and the hold tone. Everything here runs at 8 kHz, in 20 ms frames of 160
//! samples: what a telephone carries.

use std::collections::{BTreeMap, VecDeque};

/// Samples per second on the phone leg.
pub const RATE: u32 = 8_000;
/// Samples in one 20 ms frame.
pub const FRAME: usize = 160;

/// G.711 µ-law (PCMU, payload type 0): one sample into one byte.
pub fn ulaw_encode(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32_635;
    let mut magnitude = i32::from(sample);
    let sign = if magnitude < 0 {
        magnitude = -magnitude;
        0x80
    } else {
        0
    };
    let biased = magnitude.min(CLIP) + BIAS;
    // The segment is the position of the highest bit above the 7 low ones.
    let exponent = 7 - ((biased >> 7) as u8).leading_zeros() as i32;
    let mantissa = (biased >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) | mantissa) as u8
}

pub fn ulaw_decode(byte: u8) -> i16 {
    let byte = !byte;
    let exponent = i32::from((byte >> 4) & 0x07);
    let mantissa = i32::from(byte & 0x0F);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    (if byte & 0x80 != 0 { -magnitude } else { magnitude }) as i16
}

/// G.711 A-law (PCMA, payload type 8).
pub fn alaw_encode(sample: i16) -> u8 {
    let mut value = i32::from(sample) >> 3;
    let mask = if value >= 0 {
        0xD5
    } else {
        value = -value - 1;
        0x55
    };
    // Segment ends of the 13-bit magnitude.
    let segment = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF].iter().position(|&end| value <= end);
    let Some(segment) = segment else { return (0x7F ^ mask) as u8 };
    let mut code = (segment as i32) << 4;
    code |= if segment < 2 { (value >> 1) & 0x0F } else { (value >> segment) & 0x0F };
    (code ^ mask) as u8
}

pub fn alaw_decode(byte: u8) -> i16 {
    let byte = i32::from(byte ^ 0x55);
    let mut value = (byte & 0x0F) << 4;
    let segment = (byte & 0x70) >> 4;
    match segment {
        0 => value += 8,
        1 => value += 0x108,
        _ => value = (value + 0x108) << (segment - 1),
    }
    (if byte & 0x80 != 0 { value } else { -value }) as i16
}

/// A jitter buffer for the phone side: packets by sequence number, handed on
/// in order once `depth` packets stand behind them, so that a packet late by
/// up to `depth` frames still takes its place. A packet older than what was
/// already handed on is dropped; a gap that `depth` newer packets have passed
/// is given up (the decoder fills it).
#[derive(Debug)]
pub struct JitterBuffer<T> {
    depth: usize,
    /// Packets waiting, by extended sequence number.
    waiting: BTreeMap<u64, T>,
    /// The next sequence number to hand on.
    next: Option<u64>,
    /// The highest extended sequence number seen (to extend 16-bit ones).
    highest: Option<u64>,
    pub late: u64,
    pub lost: u64,
}

/// Packets held at most (a burst after a stall): older ones are let go.
const JITTER_MAX: usize = 50;

impl<T> JitterBuffer<T> {
    pub fn new(depth: usize) -> Self {
        JitterBuffer { depth, waiting: BTreeMap::new(), next: None, highest: None, late: 0, lost: 0 }
    }

    /// The 16-bit sequence number extended by the wraps seen so far.
    fn extend(&mut self, seq: u16) -> u64 {
        let Some(highest) = self.highest else {
            let extended = u64::from(seq) + (1 << 16);
            self.highest = Some(extended);
            return extended;
        };
        let base = highest & !0xFFFF;
        let candidates = [base.wrapping_sub(1 << 16), base, base + (1 << 16)];
        let extended = candidates
            .into_iter()
            .map(|b| b + u64::from(seq))
            .min_by_key(|c| c.abs_diff(highest))
            .unwrap_or(base + u64::from(seq));
        if extended > highest {
            self.highest = Some(extended);
        }
        extended
    }

    pub fn push(&mut self, seq: u16, packet: T) {
        let extended = self.extend(seq);
        if self.next.is_some_and(|next| extended < next) {
            self.late += 1;
            return;
        }
        self.waiting.insert(extended, packet);
        while self.waiting.len() > JITTER_MAX {
            if let Some((first, _)) = self.waiting.pop_first() {
                self.next = Some(first + 1);
                self.lost += 1;
            }
        }
    }

    /// The next packet in order, once it is due; `None` when nothing is.
    pub fn pop(&mut self) -> Option<T> {
        let (&first, _) = self.waiting.first_key_value()?;
        let next = *self.next.get_or_insert(first);
        if first == next || self.waiting.len() > self.depth {
            self.lost += first.saturating_sub(next);
            self.next = Some(first + 1);
            return self.waiting.pop_first().map(|(_, packet)| packet);
        }
        None
    }
}

/// Sound waiting to be played or mixed: samples in, 20 ms frames out, never
/// more than `limit` samples kept (a sender that runs fast loses its oldest).
#[derive(Debug)]
pub struct Samples {
    queue: VecDeque<i16>,
    limit: usize,
    /// Playing has started (enough was queued once); until then nothing is taken.
    primed: bool,
    prime: usize,
}

impl Samples {
    /// Starts playing once `prime` samples are queued (a little cushion
    /// against jitter), and keeps at most `limit`.
    pub fn new(prime: usize, limit: usize) -> Self {
        Samples { queue: VecDeque::with_capacity(limit), limit, primed: false, prime }
    }

    pub fn extend(&mut self, samples: &[i16]) {
        self.queue.extend(samples.iter().copied());
        let over = self.queue.len().saturating_sub(self.limit);
        self.queue.drain(..over);
        if self.queue.len() >= self.prime {
            self.primed = true;
        }
    }

    /// Adds the next frame into `mix` (saturating); false when there was
    /// nothing to add (then it waits to be primed again).
    pub fn mix_into(&mut self, mix: &mut [i16; FRAME]) -> bool {
        if !self.primed || self.queue.is_empty() {
            self.primed = false;
            return false;
        }
        for slot in mix.iter_mut() {
            match self.queue.pop_front() {
                Some(sample) => *slot = slot.saturating_add(sample),
                None => break,
            }
        }
        true
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn clear(&mut self) {
        self.queue.clear();
        self.primed = false;
    }
}

/// The built-in hold sound: a soft two-note chime (440 Hz then 554 Hz, each
/// 0.4 s, fading in and out) every four seconds, quiet enough to talk over.
#[derive(Debug, Default)]
pub struct HoldTone {
    position: usize,
}

impl HoldTone {
    const PERIOD: usize = 4 * RATE as usize;
    const NOTE: usize = (RATE as usize * 2) / 5;

    pub fn next_frame(&mut self) -> [i16; FRAME] {
        let mut frame = [0i16; FRAME];
        for slot in frame.iter_mut() {
            let at = self.position % Self::PERIOD;
            self.position = (self.position + 1) % Self::PERIOD;
            let (note, offset) = (at / Self::NOTE, at % Self::NOTE);
            let frequency = match note {
                0 => 440.0,
                1 => 554.37,
                _ => continue,
            };
            let t = offset as f32 / RATE as f32;
            // A raised-cosine envelope: no click at either end.
            let envelope = 0.5 - 0.5 * (2.0 * std::f32::consts::PI * offset as f32 / Self::NOTE as f32).cos();
            let value = (2.0 * std::f32::consts::PI * frequency * t).sin() * envelope * 4_000.0;
            *slot = value as i16;
        }
        frame
    }
}

/// A recorded prompt or hold file, as 8 kHz mono samples, read from a WAV
/// file (16-bit PCM, or G.711; mono or stereo; any rate: resampled here).
pub fn read_wav(bytes: &[u8]) -> Result<Vec<i16>, String> {
    let riff = bytes.get(0..12).ok_or("too short for a WAV file")?;
    if &riff[0..4] != b"RIFF" || &riff[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE file".into());
    }
    let mut at = 12;
    let mut format: Option<(u16, u16, u32, u16)> = None;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]) as usize;
        let body = bytes.get(at + 8..at + 8 + size).ok_or("a chunk runs past the end of the file")?;
        if id == b"fmt " {
            let field = |i: usize| {
                u16::from_le_bytes([body.get(i).copied().unwrap_or(0), body.get(i + 1).copied().unwrap_or(0)])
            };
            let rate = u32::from(field(4)) | (u32::from(field(6)) << 16);
            format = Some((field(0), field(2), rate, field(14)));
        } else if id == b"data" {
            let (tag, channels, rate, bits) = format.ok_or("no format before the data")?;
            if channels == 0 || rate == 0 {
                return Err("no channels or no sample rate".into());
            }
            let samples: Vec<i16> = match (tag, bits) {
                (1, 16) => body.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect(),
                (6, 8) => body.iter().map(|&b| alaw_decode(b)).collect(),
                (7, 8) => body.iter().map(|&b| ulaw_decode(b)).collect(),
                (0xFFFE, 16) => body.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect(),
                _ => {
                    return Err(format!(
                        "unsupported WAV encoding (format {tag}, {bits} bits): use 16-bit PCM"
                    ));
                }
            };
            let mono: Vec<i16> = samples
                .chunks_exact(usize::from(channels))
                .map(|c| (c.iter().map(|&s| i32::from(s)).sum::<i32>() / i32::from(channels)) as i16)
                .collect();
            return Ok(resample(&mono, rate, RATE));
        }
        at += 8 + size + (size & 1);
    }
    Err("no data chunk".into())
}

/// Linear interpolation between rates, after a moving-average low-pass when
/// going down (prompts are speech; this is not a studio).
pub fn resample(input: &[i16], from: u32, to: u32) -> Vec<i16> {
    if from == to || input.is_empty() {
        return input.to_vec();
    }
    let smoothed: Vec<i16> = if from > to {
        let width = (from / to).max(1) as usize;
        (0..input.len())
            .map(|i| {
                let window = &input[i.saturating_sub(width - 1)..=i];
                (window.iter().map(|&s| i32::from(s)).sum::<i32>() / window.len() as i32) as i16
            })
            .collect()
    } else {
        input.to_vec()
    };
    let out_len = (input.len() as u64 * u64::from(to) / u64::from(from)) as usize;
    (0..out_len)
        .map(|i| {
            let position = i as f64 * f64::from(from) / f64::from(to);
            let index = position as usize;
            let fraction = position - index as f64;
            let a = f64::from(smoothed[index.min(smoothed.len() - 1)]);
            let b = f64::from(smoothed[(index + 1).min(smoothed.len() - 1)]);
            (a + (b - a) * fraction) as i16
        })
        .collect()
}

/// The level of a frame, root mean square (0 is silence; speech is hundreds to thousands).
pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_round_trips_within_its_step() {
        for sample in (i16::MIN..=i16::MAX).step_by(7) {
            let back = ulaw_decode(ulaw_encode(sample));
            let step = (i32::from(sample).abs() / 16).max(16);
            assert!((i32::from(back) - i32::from(sample)).abs() <= step, "{sample} came back as {back}");
        }
        // Known points of the law: silence is 0xFF, and the loudest codes.
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x00), -32_124);
        assert_eq!(ulaw_decode(0x80), 32_124);
    }

    #[test]
    fn alaw_round_trips_within_its_step() {
        for sample in (i16::MIN..=i16::MAX).step_by(7) {
            let back = alaw_decode(alaw_encode(sample));
            let step = (i32::from(sample).abs() / 16).max(16);
            assert!((i32::from(back) - i32::from(sample)).abs() <= step, "{sample} came back as {back}");
        }
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0xAA), 32_256);
        assert_eq!(alaw_decode(0x2A), -32_256);
    }

    #[test]
    fn jitter_buffer_reorders_and_gives_up_on_gaps() {
        let mut buffer = JitterBuffer::new(2);
        for seq in [10u16, 12, 11] {
            buffer.push(seq, seq);
        }
        assert_eq!(buffer.pop(), Some(10));
        assert_eq!(buffer.pop(), Some(11));
        // 12 waits for 13 or enough behind it.
        assert_eq!(buffer.pop(), Some(12));
        assert_eq!(buffer.pop(), None);
        // 13 never comes: after two more behind the gap, 14 goes on.
        buffer.push(14, 14);
        assert_eq!(buffer.pop(), None);
        buffer.push(15, 15);
        buffer.push(16, 16);
        assert_eq!(buffer.pop(), Some(14));
        assert_eq!(buffer.lost, 1);
        // Too late now.
        buffer.push(13, 13);
        assert_eq!(buffer.late, 1);
    }

    #[test]
    fn jitter_buffer_follows_the_sequence_through_its_wrap() {
        let mut buffer = JitterBuffer::new(1);
        for seq in [65_534u16, 65_535, 0, 1] {
            buffer.push(seq, seq);
        }
        let order: Vec<u16> = std::iter::from_fn(|| buffer.pop()).collect();
        assert_eq!(order, vec![65_534, 65_535, 0, 1], "in order: nothing is held back");
        assert_eq!(buffer.lost, 0);
    }

    #[test]
    fn samples_mix_saturating_and_stay_bounded() {
        let mut a = Samples::new(160, 400);
        let mut b = Samples::new(160, 400);
        a.extend(&[30_000; 160]);
        b.extend(&[10_000; 100]);
        let mut mix = [0i16; FRAME];
        assert!(a.mix_into(&mut mix));
        assert!(!b.mix_into(&mut mix), "not primed yet");
        assert!(mix.iter().all(|&s| s == 30_000));
        b.extend(&[10_000; 1_000]);
        assert_eq!(b.len(), 400);
        assert!(b.mix_into(&mut mix));
        assert_eq!(mix[0], i16::MAX);
    }

    #[test]
    fn hold_tone_is_gentle_and_not_silent() {
        let mut tone = HoldTone::default();
        let frames: Vec<[i16; FRAME]> = (0..200).map(|_| tone.next_frame()).collect();
        let all: Vec<i16> = frames.iter().flatten().copied().collect();
        assert!(all.iter().all(|s| s.unsigned_abs() <= 4_000));
        assert!(rms(&all[..6_400]) > 500.0, "the chime sounds");
        assert!(rms(&all[6_400..32_000]) < 1.0, "then a pause");
    }

    #[test]
    fn wav_files_are_read_and_resampled() {
        let mut file = Vec::new();
        let data: Vec<u8> = (0..1_600i16).flat_map(|i| (i * 10).to_le_bytes()).collect();
        file.extend_from_slice(b"RIFF");
        file.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        file.extend_from_slice(b"WAVEfmt ");
        file.extend_from_slice(&16u32.to_le_bytes());
        file.extend_from_slice(&1u16.to_le_bytes());
        file.extend_from_slice(&1u16.to_le_bytes());
        file.extend_from_slice(&16_000u32.to_le_bytes());
        file.extend_from_slice(&32_000u32.to_le_bytes());
        file.extend_from_slice(&2u16.to_le_bytes());
        file.extend_from_slice(&16u16.to_le_bytes());
        file.extend_from_slice(b"data");
        file.extend_from_slice(&(data.len() as u32).to_le_bytes());
        file.extend_from_slice(&data);
        let samples = read_wav(&file).unwrap();
        assert_eq!(samples.len(), 800);
        assert!(read_wav(b"RIFF....WAVEjunk").is_err());
        assert!(read_wav(b"not a wav").is_err());
        // A chunk that claims more than the file holds.
        let mut short = file.clone();
        short.truncate(60);
        assert!(read_wav(&short).is_err());
    }
}
