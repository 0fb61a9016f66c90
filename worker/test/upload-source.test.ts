import { describe, expect, it } from 'vitest';
import { decodeAudio, openUploadStream } from '../src/separation/index.ts';
import { readWhole } from '../src/separation/decode.ts';
import { UPLOAD_WINDOW_BYTES, type UploadSource } from '../src/separation/upload-source.ts';

/** A 16-bit stereo WAV of `seconds` at `rate`, with `pad` bytes of a LIST chunk before its data. */
function wav(seconds: number, rate: number, pad = 0): Uint8Array {
  const frames = seconds * rate;
  const data = frames * 4;
  const list = pad > 0 ? 8 + pad : 0;
  const b = new Uint8Array(44 + list + data);
  const v = new DataView(b.buffer);
  const tag = (at: number, s: string): void => [...s].forEach((c, i) => (b[at + i] = c.charCodeAt(0)));
  tag(0, 'RIFF');
  v.setUint32(4, b.length - 8, true);
  tag(8, 'WAVE');
  tag(12, 'fmt ');
  v.setUint32(16, 16, true);
  v.setUint16(20, 1, true);
  v.setUint16(22, 2, true);
  v.setUint32(24, rate, true);
  v.setUint32(28, rate * 4, true);
  v.setUint16(32, 4, true);
  v.setUint16(34, 16, true);
  let at = 36;
  if (pad > 0) {
    tag(at, 'LIST');
    v.setUint32(at + 4, pad, true);
    at += 8 + pad;
  }
  tag(at, 'data');
  v.setUint32(at + 4, data, true);
  at += 8;
  for (let i = 0; i < frames; i++, at += 4) {
    v.setInt16(at, Math.round(12000 * Math.sin(i / 9)), true);
    v.setInt16(at + 2, Math.round(9000 * Math.cos(i / 13)), true);
  }
  return b;
}

/** The stored upload as the worker sees it, counting the store requests and the bytes they return. */
function stored(bytes: Uint8Array, headBytes: number): UploadSource & { requests: number; largest: number } {
  const src = {
    size: bytes.length,
    head: bytes.slice(0, Math.min(headBytes, bytes.length)),
    requests: 0,
    largest: 0,
    async read(start: number, end: number) {
      src.requests++;
      src.largest = Math.max(src.largest, end - start);
      return bytes.slice(start, end);
    },
  };
  return src;
}

describe('a stored upload opened for decoding', () => {
  it('a WAV is read from the store as it decodes, a window at a time, to exactly the samples of the whole file', async () => {
    const file = wav(60, 48000); // 11.5 MB, resampled to 44.1 kHz on the way
    const src = stored(file, 1 << 20);
    const stream = await openUploadStream(src);
    const streamed = await readWhole(stream);
    stream.close();
    const whole = await decodeAudio(file);
    expect(streamed[0].length).toBe(whole.channels[0].length);
    for (const c of [0, 1] as const) expect(Buffer.from(streamed[c].buffer).equals(Buffer.from(whole.channels[c].buffer))).toBe(true);
    // never the whole file at once: requests of one window each
    expect(src.largest).toBeLessThanOrEqual(UPLOAD_WINDOW_BYTES);
    expect(src.requests).toBe(Math.ceil((file.length - 44) / UPLOAD_WINDOW_BYTES));
  });

  it('a WAV whose data chunk starts beyond the head, and any other format, are read whole (one request)', async () => {
    const padded = wav(2, 44100, 2 << 20);
    const src = stored(padded, 1 << 20);
    const stream = await openUploadStream(src);
    expect((await readWhole(stream))[0].length).toBe(2 * 44100);
    stream.close();
    expect(src.requests).toBe(1);
    expect(src.largest).toBe(padded.length);
  });

  it('a WAV cut short in the store is refused as the whole file would be', async () => {
    const file = wav(10, 44100);
    const cut = file.slice(0, file.length - 100_000);
    const src = stored(cut, 1 << 20);
    await expect(openUploadStream(src)).rejects.toThrow(/truncated/);
  });
});
