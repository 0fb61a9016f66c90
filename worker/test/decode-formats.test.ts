import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AudioInputError, probeAudio, type AudioFormat } from '@msaas/common';
import { decodeAudio } from '../src/separation/index.ts';
import { synthesizeSong } from '../fixtures/synth.ts';
import { encodeAs, encodeWav, type FixtureFormat } from '../fixtures/encode-formats.ts';

/**
 * Every input format decodes to 44.1 kHz stereo of the input's length and content; every broken
 * file of each format ends in an AudioInputError (never another error, never a hang). Fixtures are
 * the synthesized clip encoded by real encoders (worker/fixtures/encode-formats.ts).
 */
const SECONDS = 2;
const FORMATS: Array<[FixtureFormat, AudioFormat, { lossless: boolean; frame: number }]> = [
  ['wav16', 'wav', { lossless: true, frame: 1 }],
  ['wav24', 'wav', { lossless: true, frame: 1 }],
  ['wav32', 'wav', { lossless: true, frame: 1 }],
  ['wavf32', 'wav', { lossless: true, frame: 1 }],
  ['wav-ext', 'wav', { lossless: true, frame: 1 }],
  ['flac', 'flac', { lossless: true, frame: 4096 }],
  ['ogg-vorbis', 'ogg-vorbis', { lossless: false, frame: 2048 }],
  ['ogg-opus', 'ogg-opus', { lossless: false, frame: 960 }],
  ['m4a', 'mp4-aac', { lossless: false, frame: 1024 }],
];

const fixtures = new Map<string, Uint8Array>();
let source44: Float32Array[];
let source48: Float32Array[];
const key = (f: FixtureFormat, rate: number, stereo: boolean): string => `${f}-${rate}-${stereo ? 's' : 'm'}`;

beforeAll(async () => {
  source44 = synthesizeSong({ seconds: SECONDS, sampleRate: 44100, seed: 5 });
  source48 = synthesizeSong({ seconds: SECONDS, sampleRate: 48000, seed: 5 });
  for (const [f] of FORMATS) {
    fixtures.set(key(f, 44100, true), await encodeAs(f, source44, 44100));
    fixtures.set(key(f, 44100, false), await encodeAs(f, [source44[0]!], 44100));
    fixtures.set(key(f, 48000, true), await encodeAs(f, source48, 48000));
  }
}, 60_000);

/** Best normalised cross-correlation of a and b over lags within ±maxLag. */
function bestCorrelation(a: Float32Array, b: Float32Array, maxLag: number): { corr: number; lag: number } {
  let best = { corr: -1, lag: 0 };
  const n = Math.min(a.length, b.length) - 2 * maxLag;
  for (let lag = -maxLag; lag <= maxLag; lag += 1) {
    let ab = 0, aa = 0, bb = 0;
    for (let i = maxLag; i < maxLag + n; i += maxLag ? 17 : 1) {
      const x = a[i]!, y = b[i + lag]!;
      ab += x * y;
      aa += x * x;
      bb += y * y;
    }
    const corr = ab / Math.sqrt(aa * bb || 1);
    if (corr > best.corr) best = { corr, lag };
  }
  return best;
}

async function expectAudioError(p: Promise<unknown>, code?: string): Promise<AudioInputError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(AudioInputError);
  if (code) expect((err as AudioInputError).code).toBe(code);
  return err as AudioInputError;
}

