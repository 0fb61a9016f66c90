import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { Queue, looksLikeMp3, makeKeys } from '@msaas/common';
import { printLinesOnFailure, startStack, type Stack } from '../helpers/stack.ts';
import { standinModelPath } from '../helpers/standin-model.ts';
import { REDIS_URL } from '../helpers/env.ts';
import { clip, outputObjects, report, s3Client, stemNames, variant, waitJob } from './support.ts';

/**
 * Poison jobs: uploads that pass rest's MP3 sniff but that the worker cannot separate → the job
 * is `failed` with a readable reason and moved to `dead`, and the same worker goes on to complete
 * a good job. Bad audio (AudioInputError: the client's fault) fails at its first attempt, by
 * design; any other failure is retried up to MAX_ATTEMPTS, then the job is dead.
 */
const MAX_ATTEMPTS = 3;
let stack: Stack;
printLinesOnFailure(() => stack?.lines);
let workerId: string;
let queue: Queue;
const figures: Record<string, unknown> = {};

// MPEG-1 Layer III, 128 kbps, 44.1 kHz, stereo: a 417-byte frame.
const HEADER = Buffer.from([0xff, 0xfb, 0x90, 0x00]);
const ID3 = Buffer.from([0x49, 0x44, 0x33, 3, 0, 0, 0, 0, 0, 10, ...Buffer.alloc(10)]);

/** An ID3 tag and a frame header whose frame is followed by another header, then garbage: no audio stream. */
const noAudio = Buffer.concat([ID3, HEADER, Buffer.alloc(413), HEADER, Buffer.alloc(4000, 0x11)]);
/** Two frame headers and the second frame cut off: the decoder cannot get through it. */
const truncated = Buffer.concat([ID3, HEADER, Buffer.alloc(413), HEADER, Buffer.alloc(100, 0x5a)]);

beforeAll(async () => {
  stack = await startStack({ worker: false, env: { MAX_ATTEMPTS: String(MAX_ATTEMPTS), HEARTBEAT_TTL_SEC: '10', RATE_LIMIT_PER_MIN: '1000000' } });
  workerId = `poison-${stack.prefix.split(':')[2]}`;
  await stack.addWorker({ WORKER_ID: workerId, MODEL_PATH: standinModelPath() });
  queue = new Queue(new Redis(REDIS_URL), makeKeys(stack.prefix));
}, 180_000);

afterAll(async () => {
  queue?.redis.disconnect();
  await stack?.stop();
  report('poison', figures, stack?.lines);
}, 90_000);

describe('poison jobs', () => {
  for (const [name, bytes, reason] of [
    ['an MP3 that decodes to nothing (ID3 tag + frame header + garbage)', noAudio, /^bad audio: .*no MPEG audio frames/],
    ['an MP3 the decoder cannot get through (truncated frame)', truncated, /^bad audio: .*truncated/],
  ] as const) {
    it(`${name}: failed at once with a readable reason, in dead; the same worker then completes a good job`, async () => {
      expect(looksLikeMp3(bytes)).toBe(true); // rest accepts it: only the worker can tell
      const bad = await stack.api.submit(bytes);
      expect(bad.result).toBe('enqueued');
      const t0 = Date.now();
      const failed = await waitJob(stack.api, bad.hash, (j) => j.state === 'failed' || j.state === 'done', 60_000, 'poison job failed');
      figures[name] = { failedAfterMs: Date.now() - t0, error: failed.error };
      expect(failed).toMatchObject({ state: 'failed', attempts: 1, worker: workerId });
      expect(failed.error).toMatch(reason);
      expect(await queue.dead()).toContain(bad.hash);
      expect(await queue.waiting()).not.toContain(bad.hash);

      const good = await stack.api.submit(variant(await clip(4), name.length));
      const done = await waitJob(stack.api, good.hash, (j) => j.state === 'done' || j.state === 'failed', 60_000, 'good job done');
      expect(done).toMatchObject({ state: 'done', attempts: 1, worker: workerId });
      expect((await outputObjects(s3Client(stack.env), good.hash)).map((o) => o.name)).toEqual(stemNames(good.hash));
    }, 120_000);
  }

  it(`a job that fails for another reason (its upload vanished) is retried ${MAX_ATTEMPTS} times, then failed and in dead; the worker keeps serving`, async () => {
    const hash = 'f'.repeat(56);
    await queue.submit({ hash, sizeBytes: 1 });
    const t0 = Date.now();
    const failed = await waitJob(stack.api, hash, (j) => j.state === 'failed' || j.state === 'done', 60_000, 'vanished-upload job failed');
    figures.retriedThenDead = { failedAfterMs: Date.now() - t0, attempts: failed.attempts, error: failed.error };
    expect(failed).toMatchObject({ state: 'failed', attempts: MAX_ATTEMPTS });
    expect(failed.error).toMatch(/key does not exist|NoSuchKey|Not Found/i);
    expect(await queue.dead()).toContain(hash);
    const retries = stack.lines.filter((l) => l.service === 'worker' && l.line.includes(hash) && l.line.includes('will retry'));
    expect(retries).toHaveLength(MAX_ATTEMPTS - 1);

    const good = await stack.api.submit(variant(await clip(4), 99));
    expect((await waitJob(stack.api, good.hash, (j) => j.state === 'done' || j.state === 'failed', 60_000, 'good job done')).state).toBe('done');
    expect((await stack.api.job(good.hash)).worker).toBe(workerId);
  }, 120_000);
});
