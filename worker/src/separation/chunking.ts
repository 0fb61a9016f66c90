/**
 * Demucs `apply_model` chunking: segments of the training length with `overlap`, each chunk
 * centred in its segment with zero padding where the song ends, outputs blended with a triangular
 * weight. Here the blend is streaming: only one segment of accumulator per stem is kept, and the
 * samples no later chunk can touch are handed out as soon as a chunk is added.
 */
export function strideFor(segment: number, overlap: number): number {
  if (!(overlap >= 0 && overlap < 1)) throw new RangeError(`overlap must be in [0, 1), got ${overlap}`);
  return Math.floor((1 - overlap) * segment);
}

/** Rising 1..segment/2+1 then falling to 1, divided by its max (exactly as Demucs builds it). */
export function transitionWeight(segment: number): Float32Array {
  const w = new Float32Array(segment);
  const half = Math.floor(segment / 2);
  for (let i = 0; i < half + 1; i++) w[i] = i + 1;
  for (let i = half + 1; i < segment; i++) w[i] = segment - i;
  let max = 0;
  for (let i = 0; i < segment; i++) max = Math.max(max, w[i]);
  for (let i = 0; i < segment; i++) w[i] /= max;
  return w;
}

/** Where chunk `index` sits: its song offset, its length, and the segment window around it. */
export interface ChunkPlacement {
  offset: number;
  length: number;
  /** Song index of segment sample 0 (may be negative: zero padding). */
  windowStart: number;
  /** Index inside the model output where the chunk's own samples start. */
  trim: number;
}

export function placeChunk(offset: number, songLength: number, segment: number): ChunkPlacement {
  const length = Math.min(segment, songLength - offset);
  const delta = segment - length;
  const trim = Math.floor(delta / 2);
  return { offset, length, windowStart: offset - trim, trim };
}

/**
 * Weighted overlap-add for `tracks` stereo outputs over a window of one segment starting at the
 * current chunk's offset.
 */
export class StreamingOverlapAdd {
  private readonly acc: Float32Array[][];
  private readonly weightSum: Float32Array;
  private readonly out: Float32Array[][];

  constructor(
    readonly tracks: number,
    readonly segment: number,
    readonly stride: number,
    private readonly weight: Float32Array = transitionWeight(segment),
  ) {
    const mk = (n: number): Float32Array[][] =>
      Array.from({ length: tracks }, () => [new Float32Array(n), new Float32Array(n)]);
    this.acc = mk(segment);
    this.out = mk(segment);
    this.weightSum = new Float32Array(segment);
  }

  /** Adds track `s`'s chunk output (`left`/`right` from index `trim`, `length` samples). */
  add(s: number, left: Float32Array, right: Float32Array, trim: number, length: number): void {
    const w = this.weight;
    const [al, ar] = this.acc[s];
    for (let t = 0; t < length; t++) {
      al[t] += w[t] * left[trim + t];
      ar[t] += w[t] * right[trim + t];
    }
  }

  addWeights(length: number): void {
    const w = this.weight;
    const ws = this.weightSum;
    for (let t = 0; t < length; t++) ws[t] += w[t];
  }

  /**
   * Finishes the first `count` samples of the window: returns them normalised by the summed
   * weights (views into reused buffers, valid until the next call), with any non-finite sample
   * replaced by 0 so nothing but finite audio reaches an encoder. Then slides the window by
   * `stride`. `nonFinite` counts replaced samples.
   */
  emit(count: number): { tracks: Float32Array[][]; nonFinite: number } {
    let nonFinite = 0;
    const ws = this.weightSum;
    for (let s = 0; s < this.tracks; s++) {
      for (let c = 0; c < 2; c++) {
        const a = this.acc[s][c];
        const o = this.out[s][c];
        for (let t = 0; t < count; t++) {
          const v = a[t] / ws[t];
          if (Number.isFinite(v)) o[t] = v;
          else {
            o[t] = 0;
            nonFinite++;
          }
        }
      }
    }
    const views = this.out.map(([l, r]) => [l.subarray(0, count), r.subarray(0, count)]);
    this.slide();
    return { tracks: views, nonFinite };
  }

  /**
   * The window's first `count` samples as they stand (raw Σ w·out and Σ w, copies): after the last
   * chunk of a range has been emitted, the part of its output that the next range's first chunk
   * overlaps (ranges.ts stitches the two).
   */
  pending(count: number): { acc: Float32Array[][]; weightSum: Float32Array } {
    return { acc: this.acc.map(([l, r]) => [l.slice(0, count), r.slice(0, count)]), weightSum: this.weightSum.slice(0, count) };
  }

  private slide(): void {
    const { stride, segment } = this;
    for (const pair of this.acc) {
      for (const a of pair) {
        a.copyWithin(0, stride, segment);
        a.fill(0, segment - stride);
      }
    }
    this.weightSum.copyWithin(0, stride, segment);
    this.weightSum.fill(0, segment - stride);
  }
}

/**
 * The samples where one range's last chunk and the next range's first chunk overlap, exactly as
 * StreamingOverlapAdd makes them in one pass: there the window holds the earlier chunk's Σ w·out and
 * Σ w (`pending`), the later chunk's output is added (`acc += w·out`, `weightSum += w`, the same
 * float32 operations in the same order) and the sum divided, non-finite samples becoming 0. So a
 * song split into ranges and stitched here is bit-identical to the song run whole.
 * `head[s]` is the later chunk's own output (left, right) over the overlap, `weight` the blend.
 */
export function stitchOverlap(
  pending: { acc: readonly (readonly Float32Array[])[]; weightSum: Float32Array },
  head: readonly (readonly Float32Array[])[],
  weight: Float32Array,
): { tracks: Float32Array[][]; nonFinite: number } {
  const n = head[0]![0]!.length;
  const ws = new Float32Array(n);
  for (let t = 0; t < n; t++) ws[t] = (t < pending.weightSum.length ? pending.weightSum[t]! : 0) + weight[t]!;
  let nonFinite = 0;
  const tracks = head.map((pair, s) =>
    pair.map((x, c) => {
      const prev = pending.acc[s]![c]!;
      const acc = new Float32Array(n);
      for (let t = 0; t < n; t++) acc[t] = (t < prev.length ? prev[t]! : 0) + weight[t]! * x[t]!;
      const out = new Float32Array(n);
      for (let t = 0; t < n; t++) {
        const v = acc[t]! / ws[t]!;
        if (Number.isFinite(v)) out[t] = v;
        else nonFinite++;
      }
      return out;
    }),
  );
  return { tracks, nonFinite };
}
