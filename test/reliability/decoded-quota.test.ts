import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, ApiError, Queue, createRedis, makeKeys, oggPageCrc, probeAudio } from '@msaas/common';
import { synthesizeSong } from '../../worker/fixtures/synth.ts';
import { encodeAs } from '../../worker/fixtures/encode-formats.ts';
import { forgeFlacLength, forgeM4aNoLength, forgeOggGranules } from '../../common/test/forged-audio.ts';
import { printLinesOnFailure, startStack, type Stack } from '../helpers/stack.ts';
import { standinModelPath } from '../helpers/standin-model.ts';
import { REDIS_URL } from '../helpers/env.ts';
import { decodedSeconds } from '../../worker/src/decoded-charge.ts';
import { clip, outputObjects, report, s3Client, waitJob, workerLines } from './support.ts';

/**
 * The minutes quota charged from the decoded length (issue 22 item 5), with real processes (rest,
 * a worker on the stand-in model, Redis, the S3 server): FLAC, Ogg and M4A files whose headers state
 * no or a near-zero length are charged what they decode to, and the song that takes a tenant past
 * MAX_AUDIO_MINUTES_PER_DAY fails before any stem is made.
 */
const KEY_A = 'alice-key-0123456789abcdef';
const KEY_B = 'bob-key-0123456789abcdef01';
const LIMIT_MIN = 2;
const figures: Record<string, unknown> = {};
let stack: Stack;
let alice: ApiClient;
let bob: ApiClient;
let queue: Queue;

beforeAll(async () => {
  stack = await startStack({
    env: {
      API_KEYS: `alice:${KEY_A},bob:${KEY_B}`,
      MODEL_PATH: standinModelPath(),
      MAX_AUDIO_MINUTES_PER_DAY: String(LIMIT_MIN),
      RATE_LIMIT_PER_MIN: '100000',
      SUBMIT_RATE_LIMIT_PER_MIN: '100000',
    },
  });
  alice = new ApiClient({ baseUrl: stack.url, apiKey: KEY_A });
  bob = new ApiClient({ baseUrl: stack.url, apiKey: KEY_B });
  queue = new Queue(createRedis(REDIS_URL, 'api'), makeKeys(stack.prefix));
}, 180_000);

afterAll(async () => {
  queue?.redis.disconnect();
  await stack?.stop();
  report('decoded-quota', figures, stack?.lines ?? []);
}, 90_000);

printLinesOnFailure(() => stack?.lines);

/** 20 s of music in each format, its header rewritten to state no or a near-zero length. */
async function forgedSongs(seconds: number, seed: number): Promise<Array<{ name: string; bytes: Uint8Array; filename: string }>> {
  const song = synthesizeSong({ seconds, seed });
  return [
    { name: 'FLAC, STREAMINFO 1 sample', bytes: forgeFlacLength(await encodeAs('flac', song, 44100), 1), filename: 'a.flac' },
    { name: 'Ogg Vorbis, granules -1 after the first page', bytes: forgeOggGranules(await encodeAs('ogg-vorbis', song, 44100), oggPageCrc), filename: 'a.ogg' },
    { name: 'Ogg Opus, granules -1 after the first page', bytes: forgeOggGranules(await encodeAs('ogg-opus', song, 44100), oggPageCrc), filename: 'a.opus' },
    { name: 'M4A, media header and stts 0, entry at 64 kHz', bytes: forgeM4aNoLength(await encodeAs('m4a', song, 44100), 64000), filename: 'a.m4a' },
  ];
}

describe('the minutes quota counts the decoded length, not the header (real processes)', () => {
  it('header-less FLAC, Ogg Vorbis, Ogg Opus and M4A are each charged the 20 s they decode to, not what their headers state', async () => {
    const rows: string[] = [];
    for (const song of await forgedSongs(20, 71)) {
      const header = probeAudio(song.bytes).durationSec ?? 0;
      expect(header, song.name).toBeLessThan(15);
      // What the worker's decoders make of it (the Vorbis decoder trims the last packet: ~0.1 s less).
      const decoded = (await decodedSeconds(song.bytes, 900))!;
      expect(decoded, song.name).toBeGreaterThan(19.8);
      const before = await queue.usageSec('alice');
      const { hash } = await alice.upload(song.bytes, { filename: song.filename });
      const atSubmit = (await queue.usageSec('alice')) - before;
      expect(atSubmit, song.name).toBeCloseTo(header, 2);
      await waitJob(alice, hash, (j) => j.state === 'done', 120_000, song.name);
      const charged = (await queue.usageSec('alice')) - before;
      rows.push(`${song.name}: header ${header.toFixed(3)} s, charged at submit ${atSubmit.toFixed(3)} s, after the worker ${charged.toFixed(3)} s (decodes to ${decoded.toFixed(3)} s)`);
      expect(charged, song.name).toBeCloseTo(decoded, 2);
      expect(workerLines(stack, hash, 'more than its header states').length, song.name).toBe(1);
    }
    figures.charged = rows;
    process.stdout.write(`[decoded-quota] ${rows.join('; ')}\n`);
    // bob was charged nothing for alice's songs.
    expect(await queue.usageSec('bob')).toBe(0);
  }, 300_000);

  it('the song whose decoded length takes the tenant past MAX_AUDIO_MINUTES_PER_DAY fails before any stem is made, naming the limit; the next submission is refused 429', async () => {
    const used = await queue.usageSec('alice');
    expect(used).toBeGreaterThan(79.5);
    // 45 s decoded, ~0 s stated: accepted at submit (80 + 0 ≤ 120), past the limit once decoded.
    const song = (await forgedSongs(45, 72))[0]!;
    const { hash } = await alice.upload(song.bytes, { filename: 'long.flac' });
    const failed = await waitJob(alice, hash, (j) => j.state === 'failed', 120_000, 'over-quota song');
    figures.overQuotaError = failed.error;
    process.stdout.write(`[decoded-quota] over the limit: ${failed.error}\n`);
    expect(failed.error).toMatch(/the FLAC decodes to 45\.0 s, 45\.0 s more than its header states/);
    expect(failed.error).toMatch(new RegExp(`alice \\(2\\.\\d\\d minutes today\\) passed the limit of MAX_AUDIO_MINUTES_PER_DAY=${LIMIT_MIN}`));
    expect(failed.attempts).toBe(1); // not retried
    expect(await outputObjects(s3Client(stack.env), hash)).toEqual([]);
    expect(workerLines(stack, hash, 'separating')).toEqual([]); // failed before separation started
    expect(await queue.usageSec('alice')).toBeCloseTo(used + 45, 1);

    const next = await alice.upload(await clip(2, 73), { filename: 'next.mp3' }).catch((err: unknown) => err);
    expect(next).toBeInstanceOf(ApiError);
    expect((next as ApiError).status).toBe(429);
    expect((next as ApiError).detail).toMatch(/MAX_AUDIO_MINUTES_PER_DAY=2/);
    // Another tenant's quota is its own.
    const { hash: bobs } = await bob.upload(await clip(2, 73), { filename: 'bob.mp3' });
    await waitJob(bob, bobs, (j) => j.state === 'done', 120_000, "bob's song");
  }, 300_000);
});
