import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRACKS, songhash, probeAudio } from '@msaas/common';
import { decodeAudio } from '../worker/src/separation/index.ts';
import { encodeMp3 } from '@msaas/common/audio-encode/index';
import { synthesizeSong } from '../worker/fixtures/synth.ts';
import { encodeAs, type FixtureFormat } from '../worker/fixtures/encode-formats.ts';
import { sdr } from '../worker/fixtures/sdr.ts';
import { printLinesOnFailure, startStack, type Stack } from './helpers/stack.ts';
import { standinModelPath } from './helpers/standin-model.ts';
import { waitJob } from './reliability/support.ts';

/**
 * Every input format through the whole service (rest + worker + Redis + S3 server), with the
 * stand-in model (test/helpers/standin-model.ts: each stem = mix / 4) so that the real decode,
 * STFT, chunking, overlap-add and stem encoding run in seconds. Uploads are labelled `song.mp3`
 * with Content-Type audio/mpeg whatever they hold: the format is told by content.
 */
const SECONDS = 4;
let stack: Stack;
printLinesOnFailure(() => stack?.lines);
const song = synthesizeSong({ seconds: SECONDS, seed: 21 });
const figures: Record<string, unknown> = {};

beforeAll(async () => {
  stack = await startStack({ worker: false, contract: true, env: { RATE_LIMIT_PER_MIN: '1000000', SUBMIT_RATE_LIMIT_PER_MIN: '1000000' } });
  await stack.addWorker({ WORKER_ID: `formats-${stack.prefix.split(':')[2]}`, MODEL_PATH: standinModelPath() });
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  console.log(`[input-formats] ${JSON.stringify(figures)}`);
}, 90_000);

/** Submits (multipart, mislabelled as an MP3), waits for done, returns the four stems decoded. */
async function separate(bytes: Uint8Array, label: string): Promise<Record<string, [Float32Array, Float32Array]>> {
  const { hash, result } = await stack.api.upload(bytes, { filename: 'song.mp3' });
  expect(hash).toBe(songhash(bytes)); // the songhash is the SHA-224 of the bytes as uploaded
  expect(result, label).toBe('enqueued');
  const job = await waitJob(stack.api, hash, (j) => j.state === 'done', 90_000, `${label} separated`);
  expect(job.error).toBeNull();
  const stems: Record<string, [Float32Array, Float32Array]> = {};
  for (const t of TRACKS) stems[t] = (await decodeAudio((await stack.api.stem(hash, t)).bytes)).channels;
  return stems;
}

/** One frame of each input codec at 44.1 kHz (the length is exact to it), and the stems' MP3 frame. */
const FRAME: Record<FixtureFormat | 'mp3', number> = {
  wav16: 1, wav24: 1, wav32: 1, wavf32: 1, 'wav-ext': 1, flac: 4096, 'ogg-vorbis': 2048, 'ogg-opus': 960, m4a: 1024, mp3: 1152,
};
const STEM_FRAME = 1152;

describe('every input format through the service', () => {
  const stemsOf: Record<string, Record<string, [Float32Array, Float32Array]>> = {};

  for (const f of ['wav16', 'wav24', 'wavf32', 'wav-ext', 'flac', 'ogg-vorbis', 'ogg-opus', 'm4a', 'mp3'] as const) {
    it(`${f}: uploaded as song.mp3, separated into four stems of the input's duration (±1 frame)`, async () => {
      const bytes = f === 'mp3' ? await encodeMp3(song, 44100, { vbrQuality: 2 }) : await encodeAs(f, song, 44100);
      const input = await decodeAudio(bytes);
      const stated = probeAudio(bytes).durationSec ?? input.durationSec;
      const stems = await separate(bytes, f);
      stemsOf[f] = stems;
      for (const t of TRACKS) {
        const len = stems[t]![0].length;
        expect(Math.abs(len - input.channels[0].length), `${f} ${t}: ${len} vs decoded input ${input.channels[0].length}`).toBeLessThanOrEqual(STEM_FRAME);
        expect(Math.abs(len / 44100 - stated) * 44100, `${f} ${t} vs stated ${stated} s`).toBeLessThanOrEqual(FRAME[f] + STEM_FRAME);
        expect(stems[t]![0].every(Number.isFinite)).toBe(true);
      }
      figures[f] = { bytes: bytes.length, statedSec: stated, stemSec: stems.vocals![0].length / 44100 };
    }, 120_000);
  }

  it('a WAV job’s stems agree with the MP3 job’s stems of the same audio as closely as the MP3 coding allows', () => {
    const wav = stemsOf.wav16, mp3 = stemsOf.mp3;
    expect(wav && mp3).toBeTruthy();
    const perStem: Record<string, number> = {};
    for (const t of TRACKS) {
      const n = Math.min(wav![t]![0].length, mp3![t]![0].length);
      perStem[t] = sdr(wav![t]!.map((c) => c.subarray(0, n)), mp3![t]!.map((c) => c.subarray(0, n))).db;
    }
    figures.wavVsMp3StemSdrDb = perStem;
    // Reference: how far MP3 coding (LAME V2, decoded) moves the mix itself.
    return encodeMp3(song, 44100, { vbrQuality: 2 }).then(decodeAudio).then((d) => {
      const n = Math.min(d.channels[0].length, song[0]!.length);
      const mixCoding = sdr(song.map((c) => c.subarray(0, n)), d.channels.map((c) => c.subarray(0, n))).db;
      figures.mp3CodingOfMixSdrDb = mixCoding;
      for (const t of TRACKS) expect(perStem[t], `${t}: ${perStem[t]} dB vs the MP3 coding's ${mixCoding} dB`).toBeGreaterThan(mixCoding - 6);
    });
  });
});

