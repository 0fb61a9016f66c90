/** Small helpers shared by the separation tests. */

export { sdr } from '../../fixtures/sdr.ts';

export function rms(x: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return Math.sqrt(s / Math.max(1, x.length));
}

export function countNonFinite(channels: readonly Float32Array[]): number {
  let n = 0;
  for (const ch of channels) for (let i = 0; i < ch.length; i++) if (!Number.isFinite(ch[i])) n++;
  return n;
}

/** Lag (in samples, 0..maxLag) at which `b` best matches `a` delayed (MP3 encoder delay). */
export function bestLag(a: Float32Array, b: Float32Array, maxLag: number, span = 44100): number {
  let best = 0;
  let bestScore = -Infinity;
  const from = Math.min(4410, a.length - span - maxLag);
  for (let lag = 0; lag <= maxLag; lag++) {
    let s = 0;
    for (let i = from; i < from + span; i++) s += a[i] * b[i + lag];
    if (s > bestScore) {
      bestScore = s;
      best = lag;
    }
  }
  return best;
}

/** Signal-to-noise ratio in dB of `b` (delayed by `lag`) against `a`, over the overlap. */
export function snrAligned(a: Float32Array, b: Float32Array, lag: number): number {
  let num = 0;
  let den = 0;
  const n = Math.min(a.length, b.length - lag);
  for (let i = 0; i < n; i++) {
    num += a[i] * a[i];
    den += (a[i] - b[i + lag]) ** 2;
  }
  return 10 * Math.log10(num / den);
}

/** An ID3v2.3 tag of `size` payload bytes whose content looks like MPEG sync words (to fool naive scanners). */
export function id3v2Tag(payloadSize: number): Uint8Array {
  const tag = new Uint8Array(10 + payloadSize);
  tag.set([0x49, 0x44, 0x33, 3, 0, 0]);
  tag[6] = (payloadSize >> 21) & 0x7f;
  tag[7] = (payloadSize >> 14) & 0x7f;
  tag[8] = (payloadSize >> 7) & 0x7f;
  tag[9] = payloadSize & 0x7f;
  for (let i = 10; i < tag.length; i += 4) tag.set([0xff, 0xfb, 0x90, 0x64].slice(0, Math.min(4, tag.length - i)), i);
  return tag;
}

export function id3v1Tag(): Uint8Array {
  const tag = new Uint8Array(128);
  tag.set([0x54, 0x41, 0x47]); // "TAG"
  return tag;
}

/** Joins typed arrays of one kind (bytes or samples) into a new one of that kind. */
export function concat<T extends Uint8Array | Float32Array>(...parts: T[]): T {
  const Kind = (parts[0]?.constructor ?? Uint8Array) as new (length: number) => T;
  const out = new Kind(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Bit-exact equality of two sample arrays (fast, unlike a deep toEqual on big arrays). */
export function sameSamples(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** Index of the sample with the largest magnitude. */
export function peakIndex(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (Math.abs(a[i]) > Math.abs(a[best])) best = i;
  return best;
}