describe('each input format decodes to 44.1 kHz stereo of its length and content', () => {
  for (const [f, format, { lossless, frame }] of FORMATS) {
    it(`${f}: stereo 44.1 kHz, mono (duplicated) and 48 kHz (resampled), the length the header states ±1 frame, the source's content`, async () => {
      for (const [rate, stereo] of [[44100, true], [44100, false], [48000, true]] as const) {
        const bytes = fixtures.get(key(f, rate, stereo))!;
        const probe = probeAudio(bytes);
        expect(probe.format).toBe(format);
        expect(probe.channels).toBe(stereo ? 2 : 1);
        const d = await decodeAudio(bytes);
        expect(d.format).toBe(format);
        expect(d.sampleRate).toBe(44100);
        // The length: the container's (FLAC from a streaming encoder does not state one: the source's), ±1 codec frame.
        const stated = probe.durationSec ?? SECONDS;
        expect(Math.abs(d.durationSec - stated) * 44100, `${f} ${rate} ${stereo}: ${d.durationSec} vs ${stated}`).toBeLessThanOrEqual(frame * (44100 / rate) + 1);
        if (!stereo) expect(d.channels[1]).toEqual(d.channels[0]);
        // The content: the source signal, aligned within a few ms (codec delay), closely correlated.
        const src = rate === 44100 ? source44 : null;
        if (src) {
          const { corr, lag } = bestCorrelation(d.channels[0], src[0]!, lossless ? 0 : 1200);
          expect(corr, `${f} correlation (lag ${lag})`).toBeGreaterThan(lossless ? 0.9999 : 0.95);
        }
      }
    });
  }

  it('refuses a WAV longer than maxDurationSec before decoding (too_long), from the header alone', async () => {
    const wav = fixtures.get(key('wav16', 44100, true))!;
    await expectAudioError(decodeAudio(wav, { maxDurationSec: 1 }), 'too_long');
  });

  it('stops decoding with too_long when a header understates the length (a FLAC claiming 0.2 s that holds 4 s, cap 1 s)', async () => {
    const flac = (await encodeAs('flac', synthesizeSong({ seconds: 4, sampleRate: 44100, seed: 6 }), 44100)).slice();
    flac[8 + 13] = flac[8 + 13]! & 0xf0;
    new DataView(flac.buffer).setUint32(8 + 14, 8820); // STREAMINFO: 0.2 s
    expect(probeAudio(flac).durationSec).toBeCloseTo(0.2, 5);
    const err = await expectAudioError(decodeAudio(flac, { maxDurationSec: 1 }), 'too_long');
    expect(err.message).toMatch(/decodes to more than 1 s/);
  });

  it('refuses Ogg, M4A and FLAC over the cap with too_long from their headers (FLAC: STREAMINFO, or the last frame when it states 0)', async () => {
    for (const f of ['ogg-vorbis', 'ogg-opus', 'm4a', 'flac'] as const) {
      await expectAudioError(decodeAudio(fixtures.get(key(f, 44100, true))!, { maxDurationSec: 0.5 }), 'too_long');
    }
  });
});

