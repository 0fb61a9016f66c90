import { beforeAll, describe, expect, it } from 'vitest';
import { AudioInputError, parseMp4Aac, probeAudio, scanMp3 } from '@msaas/common';
import { synthesizeSong } from '../../worker/fixtures/synth.ts';
import { encodeM4a } from '../../worker/fixtures/encode-formats.ts';
import { findBox, forgeM4aSampleCount } from './forged-audio.ts';

/**
 * The header parsers allocate in proportion to what they accept, never to what a file claims
 * (issue 22 item 3). Memory is read as ArrayBuffer bytes (process.memoryUsage().arrayBuffers), where
 * the typed arrays of a sample table would show.
 */
const MiB = 2 ** 20;
let m4a: Uint8Array;

beforeAll(async () => {
  m4a = await encodeM4a(synthesizeSong({ seconds: 1, seed: 3 }), 44100);
}, 60_000);

function audioError(fn: () => unknown): AudioInputError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AudioInputError);
    return err as AudioInputError;
  }
  throw new Error('expected an AudioInputError');
}

/** Runs `fn` and returns its result with the ArrayBuffer bytes it left allocated and its time. */
function measured<T>(fn: () => T): { value: T; arrayBuffersMiB: number; ms: number } {
  const before = process.memoryUsage().arrayBuffers;
  const started = performance.now();
  const value = fn();
  return { value, arrayBuffersMiB: (process.memoryUsage().arrayBuffers - before) / MiB, ms: performance.now() - started };
}

describe('MP4: the sample table is checked without being built', () => {
  it('a 64 MiB M4A claiming one access unit per byte is measured by its units (too long), in milliseconds and with no table allocated', () => {
    for (const mediaSec of [undefined, 0]) {
      const forged = forgeM4aSampleCount(m4a, 64 * MiB, { mediaSec });
      const { value: track, arrayBuffersMiB, ms } = measured(() => parseMp4Aac(forged));
      expect(track.units).toBeGreaterThan(60_000_000);
      // 1,024 samples a unit at 44.1 kHz: the header's 1 s (or 0 s) does not make it short.
      expect(track.durationSec).toBeCloseTo((track.units * 1024) / 44100, 3);
      expect(arrayBuffersMiB).toBeLessThan(1);
      expect(ms).toBeLessThan(500);
      expect(probeAudio(forged).durationSec).toBeGreaterThan(1_000_000);
    }
  });

  it('builds the offsets and sizes only when read, and then they place every unit inside the file', () => {
    const track = parseMp4Aac(m4a);
    expect(track.units).toBeGreaterThan(40);
    const { value: sizes, arrayBuffersMiB } = measured(() => track.sizes);
    expect(sizes.length).toBe(track.units);
    expect(track.offsets.length).toBe(track.units);
    expect(arrayBuffersMiB).toBeLessThan(1);
    for (let i = 0; i < track.units; i++) expect(track.offsets[i]! + track.sizes[i]!).toBeLessThanOrEqual(m4a.length);
    expect(track.sizes).toBe(sizes); // built once
  });

  it('a media header understating the length is overruled by the units the track holds', () => {
    const honest = parseMp4Aac(m4a).durationSec;
    const lie = m4a.slice();
    const mdhd = findBox(lie, ['moov', 'trak', 'mdia', 'mdhd']).at + 8;
    new DataView(lie.buffer).setUint32(mdhd + 16, 1); // one tick
    const d = parseMp4Aac(lie).durationSec;
    expect(d).toBeGreaterThan(1);
    expect(d).toBeLessThanOrEqual(honest + 0.03);
  });

  it('a fixed sample size whose samples run past the end is truncated, found in one step per chunk', () => {
    const forged = forgeM4aSampleCount(m4a, 8 * MiB);
    const stsz = findBox(forged, ['moov', 'trak', 'mdia', 'minf', 'stbl', 'stsz']).at + 8;
    new DataView(forged.buffer).setUint32(stsz + 4, 2); // every unit 2 bytes: twice what the file holds
    const { value: err, ms } = measured(() => audioError(() => parseMp4Aac(forged)));
    expect(err.code).toBe('corrupt');
    expect(ms).toBeLessThan(200);
  });

  it('a file of ten thousand empty boxes is refused before the box list grows', () => {
    const filler = new Uint8Array(20_001 * 8);
    const view = new DataView(filler.buffer);
    for (let p = 0; p < filler.length; p += 8) {
      view.setUint32(p, 8);
      filler.set([0x66, 0x72, 0x65, 0x65], p + 4);
    }
    const b = new Uint8Array([...m4a.subarray(0, 24), ...filler, ...m4a.subarray(24)]);
    expect(audioError(() => parseMp4Aac(b))).toMatchObject({ code: 'corrupt', message: expect.stringMatching(/more than 10000 boxes/) });
  });
});

describe('MP3: the frame scan keeps a bounded list of runs', () => {
  it('64 MiB of 24-byte frames that lose sync every 3 frames is corrupt, with ~no memory, where it built 919k ranges (+114 MiB) before', () => {
    const frame = new Uint8Array(24);
    frame.set([0xff, 0xf3, 0x14, 0xc0]); // MPEG-2 Layer III, 8 kbit/s, 24 kHz, mono: 24 bytes
    const b = new Uint8Array(64 * MiB);
    for (let i = 0; i < 4; i++) b.set(frame, i * 24);
    for (let p = 97; p + 73 <= b.length; p += 73) for (let i = 0; i < 3; i++) b.set(frame, p + i * 24); // 3 frames, 1 junk byte
    const before = process.memoryUsage().heapUsed;
    const { value: err, ms } = measured(() => audioError(() => scanMp3(b)));
    expect(err).toMatchObject({ code: 'corrupt', message: expect.stringMatching(/loses sync more than 4096 times/) });
    expect((process.memoryUsage().heapUsed - before) / MiB).toBeLessThan(20);
    expect(ms).toBeLessThan(2000);
  });

  it('a damaged MP3 that loses sync a few times is still taken', () => {
    const frame = new Uint8Array(24);
    frame.set([0xff, 0xf3, 0x14, 0xc0]);
    const b = new Uint8Array(24 * 1000 + 10);
    for (let i = 0; i < 500; i++) b.set(frame, i * 24);
    for (let i = 0; i < 500; i++) b.set(frame, 500 * 24 + 10 + i * 24); // 10 junk bytes in the middle
    const s = scanMp3(b);
    expect(s.ranges).toHaveLength(2);
    expect(s.frames).toBe(1000);
  });
});
