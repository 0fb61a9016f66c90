/**
 * Issue 23 item 2, in process: a song separated range by range and stitched (ranges.ts) equals the
 * song separated in one pass sample for sample — the same float32 values, not merely close — for
 * several splits, whatever order the ranges are run in; and the stored layout of a range round-trips.
 * The stand-in model (test/helpers/standin-model.ts) keeps it fast; the overlap-add, STFT/iSTFT and
 * decoding are the real ones.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRACKS } from '@msaas/common';
import { createEngine, decodeAudio, stitchOverlap, transitionWeight, type DetailedEngine, type RangeOutput } from '../src/separation/index.ts';
import { SEGMENT } from '../src/separation/model.ts';
import { planSplit, rangeBytes, readRange } from '../src/ranges.ts';
import { synthesizeMp3 } from '../fixtures/synth.ts';
import { standinModelPath } from '../../test/helpers/standin-model.ts';

let engine: DetailedEngine;
let mp3: Uint8Array;

beforeAll(async () => {
  engine = await createEngine({ modelPath: standinModelPath(), threads: 1 });
  mp3 = await synthesizeMp3({ seconds: 40, seed: 5 });
}, 120_000);
afterAll(async () => engine?.close());

/** The stitched song, per source [left, right], from range outputs in song order. */
function stitch(outputs: RangeOutput[]): Float32Array[][] {
  const w = transitionWeight(SEGMENT);
  const parts: Float32Array[][][] = [];
  outputs.forEach((own, i) => {
    const prev = outputs[i - 1];
    if (own.head && prev?.tail) parts.push(stitchOverlap(prev.tail, own.head, w).tracks);
    parts.push(own.final);
  });
  return TRACKS.map((_, s) =>
    [0, 1].map((c) => {
      const n = parts.reduce((a, p) => a + p[s]![c]!.length, 0);
      const out = new Float32Array(n);
      let at = 0;
      for (const p of parts) {
        out.set(p[s]![c]!, at);
        at += p[s]![c]!.length;
      }
      return out;
    }),
  );
}

const firstDifference = (a: Float32Array, b: Float32Array): number => {
  if (a.length !== b.length) return -2;
  for (let i = 0; i < a.length; i++) if (Object.is(a[i], b[i]) === false) return i;
  return -1;
};

describe('a song split into ranges and stitched', () => {
  it('is bit-identical to the song run whole, for several splits and any order of the ranges', async () => {
    const { channels } = await decodeAudio(mp3);
    const whole = await engine.separateFloat(channels);
    const frames = channels[0].length;
    const chunks = Math.ceil(frames / engine.stride);
    expect(chunks).toBe(7);
    for (const starts of [[0, 2, 4], [0, 3], [0, 1, 2, 3, 4, 5]]) {
      const order = starts.map((_, i) => i).reverse(); // the last range first
      const outputs: RangeOutput[] = [];
      for (const i of order) outputs[i] = await engine.separateRange(mp3, { firstChunk: starts[i]!, endChunk: starts[i + 1] ?? null });
      // each range hands over through the store's layout
      const stored = outputs.map((o) => ({ ...readRange(rangeBytes(o)), stats: o.stats }));
      const stitched = stitch(stored);
      TRACKS.forEach((t, s) => {
        for (const c of [0, 1]) expect(firstDifference(stitched[s]![c]!, whole.stems[t][c]), `${t} ch${c} split ${starts.join(',')}`).toBe(-1);
      });
      expect(stored.at(-1)!.songFrames).toBe(frames);
    }
  }, 300_000);

  it('a worker keeping the song\'s decoder between its ranges (in order, skipping ahead, going back) stitches bit-identically and fetches the upload once', async () => {
    // 48 kHz: the resampler's state is carried across ranges too
    const song = await synthesizeMp3({ seconds: 40, seed: 6, sampleRate: 48000 });
    const { channels } = await decodeAudio(song);
    const whole = await engine.separateFloat(channels);
    const starts = [0, 1, 2, 3, 4, 5];
    for (const order of [[0, 1, 2, 3, 4, 5], [0, 2, 4, 1, 3, 5], [5, 4, 3, 2, 1, 0]]) {
      let fetches = 0;
      const input = { key: `song-${order.join('')}`, bytes: async () => (fetches++, song) };
      const outputs: RangeOutput[] = [];
      for (const i of order) outputs[i] = await engine.separateRange(input, { firstChunk: starts[i]!, endChunk: starts[i + 1] ?? null });
      const stitched = stitch(outputs.map((o) => ({ ...readRange(rangeBytes(o)), stats: o.stats })));
      TRACKS.forEach((t, s) => {
        for (const c of [0, 1]) expect(firstDifference(stitched[s]![c]!, whole.stems[t][c]), `${t} ch${c} order ${order.join(',')}`).toBe(-1);
      });
      expect(fetches, `order ${order.join(',')}`).toBe(1);
    }
    // another song between two ranges of this one: the decoder is not kept across it, the upload is fetched again
    let fetches = 0;
    const input = { key: 'song-interleaved', bytes: async () => (fetches++, song) };
    await engine.separateRange(input, { firstChunk: 0, endChunk: 1 });
    await engine.separateRange(mp3, { firstChunk: 0, endChunk: 1 });
    const again = await engine.separateRange(input, { firstChunk: 1, endChunk: 2 });
    expect(fetches).toBe(2);
    expect(again.stats.chunks).toBe(1);
  }, 300_000);

  it('plans ranges of about SPLIT_RANGE_CHUNKS chunks, the last two halved, the last of at least two, none for a short song', () => {
    const stride = 257_985;
    expect(planSplit(3 * stride, stride, 4)).toBeNull();
    // a long song starts with ranges of 1, 1 and 2 chunks (first audio after one chunk), then ~4, and ends with ~2s
    const long = planSplit(103 * stride - 5, stride, 4)!;
    expect(long.slice(0, 4)).toEqual([0, 1, 2, 4]);
    expect(long).toHaveLength(3 + 25 + 2);
    const sizes = long.map((a, i) => (long[i + 1] ?? 103) - a);
    expect(sizes.slice(3, -4).every((n) => n >= 3 && n <= 4)).toBe(true);
    expect(sizes.slice(-4)).toEqual([2, 2, 2, 2]);
    expect(103 - long.at(-1)!).toBeGreaterThanOrEqual(2);
    const starts = planSplit(10 * stride, stride, 3)!;
    expect(starts[0]).toBe(0);
    expect(10 - starts.at(-1)!).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!).toBeGreaterThanOrEqual(2);
  });
});
