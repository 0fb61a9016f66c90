import { describe, expect, it } from 'vitest';
import { AudioInputError, looksLikeMp3, parseFrameHeader, scanMp3 } from '../src/index.ts';

/** `count` MPEG-1 frames of one layer at 44.1 kHz stereo with silent payloads (bitrate index 9). */
function frames(layer: 1 | 2 | 3, count: number): { bytes: Uint8Array; samplesPerFrame: number } {
  const header = Uint8Array.from([0xff, 0xe0 | (3 << 3) | ((4 - layer) << 1) | 1, (9 << 4) | (0 << 2), 0x00]);
  const h = parseFrameHeader(header, 0)!;
  const out = new Uint8Array(h.length * count);
  for (let i = 0; i < count; i++) out.set(header, i * h.length);
  return { bytes: out, samplesPerFrame: h.samples };
}

const id3 = (padding: number): Uint8Array => Uint8Array.from([0x49, 0x44, 0x33, 3, 0, 0, 0, 0, (padding >> 7) & 0x7f, padding & 0x7f, ...new Uint8Array(padding)]);
const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), (at += p.length));
  return out;
};

describe('one MPEG frame parser for the upload sniff and the worker scan', () => {
  for (const layer of [1, 2, 3] as const) {
    it(`accepts Layer ${layer} in both, and the scan measures its length`, () => {
      const { bytes, samplesPerFrame } = frames(layer, 40);
      const tagged = concat(id3(300), bytes);
      expect(looksLikeMp3(bytes)).toBe(true);
      expect(looksLikeMp3(tagged)).toBe(true);
      const scan = scanMp3(tagged);
      expect(scan.frames).toBe(40);
      expect(scan.durationSec).toBeCloseTo((40 * samplesPerFrame) / 44100, 6);
    });
  }

  it('refuses junk in both: random bytes, text, an ID3 tag alone, a single stray header', () => {
    let seed = 7;
    const random = Uint8Array.from({ length: 20_000 }, () => ((seed = (seed * 1103515245 + 12345) >>> 0) >> 16) & 0xff);
    const cases: [string, Uint8Array, AudioInputError['code']][] = [
      ['random bytes', random, 'not_mp3'],
      ['text', new TextEncoder().encode('hello, this is not audio at all '.repeat(100)), 'not_mp3'],
      ['an ID3 tag alone', id3(500), 'empty'],
      ['a stray header in zeros', concat(new Uint8Array(100), frames(3, 1).bytes.slice(0, 4), new Uint8Array(2000)), 'not_mp3'],
    ];
    for (const [name, bytes, code] of cases) {
      expect(looksLikeMp3(bytes), name).toBe(false);
      let err: unknown;
      try {
        scanMp3(bytes);
      } catch (e) {
        err = e;
      }
      expect(err, name).toBeInstanceOf(AudioInputError);
      expect((err as AudioInputError).code, name).toBe(code);
    }
  });
});
