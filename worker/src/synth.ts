/**
 * Deterministic synthetic music: drums (kick, snare, hi-hat), a bass line and a voice-like lead
 * with vibrato. The repository ships no recorded audio; tests, samples and benchmarks make their
 * clips here. Same options → bit-identical output.
 */
import { encodeMp3 } from './separation/encode.ts';

export interface SynthOptions {
  seconds: number;
  sampleRate?: number;
  seed?: number;
  stereo?: boolean;
}

/** mulberry32: small, fast, deterministic. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const midiHz = (m: number): number => 440 * 2 ** ((m - 69) / 12);

/** Adds `src` into the stereo mix at `start` with a constant-power pan (-1 left .. 1 right). */
function addPanned(mix: Float32Array[], src: Float32Array, start: number, gain: number, pan: number): void {
  const angle = ((pan + 1) * Math.PI) / 4;
  const gl = Math.cos(angle) * gain * Math.SQRT2;
  const gr = Math.sin(angle) * gain * Math.SQRT2;
  const n = Math.min(src.length, mix[0].length - start);
  for (let i = 0; i < n; i++) {
    mix[0][start + i] += src[i] * gl;
    mix[1][start + i] += src[i] * gr;
  }
}

function kick(sr: number): Float32Array {
  const n = Math.floor(0.35 * sr);
  const out = new Float32Array(n);
  let phase = 0;
  for (let i = 0; i < n; i++) {
    const t = i / sr;
    const f = 50 + 90 * Math.exp(-t * 30);
    phase += (2 * Math.PI * f) / sr;
    out[i] = Math.sin(phase) * Math.exp(-t * 9);
  }
  return out;
}

function snare(sr: number, rand: () => number): Float32Array {
  const n = Math.floor(0.22 * sr);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const t = i / sr;
    const noise = rand() * 2 - 1;
    out[i] = 0.7 * noise * Math.exp(-t * 18) + 0.5 * Math.sin(2 * Math.PI * 185 * t) * Math.exp(-t * 25);
  }
  return out;
}

function hat(sr: number, rand: () => number, open: boolean): Float32Array {
  const n = Math.floor((open ? 0.18 : 0.05) * sr);
  const out = new Float32Array(n);
  let prev = 0;
  for (let i = 0; i < n; i++) {
    const noise = rand() * 2 - 1;
    out[i] = (noise - prev) * 0.5 * Math.exp(-(i / sr) * (open ? 14 : 60)); // first difference: bright
    prev = noise;
  }
  return out;
}

/** A plucked, low-passed sawtooth bass note. */
function bassNote(sr: number, hz: number, seconds: number): Float32Array {
  const n = Math.floor(seconds * sr);
  const out = new Float32Array(n);
  let phase = 0;
  let lp = 0;
  for (let i = 0; i < n; i++) {
    const t = i / sr;
    phase = (phase + hz / sr) % 1;
    const saw = 2 * phase - 1;
    const cutoff = 0.02 + 0.08 * Math.exp(-t * 8);
    lp += cutoff * (saw - lp);
    const env = Math.min(1, t * 200) * Math.exp(-t * 2.5) * Math.min(1, (seconds - t) * 60);
    out[i] = (lp + 0.5 * Math.sin(2 * Math.PI * hz * t)) * env;
  }
  return out;
}

/** Vowel formants (Hz) for "a", "o", "e", "i", "u". */
const VOWELS = [
  [730, 1090, 2440],
  [570, 840, 2410],
  [530, 1840, 2480],
  [270, 2290, 3010],
  [300, 870, 2240],
] as const;

/** Two-pole resonator coefficients for centre `f` and bandwidth `bw`. */
function resonator(sr: number, f: number, bw: number): [number, number, number] {
  const r = Math.exp((-Math.PI * bw) / sr);
  const b1 = -2 * r * Math.cos((2 * Math.PI * f) / sr);
  const b2 = r * r;
  return [(1 - r) * Math.sqrt(1 - 2 * r * Math.cos((4 * Math.PI * f) / sr) + r * r), b1, b2];
}

/**
 * A sung syllable: a consonant noise burst, then a glottal-like harmonic source with jitter and
 * delayed vibrato through three formant resonators gliding from one vowel to the next.
 */
