import { describe, expect, it } from 'vitest';
import { SongReader } from '../src/separation/song-reader.ts';
import type { AudioStream } from '../src/separation/decode-audio.ts';

/** A decoder of a song of `frames` frames whose sample i is i (left) and −i (right), counting what it decodes. */
function counted(frames: number): { open: () => Promise<AudioStream>; opened: number; decoded: number } {
  const stats = { opened: 0, decoded: 0, open: async (): Promise<AudioStream> => {
    stats.opened++;
    let pos = 0;
    return {
      format: 'wav',
      estimatedSamples: frames,
      get done() {
        return pos >= frames;
      },
      read(dst, offset, count) {
        const n = Math.min(count, frames - pos);
        for (let i = 0; i < n; i++) {
          dst[0]![offset + i] = pos + i;
          dst[1]![offset + i] = -(pos + i);
        }
        pos += n;
        stats.decoded += n;
        return n;
      },
      close() {},
    };
  } };
  return stats;
}

/** What a pipeline does for a range: seek toward `from`, read and drop up to it, then read `count`. */
async function rangeRead(r: SongReader, from: number, count: number): Promise<Float32Array[]> {
  let at = await r.seek(from);
  const scratch = [new Float32Array(1000), new Float32Array(1000)];
  while (at < from) at += await r.read(scratch, 0, Math.min(1000, from - at));
  const out = [new Float32Array(count), new Float32Array(count)];
  let got = 0;
  while (got < count) {
    const n = await r.read(out, got, Math.min(700, count - got));
    if (n === 0) break;
    got += n;
  }
  return out.map((c) => c.subarray(0, got));
}

describe('a song decoder kept between ranges', () => {
  it('serves overlapping ranges in order from one forward decode, each with the decoder\'s own samples', async () => {
    const song = counted(100_000);
    const r = new SongReader(song.open, 5_000);
    await r.start();
    // windows that overlap the one before by 2,000 frames, as a range's window overlaps the last one's input
    for (let from = 0; from < 100_000; from += 18_000) {
      const [l, rr] = await rangeRead(r, from, 20_000);
      const n = Math.min(20_000, 100_000 - from);
      expect(l!.length).toBe(n);
      for (const i of [0, 1, n - 1]) {
        expect(l![i]).toBe(from + i);
        expect(rr![i]).toBe(-(from + i));
      }
    }
    expect(song.opened).toBe(1);
    expect(song.decoded).toBe(100_000);
  });

  it('skips ahead by decoding only the gap, and starts over from the file\'s start to go back past what it keeps', async () => {
    const song = counted(100_000);
    const r = new SongReader(song.open, 5_000);
    await r.start();
    await rangeRead(r, 0, 10_000);
    const [ahead] = await rangeRead(r, 50_000, 10_000); // another worker ran the ranges between
    expect(ahead![0]).toBe(50_000);
    expect(song.decoded).toBe(60_000);
    const [back] = await rangeRead(r, 20_000, 1_000); // before the kept 55,000–60,000
    expect(back![0]).toBe(20_000);
    expect(song.opened).toBe(2);
    expect(song.decoded).toBe(60_000 + 21_000);
    const [atEnd] = await rangeRead(r, 99_000, 5_000); // the song ends inside the window
    expect(atEnd!.length).toBe(1_000);
  });
});
