// A fixed, deterministic model input and a compact fingerprint of the outputs it produces, so a
// rewritten graph can be checked against the original at every load without keeping the
// original's 55 MB of outputs around.
import { SEGMENT, FREQ_BINS, FRAMES } from '../model.ts';
import { Spectrogram } from '../stft.ts';
import { mulberry32 as rng } from '../random.ts';

/** Every STRIDE-th output value is kept (a prime, so it walks across channels, bins and frames). */
const STRIDE = 1009;

export interface Fingerprint {
  stride: number;
  freq: number[];
  time: number[];
}

/** A music-like stereo segment (decaying plucked harmonics, a kick, a little noise) and its spectrogram. */
export function fingerprintInput(): { mix: Float32Array; spec: Float32Array } {
  const rand = rng(20261203);
  const mix = new Float32Array(2 * SEGMENT);
  const sr = 44100;
  for (let note = 0; note < 24; note++) {
    const start = Math.floor((note * SEGMENT) / 24);
    const hz = 110 * 2 ** (Math.floor(rand() * 24) / 12);
    const pan = rand();
    for (let i = start; i < SEGMENT; i++) {
      const t = (i - start) / sr;
      const env = Math.exp(-4 * t);
      if (env < 1e-3) break;
      let v = 0;
      for (let h = 1; h <= 5; h++) v += Math.sin(2 * Math.PI * hz * h * t) / h;
      const kick = t < 0.12 ? Math.sin(2 * Math.PI * (60 + 200 * Math.exp(-30 * t)) * t) * Math.exp(-25 * t) : 0;
      mix[i] += 0.12 * env * v * (1 - pan) + 0.3 * kick;
      mix[SEGMENT + i] += 0.12 * env * v * pan + 0.3 * kick;
    }
  }
  for (let i = 0; i < 2 * SEGMENT; i++) mix[i] += 0.01 * (rand() - 0.5);
  const spec = new Float32Array(4 * FREQ_BINS * FRAMES);
  new Spectrogram(SEGMENT).forward(mix.subarray(0, SEGMENT), mix.subarray(SEGMENT), spec);
  return { mix, spec };
}

export function fingerprintOf(freq: Float32Array, time: Float32Array): Fingerprint {
  const pick = (a: Float32Array): number[] => {
    const out: number[] = [];
    for (let i = 0; i < a.length; i += STRIDE) out.push(a[i]);
    return out;
  };
  return { stride: STRIDE, freq: pick(freq), time: pick(time) };
}

/** Whether two fingerprints describe the same output samples. */
const sameSamples = (a: Fingerprint, b: Fingerprint): boolean => a.stride === b.stride && a.freq.length === b.freq.length && a.time.length === b.time.length;

/** Max abs difference between two fingerprints; Infinity when they do not describe the same samples. */
export function fingerprintDistance(a: Fingerprint, b: Fingerprint): number {
  if (!sameSamples(a, b)) return Infinity;
  let d = 0;
  for (const k of ['freq', 'time'] as const) {
    for (let i = 0; i < a[k].length; i++) {
      const x = Math.abs(a[k][i] - b[k][i]);
      if (!(x <= d)) d = Number.isNaN(x) ? Infinity : x;
    }
  }
  return d;
}

/**
 * Signal-to-error ratio of `b` against the reference `a` in dB, the lower of the two outputs';
 * -Infinity when they do not describe the same samples or `b` holds a non-finite value.
 */
export function fingerprintSnrDb(a: Fingerprint, b: Fingerprint): number {
  if (!sameSamples(a, b)) return -Infinity;
  let worst = Infinity;
  for (const k of ['freq', 'time'] as const) {
    let signal = 0;
    let error = 0;
    for (let i = 0; i < a[k].length; i++) {
      signal += a[k][i] ** 2;
      error += (a[k][i] - b[k][i]) ** 2;
    }
    if (!Number.isFinite(error)) return -Infinity;
    worst = Math.min(worst, error === 0 ? Infinity : 10 * Math.log10(signal / error));
  }
  return worst;
}

export function isFingerprint(v: unknown): v is Fingerprint {
  const f = v as Fingerprint;
  return !!f && typeof f.stride === 'number' && Array.isArray(f.freq) && Array.isArray(f.time);
}
