/**
 * The shared stem encoders in streaming mode (common/src/audio-encode, StemStreamOptions), as the
 * mix route uses them: bytes leave the encoder as it makes them, the header first. The MP3's Info
 * tag is built from the sample count before any frame exists, so it must agree with what LAME then
 * writes: checked by decoding with mpg123 (gapless, through the mix's own decoder) to exactly the
 * samples fed, and against the collecting encoder's frames.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  createMp3StreamEncoder, createStemEncoder, createWavStreamEncoder, infoTagSamples, type Mp3Quality,
} from '@msaas/common/audio-encode/index';
import { parseFrameHeader } from '@msaas/common';
import { decodeStem } from '../src/stem-decode.ts';

/** A deterministic stereo signal of `n` samples (tones and noise), so LAME has something to spend bits on. */
function signal(n: number, seed = 1): [Float32Array, Float32Array] {
  let s = seed;
  const rnd = (): number => ((s = (s * 1_103_515_245 + 12_345) >>> 0) / 2 ** 32) - 0.5;
  const l = new Float32Array(n);
  const r = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    l[i] = 0.4 * Math.sin(i * 0.031) + 0.1 * rnd();
    r[i] = 0.3 * Math.sin(i * 0.047 + 1) + 0.1 * rnd();
  }
  return [l, r];
}

/** Feeds `chs` in uneven chunks; returns what onBytes received (copied) and how many calls came before finish(). */
async function streamed(quality: Mp3Quality, chs: [Float32Array, Float32Array]): Promise<{ bytes: Buffer; callsBeforeFinish: number }> {
  const parts: Buffer[] = [];
  const enc = await createMp3StreamEncoder(44_100, 2, quality, { totalSamples: chs[0].length, onBytes: (b) => void parts.push(Buffer.from(b)) });
  const sizes = [1000, 11_025, 4096, 44_100, 7];
  for (let i = 0, k = 0; i < chs[0].length; k++) {
    const n = Math.min(sizes[k % sizes.length]!, chs[0].length - i);
    enc.encode([chs[0].subarray(i, i + n), chs[1].subarray(i, i + n)]);
    i += n;
  }
  const callsBeforeFinish = parts.length;
  expect(enc.finish().length).toBe(0);
  return { bytes: Buffer.concat(parts), callsBeforeFinish };
}

async function collected(quality: Mp3Quality, chs: [Float32Array, Float32Array]): Promise<Buffer> {
  const enc = await createMp3StreamEncoder(44_100, 2, quality);
  for (let i = 0; i < chs[0].length; i += 44_100) enc.encode([chs[0].subarray(i, i + 44_100), chs[1].subarray(i, i + 44_100)]);
  return Buffer.from(enc.finish());
}

async function decodedLength(mp3: Buffer): Promise<number> {
  let n = 0;
  for await (const [l] of decodeStem(Readable.from([mp3]), 'mp3')) n += l.length;
  return n;
}

/** The bytes after the first (tag) frame. */
const music = (mp3: Buffer): Buffer => mp3.subarray(parseFrameHeader(mp3, 0)!.length);

describe('streaming MP3 encoder (Info tag from the sample count)', () => {
  const qualities: [string, Mp3Quality][] = [
    ['VBR V0', { vbrQuality: 0 }],
    ['VBR V2', { vbrQuality: 2 }],
    ['VBR V5', { vbrQuality: 5 }],
    ['VBR V7 (LAME encodes at 32 kHz: collected)', { vbrQuality: 7 }],
    ['CBR 128', { bitrate: 128 }],
    ['CBR 320', { bitrate: 320 }],
  ];
  it.each(qualities)('%s: decodes gapless to exactly the samples fed, with the collecting encoder\'s frames, for lengths around frame edges', async (_, quality) => {
    for (const n of [1, 575, 576, 1152, 1153, 44_100 + 777, 3 * 44_100]) {
      const chs = signal(n);
      const s = await streamed(quality, chs);
      const whole = await collected(quality, chs);
      if (parseFrameHeader(whole, 0)!.sampleRate !== 44_100) {
        // LAME resampled (V7 encodes at 32 kHz): collected and handed over whole at finish, as without streaming
        expect(s.bytes.equals(whole)).toBe(true);
        expect(s.callsBeforeFinish).toBe(0);
      } else {
        expect(infoTagSamples(s.bytes)).toBe(n);
        expect(music(s.bytes).equals(music(whole))).toBe(true);
        expect(await decodedLength(s.bytes)).toBe(n);
      }
    }
  });

  it('hands the tag and frames out while encoding, not at the end (10 s at V2)', async () => {
    const chs = signal(10 * 44_100);
    const s = await streamed({ vbrQuality: 2 }, chs);
    expect(s.callsBeforeFinish).toBeGreaterThan(10);
    expect(infoTagSamples(s.bytes)).toBe(chs[0].length);
  });

  it('VBR V9 (LAME resamples to 22.05 kHz): collected and handed over at finish, identical to the collecting encoder', async () => {
    const chs = signal(44_100 + 333);
    const s = await streamed({ vbrQuality: 9 }, chs);
    expect(s.callsBeforeFinish).toBe(0);
    expect(s.bytes.equals(await collected({ vbrQuality: 9 }, chs))).toBe(true);
  });

  it('refuses more or fewer samples than announced (the header would lie)', async () => {
    const chs = signal(2000);
    const over = await createMp3StreamEncoder(44_100, 2, { vbrQuality: 2 }, { totalSamples: 1000, onBytes: () => undefined });
    expect(() => over.encode(chs)).toThrow(RangeError);
    const under = await createMp3StreamEncoder(44_100, 2, { vbrQuality: 2 }, { totalSamples: 3000, onBytes: () => undefined });
    under.encode(chs);
    expect(() => under.finish()).toThrow(RangeError);
    const wav = createWavStreamEncoder(44_100, 2, { totalSamples: 3000, onBytes: () => undefined });
    wav.encode(chs);
    expect(() => wav.finish()).toThrow(RangeError);
  });
});

describe('streaming WAV and FLAC through createStemEncoder', () => {
  it.each(['wav', 'flac'] as const)('%s: the streamed bytes equal the collected file, header first', async (format) => {
    const chs = signal(3 * 4096 + 100);
    const parts: Buffer[] = [];
    const enc = await createStemEncoder(format, 44_100, 2, undefined, { totalSamples: chs[0].length, onBytes: (b) => void parts.push(Buffer.from(b)) });
    const whole = await createStemEncoder(format, 44_100, 2);
    for (let i = 0; i < chs[0].length; i += 5000) {
      const piece = [chs[0].subarray(i, i + 5000), chs[1].subarray(i, i + 5000)];
      enc.encode(piece);
      whole.encode(piece);
    }
    const before = parts.length;
    enc.finish();
    const expected = Buffer.from(whole.finish());
    expect(before).toBeGreaterThan(1);
    if (format === 'wav') expect(Buffer.concat(parts).equals(expected)).toBe(true);
    // FLAC: STREAMINFO of a stream leaves the frame sizes unknown (0); the frames are the same
    else expect(Buffer.concat(parts).subarray(42).equals(expected.subarray(42))).toBe(true);
  });
});
