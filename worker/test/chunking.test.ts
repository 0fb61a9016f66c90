import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { placeChunk, strideFor, transitionWeight, StreamingOverlapAdd } from '../src/separation/chunking.ts';

/** Demucs apply_model's split/blend, written plainly over whole-song buffers. */
function referenceBlend(length: number, segment: number, overlap: number, chunkOut: (offset: number, t: number) => number): Float64Array {
  const stride = strideFor(segment, overlap);
  const w = transitionWeight(segment);
  const out = new Float64Array(length);
  const sum = new Float64Array(length);
  for (let offset = 0; offset < length; offset += stride) {
    const n = Math.min(segment, length - offset);
    for (let t = 0; t < n; t++) {
      out[offset + t] += w[t] * chunkOut(offset, t);
      sum[offset + t] += w[t];
    }
  }
  return out.map((v, i) => v / sum[i]);
}

describe('chunking', () => {
  it("builds the triangular weight as demucs-js does (1..segment/2+1, then segment-i)", () => {
    const w = transitionWeight(10);
    [1, 2, 3, 4, 5, 6, 4, 3, 2, 1].forEach((v, i) => expect(w[i]).toBeCloseTo(v / 6, 6));
  });

  it('centres a short last chunk in its segment', () => {
    expect(placeChunk(0, 1000, 400)).toEqual({ offset: 0, length: 400, windowStart: 0, trim: 0 });
    expect(placeChunk(900, 1000, 400)).toEqual({ offset: 900, length: 100, windowStart: 750, trim: 150 });
  });

  it('streams the same blend as whole-song overlap-add, one window of memory', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3000 }),
        fc.constantFrom(0, 0.1, 0.25, 0.5),
        (length, overlap) => {
          const segment = 400;
          const stride = strideFor(segment, overlap);
          // A chunk-dependent output so the weights matter.
          const chunkOut = (offset: number, t: number): number => Math.sin(0.01 * (offset + t)) + offset / 1000;
          const want = referenceBlend(length, segment, overlap, chunkOut);
          const ola = new StreamingOverlapAdd(1, segment, stride);
          const got: number[] = [];
          for (let offset = 0; offset < length; offset += stride) {
            const p = placeChunk(offset, length, segment);
            const seg = Float32Array.from({ length: segment }, (_, i) => chunkOut(offset, i - p.trim));
            ola.add(0, seg, seg, p.trim, p.length);
            ola.addWeights(p.length);
            const last = offset + stride >= length;
            got.push(...ola.emit(last ? p.length : stride).tracks[0][0]);
          }
          expect(got.length).toBe(length);
          for (let i = 0; i < length; i++) if (Math.abs(got[i] - want[i]) > 1e-5) return false;
          return true;
        },
      ),
      { numRuns: 60 },
    );
  });

  it('replaces non-finite samples by zero before they leave the blend', () => {
    const ola = new StreamingOverlapAdd(1, 8, 6);
    const bad = Float32Array.from([1, NaN, Infinity, -Infinity, 1, 1, 1, 1]);
    ola.add(0, bad, bad, 0, 8);
    ola.addWeights(8);
    const { tracks, nonFinite } = ola.emit(8);
    expect(nonFinite).toBe(6);
    expect(Array.from(tracks[0][0]).every(Number.isFinite)).toBe(true);
  });
});