describe('hostile files of every format end in an AudioInputError, never another error or a hang', () => {
  it('names what it found for formats and codecs not taken (unsupported_format)', async () => {
    const mono = [source44[0]!.subarray(0, 4410)];
    const wav = encodeWav(mono, 44100);
    const aiff = new Uint8Array(64);
    aiff.set(new TextEncoder().encode('FORM\0\0\0\x38AIFFCOMM'));
    const cases: Array<[string, Uint8Array, RegExp]> = [
      ['AIFF', aiff, /AIFF/],
      ['a μ-law WAV', (() => { const b = wav.slice(); b[20] = 7; return b; })(), /μ-law/],
      ['a 6-channel WAV', (() => { const b = wav.slice(); b[22] = 6; return b; })(), /6 channels/],
      ['a WAV at 44,101 Hz', (() => { const b = wav.slice(); new DataView(b.buffer).setUint32(24, 44101, true); return b; })(), /44101 Hz/],
      ['Matroska/WebM', new Uint8Array([0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x86, 0x81]), /Matroska\/WebM/],
      ['MIDI', new TextEncoder().encode('MThd\0\0\0\x06\0\x01\0\x02\x01\xe0'), /MIDI/],
      ['a PNG', new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]), /PNG/],
      ['a ZIP', new TextEncoder().encode('PK\x03\x04\x14\0\0\0'), /ZIP/],
      ['a PDF', new TextEncoder().encode('%PDF-1.7\n'), /PDF/],
      ['text', new TextEncoder().encode('hello, this is not audio'), /text/],
    ];
    for (const [what, bytes, re] of cases) {
      const err = await expectAudioError(decodeAudio(bytes), 'unsupported_format');
      expect(err.message, what).toMatch(re);
      expect(err.message).toMatch(/the formats taken are|are taken|rates taken/);
    }
  });

  it('names an MP4 whose only track is video, an M4A with ALAC, and a HEIF image', async () => {
    const m4a = fixtures.get(key('m4a', 44100, true))!;
    const swap = (from: string, to: string): Uint8Array => {
      const b = m4a.slice();
      const text = new TextDecoder('latin1').decode(b);
      for (let i = text.indexOf(from); i >= 0; i = text.indexOf(from, i + 1)) b.set(new TextEncoder().encode(to), i);
      return b;
    };
    expect((await expectAudioError(decodeAudio(swap('soun', 'vide')), 'unsupported_format')).message).toMatch(/a video without an audio track/);
    expect((await expectAudioError(decodeAudio(swap('mp4a', 'alac')), 'unsupported_format')).message).toMatch(/Apple Lossless \(ALAC\)/);
    const heif = m4a.slice();
    heif.set(new TextEncoder().encode('heic'), 8);
    expect((await expectAudioError(decodeAudio(heif), 'unsupported_format')).message).toMatch(/HEIF/);
  });

  it('truncated files of the container formats are corrupt before decoding (WAV, Ogg, M4A); a truncated FLAC stating its length too', async () => {
    for (const f of ['wav16', 'wav-ext', 'ogg-vorbis', 'ogg-opus', 'm4a'] as const) {
      const bytes = fixtures.get(key(f, 44100, true))!;
      for (const frac of [0.3, 0.7, 0.97]) {
        const cut = bytes.subarray(0, Math.floor(bytes.length * frac));
        expect(() => probeAudio(cut), `${f} cut at ${frac}`).toThrow(AudioInputError);
        const err = await expectAudioError(decodeAudio(cut));
        expect(err.code, `${f} at ${frac}: ${err.message}`).toBe('corrupt');
        expect(err.message).toMatch(/truncated|cut short|no moov/);
      }
    }
    // A FLAC whose STREAMINFO states its length (as the flac tool writes it), cut in half.
    const flac = fixtures.get(key('flac', 44100, true))!.slice();
    const si = 8;
    const total = SECONDS * 44100;
    flac[si + 13] = (flac[si + 13]! & 0xf0) | 0;
    new DataView(flac.buffer).setUint32(si + 14, total);
    expect(probeAudio(flac).durationSec).toBe(SECONDS);
    expect((await decodeAudio(flac)).durationSec).toBeCloseTo(SECONDS, 3);
    const err = await expectAudioError(decodeAudio(flac.subarray(0, flac.length >> 1)), 'corrupt');
    expect(err.message).toMatch(/truncated/);
  });

  it('any truncation, byte damage or splice of any format: decodes, or fails with AudioInputError (property, seeded)', async () => {
    const all = [...fixtures.entries()].filter(([k]) => k.endsWith('-44100-s'));
    const outcomes: Record<string, number> = {};
    await fc.assert(
      fc.asyncProperty(
        fc.nat(all.length - 1),
        fc.oneof(
          fc.record({ kind: fc.constant('cut' as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }),
          fc.record({ kind: fc.constant('flip' as const), flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 40 }) }),
          fc.record({ kind: fc.constant('head' as const), flips: fc.array(fc.tuple(fc.nat(200), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }) }),
          fc.record({ kind: fc.constant('splice' as const), other: fc.nat(all.length - 1), at: fc.double({ min: 0.05, max: 0.95, noNaN: true }) }),
        ),
        async (i, damage) => {
          const [name, original] = all[i]!;
          let bytes: Uint8Array;
          if (damage.kind === 'cut') bytes = original.subarray(0, Math.floor(original.length * damage.at));
          else if (damage.kind === 'splice') {
            const other = all[damage.other]![1];
            const at = Math.floor(original.length * damage.at);
            bytes = new Uint8Array([...original.subarray(0, at), ...other.subarray(Math.floor(other.length * damage.at))]);
          } else {
            bytes = original.slice();
            for (const [at, v] of damage.flips) bytes[at % bytes.length] = v;
          }
          const started = Date.now();
          try {
            const d = await decodeAudio(bytes, { maxDurationSec: 60 });
            expect(d.channels[0].every(Number.isFinite)).toBe(true);
            outcomes.decoded = (outcomes.decoded ?? 0) + 1;
          } catch (err) {
            if (!(err instanceof AudioInputError)) throw new Error(`${name} ${damage.kind}: ${String(err)}`, { cause: err });
            outcomes[err.code] = (outcomes[err.code] ?? 0) + 1;
          }
          expect(Date.now() - started).toBeLessThan(10_000);
        },
      ),
      { seed: 20261203, numRuns: 150 },
    );
    console.log(`[decode-formats] damaged files: ${JSON.stringify(outcomes)}`);
    expect(outcomes.corrupt).toBeGreaterThan(0);
  }, 120_000);
});
