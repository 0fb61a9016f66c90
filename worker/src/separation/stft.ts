import FFT from 'fft.js';

/** Demucs `_spec` / `_ispec` parameters (HTDemucs: nfft 4096, hop 1024). */
export const N_FFT = 4096;
export const HOP = 1024;
export const FREQ_BINS = N_FFT / 2; // the Nyquist bin is dropped
/** Left padding of `_spec`: hl // 2 * 3. */
const PAD = (HOP / 2) * 3;

export function framesFor(length: number): number {
  return Math.ceil(length / HOP);
}

/**
 * Demucs spectrogram of a fixed-length signal, as the model wants it: `[4, 2048, frames]` with
 * channels [L.re, L.im, R.re, R.im], and its inverse. FFT plans, the window and the scratch
 * buffers are made once per instance and reused for every chunk.
 *
 * Equivalences with torch used here (derived from `_spec`: reflect-pad by 1536 + tail, stft with
 * center=True, keep frames 2..2+le): kept frame t covers input samples [t*1024 - 1536, t*1024 + 2560)
 * of the signal with reflection at both ends, so the outer centre padding is never read. For
 * `_ispec`, the two zero frames padded on each side only add window energy, and every kept output
 * sample is covered by four frames, so the window-square envelope is the periodic sum (1.5).
 */
export class Spectrogram {
  readonly length: number;
  readonly frames: number;
  private readonly fft = new FFT(N_FFT);
  /** Hann (periodic) × 1/sqrt(N): forward analysis window with torch's normalisation folded in. */
  private readonly analysis = new Float64Array(N_FFT);
  /**
   * Hann × sqrt(N) / envelope / N: synthesis window with normalisation, envelope and the inverse
   * FFT's 1/N folded in (inverseAdd runs a forward FFT on the conjugate, which does not divide).
   */
  private readonly synthesis = new Float64Array(N_FFT);
  private readonly complexIn = new Float64Array(2 * N_FFT);
  private readonly complexOut = new Float64Array(2 * N_FFT);

  constructor(length: number) {
    if (length <= PAD + HOP) throw new RangeError(`signal too short for the Demucs spectrogram: ${length}`);
    this.length = length;
    this.frames = framesFor(length);
    const hann = new Float64Array(N_FFT);
    for (let n = 0; n < N_FFT; n++) hann[n] = 0.5 - 0.5 * Math.cos((2 * Math.PI * n) / N_FFT);
    const env = new Float64Array(HOP);
    for (let n = 0; n < N_FFT; n++) env[n % HOP] += hann[n] * hann[n];
    const norm = Math.sqrt(N_FFT);
    for (let n = 0; n < N_FFT; n++) {
      this.analysis[n] = hann[n] / norm;
      this.synthesis[n] = (hann[n] * norm) / env[n % HOP] / N_FFT;
    }
  }

  /** Size of one spectrogram buffer: 4 × 2048 × frames floats. */
  get specSize(): number {
    return 4 * FREQ_BINS * this.frames;
  }

  /**
   * Writes `_spec` of the stereo signal into `out` ([4][2048][frames], complex as channels). Both
   * channels go through one complex FFT per frame (z = x + i·y) and are told apart by symmetry:
   * X_f = (Z_f + conj(Z_{N−f})) / 2, Y_f = (Z_f − conj(Z_{N−f})) / 2i — one 4,096-point transform
   * per frame instead of two real ones.
   */
  forward(left: Float32Array, right: Float32Array, out: Float32Array): void {
    const { length: L, frames: T, complexIn: C, complexOut: Z, analysis } = this;
    const plane = FREQ_BINS * T;
    const last = L - 1;
    const [lRe, lIm, rRe, rIm] = [0, plane, 2 * plane, 3 * plane];
    for (let t = 0; t < T; t++) {
      const start = t * HOP - PAD;
      if (start >= 0 && start + N_FFT <= L) {
        for (let n = 0; n < N_FFT; n++) {
          const w = analysis[n];
          C[2 * n] = left[start + n] * w;
          C[2 * n + 1] = right[start + n] * w;
        }
      } else {
        for (let n = 0; n < N_FFT; n++) {
          let i = start + n;
          if (i < 0) i = -i;
          else if (i > last) i = 2 * last - i; // reflect (no edge repeat), as torch 'reflect'
          const w = analysis[n];
          C[2 * n] = left[i] * w;
          C[2 * n + 1] = right[i] * w;
        }
      }
      this.fft.transform(Z, C);
      for (let f = 0; f < FREQ_BINS; f++) {
        const k = f === 0 ? 0 : N_FFT - f;
        const a = Z[2 * f], b = Z[2 * f + 1]; // Z_f
        const c = Z[2 * k], d = Z[2 * k + 1]; // Z_{N−f}
        const at = f * T + t;
        out[lRe + at] = 0.5 * (a + c);
        out[lIm + at] = 0.5 * (b - d);
        out[rRe + at] = 0.5 * (b + d);
        out[rIm + at] = 0.5 * (c - a);
      }
    }
  }

  /**
   * Adds `_ispec` of one source's spectrogram (`spec` at `offset`, [4][2048][frames]) into the two
   * output channels. Both channels go through one complex FFT per frame (x + i·y packing). It is
   * the inverse FFT computed as conj(FFT(conj(C))) · 1/N: fft.js's inverseTransform divides all
   * 8,192 outputs by N in a pass of its own (≈ 0.2 s per minute of audio), here the conjugates are
   * folded into the packing and the unpacking and 1/N into the synthesis window.
   */
  inverseAdd(spec: Float32Array, offset: number, outLeft: Float32Array, outRight: Float32Array): void {
    const { length: L, frames: T, complexIn: C, complexOut: z, synthesis } = this;
    const plane = FREQ_BINS * T;
    const lr = offset, li = offset + plane, rr = offset + 2 * plane, ri = offset + 3 * plane;
    for (let t = 0; t < T; t++) {
      // C_k = conj(X_k + i·Y_k), X (left) and Y (right) Hermitian-completed.
      // DC: a real signal's DC bin is real; like irfft (and torch.istft) ignore the model's
      // imaginary part there, which the packing would otherwise leak into the other channel.
      C[0] = spec[lr + t];
      C[1] = -spec[rr + t];
      for (let f = 1; f < FREQ_BINS; f++) {
        const xr = spec[lr + f * T + t], xi = spec[li + f * T + t];
        const yr = spec[rr + f * T + t], yi = spec[ri + f * T + t];
        C[2 * f] = xr - yi; // conj(X_f + i·Y_f)
        C[2 * f + 1] = -xi - yr;
        const k = N_FFT - f; // conj(conj(X_f) + i·conj(Y_f))
        C[2 * k] = xr + yi;
        C[2 * k + 1] = xi - yr;
      }
      C[2 * FREQ_BINS] = 0; // the Nyquist bin Demucs pads back with zero
      C[2 * FREQ_BINS + 1] = 0;
      this.fft.transform(z, C); // z = N · conj(x + i·y)
      const start = t * HOP - PAD;
      const n0 = Math.max(0, -start);
      const n1 = Math.min(N_FFT, L - start);
      for (let n = n0; n < n1; n++) {
        const w = synthesis[n];
        outLeft[start + n] += z[2 * n] * w;
        outRight[start + n] -= z[2 * n + 1] * w;
      }
    }
  }
}