describe('broken uploads of the new formats: a 400 with a sentence at submit, or a failed job; the worker keeps serving', () => {
  it('answers 400 unsupported_format / corrupt with the parser’s sentence for what rest can see in the header', async () => {
    const wav = await encodeAs('wav16', song, 44100);
    const ogg = await encodeAs('ogg-vorbis', song, 44100);
    const m4a = await encodeAs('m4a', song, 44100);
    const flac = await encodeAs('flac', song, 44100);
    const aiff = Buffer.concat([Buffer.from('FORM\0\0\0\x38AIFFCOMM', 'latin1'), Buffer.alloc(64)]);
    for (const [what, bytes, code, detail] of [
      ['a truncated WAV', wav.subarray(0, wav.length >> 1), 'corrupt', /truncated/],
      ['a truncated Ogg Vorbis', ogg.subarray(0, ogg.length >> 1), 'corrupt', /truncated|cut short/],
      ['a truncated M4A', m4a.subarray(0, m4a.length >> 1), 'corrupt', /truncated|moov/],
      ['a truncated FLAC (its STREAMINFO states the length, as the flac tool writes it)', (() => {
        const f = flac.slice();
        f[8 + 13] = f[8 + 13]! & 0xf0;
        new DataView(f.buffer).setUint32(8 + 14, SECONDS * 44100);
        return f.subarray(0, f.length >> 1);
      })(), 'corrupt', /FLAC is truncated/],
      ['an AIFF', aiff, 'unsupported_format', /AIFF.*the formats taken are MP3, WAV/],
    ] as const) {
      const err = await stack.api.upload(bytes, { filename: 'x.mp3' }).then(() => null, (e: { status: number; error: string; detail: string }) => e);
      expect(err, what).toMatchObject({ status: 400, error: code });
      expect(err!.detail, what).toMatch(detail);
    }
  });

  it('a FLAC damaged mid-stream (its header and last frame intact) fails its job at once with a readable reason; the next job is separated', async () => {
    const flac = await encodeAs('flac', song, 44100);
    const damaged = flac.slice();
    for (let i = 0; i < 64; i++) damaged[(damaged.length >> 1) + i * 7] ^= 0x5a;
    expect(probeAudio(damaged).durationSec).toBe(SECONDS); // rest can only see the header: it takes the song
    const { hash } = await stack.api.upload(damaged, { filename: 'damaged.flac' });
    const failed = await waitJob(stack.api, hash, (j) => j.state === 'failed' || j.state === 'done', 60_000, 'damaged FLAC failed');
    expect(failed).toMatchObject({ state: 'failed', attempts: 1 });
    expect(failed.error).toMatch(/^bad audio: .*FLAC is truncated or damaged/);
    const good = await encodeAs('ogg-opus', synthesizeSong({ seconds: 2, seed: 22 }), 48000);
    const { hash: goodHash } = await stack.api.upload(good);
    expect((await waitJob(stack.api, goodHash, (j) => j.state === 'done', 60_000, 'next job done')).state).toBe('done');
  }, 120_000);
});
