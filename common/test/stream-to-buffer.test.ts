import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { streamToBuffer } from '../src/store.ts';

const parts = (...sizes: number[]): Buffer[] => sizes.map((n, i) => Buffer.alloc(n, i + 1));
const joined = (bufs: Buffer[]): Buffer => Buffer.concat(bufs);

describe('streamToBuffer', () => {
  it('with the object size, returns the bytes in one buffer of exactly that size', async () => {
    const bufs = parts(5, 7, 3);
    const out = await streamToBuffer(Readable.from(bufs), 15);
    expect(out.equals(joined(bufs))).toBe(true);
  });

  it('returns what came when the stream is shorter or longer than the size given, and joins without a size', async () => {
    const bufs = parts(4, 4, 4);
    expect((await streamToBuffer(Readable.from(bufs), 20)).equals(joined(bufs))).toBe(true);
    expect((await streamToBuffer(Readable.from(bufs), 6)).equals(joined(bufs))).toBe(true);
    expect((await streamToBuffer(Readable.from(bufs))).equals(joined(bufs))).toBe(true);
    expect((await streamToBuffer(Readable.from([]), 0)).length).toBe(0);
  });
});