function voiceNote(sr: number, hz: number, seconds: number, vowel: number, rand: () => number): Float32Array {
  const n = Math.floor(seconds * sr);
  const out = new Float32Array(n);
  const from = VOWELS[vowel % VOWELS.length];
  const to = VOWELS[(vowel + 2) % VOWELS.length];
  const consonant = Math.floor((0.03 + 0.04 * rand()) * sr);
  const ys = [0, 0, 0, 0, 0, 0];
  let phase = 0;
  let drift = 0;
  let hp = 0;
  for (let i = 0; i < n; i++) {
    const t = i / sr;
    drift += 0.002 * (rand() * 2 - 1) - 0.001 * drift; // slow pitch wander
    const vib = 1 + 0.015 * Math.sin(2 * Math.PI * 5.3 * t) * Math.min(1, t * 2.5) + 0.01 * drift;
    const glide = t < 0.06 ? 0.97 + 0.03 * (t / 0.06) : 1; // scoop into the note
    phase = (phase + (hz * vib * glide) / sr) % 1;
    // Glottal pulse: a fast-closing asymmetric pulse, rich in harmonics.
    const g = phase < 0.6 ? Math.sin((Math.PI * phase) / 0.6) ** 2 : 0;
    const breath = 0.15 * (rand() * 2 - 1);
    const src = g - 0.4 + breath * g;
    const k = Math.min(1, t / seconds);
    let y = 0;
    for (let f = 0; f < 3; f++) {
      const fc = from[f] + (to[f] - from[f]) * k;
      const [a0, b1, b2] = resonator(sr, fc, 60 + 40 * f);
      const v = a0 * src - b1 * ys[2 * f] - b2 * ys[2 * f + 1];
      ys[2 * f + 1] = ys[2 * f];
      ys[2 * f] = v;
      y += v / (f + 1);
    }
    const env = Math.min(1, Math.max(0, (i - consonant) / (0.02 * sr))) * Math.min(1, (seconds - t) * 10);
    let s = 3 * y * env;
    if (i < consonant) {
      const noise = rand() * 2 - 1;
      const h = noise - hp; // bright fricative
      hp = noise;
      s += 0.25 * h * Math.sin((Math.PI * i) / consonant);
    }
    out[i] = s;
  }
  return out;
}

export function synthesizeSong(opts: SynthOptions): Float32Array[] {
  const { seconds, sampleRate: sr = 44100, seed = 1, stereo = true } = opts;
  if (!(seconds > 0)) throw new RangeError('seconds must be > 0');
  const rand = rng(seed);
  const n = Math.floor(seconds * sr);
  const mix = [new Float32Array(n), new Float32Array(n)];
  const bpm = 96 + Math.floor(rand() * 40);
  const beat = 60 / bpm;
  const kickS = kick(sr);
  const snareS = snare(sr, rand);
  const closedHat = hat(sr, rand, false);
  const openHat = hat(sr, rand, true);
  const key = 40 + Math.floor(rand() * 7); // E2..A#2
  const progression = [0, 8, 3, 10]; // i - VI - III - VII
  const pentatonic = [0, 3, 5, 7, 10, 12, 15];
  const beats = Math.ceil(seconds / beat);

  for (let b = 0; b < beats; b++) {
    const t = b * beat;
    const at = Math.floor(t * sr);
    const bar = Math.floor(b / 4);
    const inBar = b % 4;
    // Drums
    if (inBar === 0 || inBar === 2 || (inBar === 3 && rand() < 0.3)) addPanned(mix, kickS, at, 0.8, 0);
    if (inBar === 1 || inBar === 3) addPanned(mix, snareS, at, 0.45, 0.1);
    for (let e = 0; e < 2; e++) {
      const h = e === 1 && inBar === 3 ? openHat : closedHat;
      addPanned(mix, h, Math.floor((t + (e * beat) / 2) * sr), 0.25, 0.5);
    }
    // Bass: eighth notes on the chord root, octave jump on the off-beat sometimes
    const root = key + progression[bar % progression.length];
    for (let e = 0; e < 2; e++) {
      const note = root + (e === 1 && rand() < 0.35 ? 12 : 0);
      addPanned(mix, bassNote(sr, midiHz(note), beat / 2), Math.floor((t + (e * beat) / 2) * sr), 0.4, -0.05);
    }
  }
  // Lead voice: phrases of 1-2 beat notes with rests, one octave and a half above the bass
  let t = beat * 2;
  let vowel = 0;
  while (t < seconds) {
    const len = beat * (rand() < 0.5 ? 1 : 2);
    if (rand() < 0.8) {
      const note = key + 14 + pentatonic[Math.floor(rand() * pentatonic.length)];
      addPanned(mix, voiceNote(sr, midiHz(note), len * 0.95, vowel++, rand), Math.floor(t * sr), 0.35, -0.15);
    }
    t += len;
  }
  // A soft pad in the "other" register
  for (let i = 0; i < n; i++) {
    const time = i / sr;
    const root = key + 12 + progression[Math.floor(time / (4 * beat)) % progression.length];
    const v = 0.04 * (Math.sin(2 * Math.PI * midiHz(root) * time) + Math.sin(2 * Math.PI * midiHz(root + 7) * time));
    mix[0][i] += v * 0.8;
    mix[1][i] += v * 1.2;
  }
  // Peak-normalise to -1 dBFS
  let peak = 0;
  for (const ch of mix) for (let i = 0; i < n; i++) peak = Math.max(peak, Math.abs(ch[i]));
  const g = peak > 0 ? 0.89 / peak : 1;
  for (const ch of mix) for (let i = 0; i < n; i++) ch[i] *= g;
  if (stereo) return mix;
  const mono = new Float32Array(n);
  for (let i = 0; i < n; i++) mono[i] = 0.5 * (mix[0][i] + mix[1][i]);
  return [mono];
}

export async function synthesizeMp3(
  opts: SynthOptions & { sampleRate?: 32000 | 44100 | 48000; stereo?: boolean; vbrQuality?: number },
): Promise<Uint8Array> {
  const sampleRate = opts.sampleRate ?? 44100;
  const channels = synthesizeSong({ ...opts, sampleRate });
  return encodeMp3(channels, sampleRate, { vbrQuality: opts.vbrQuality ?? 2 });
}
