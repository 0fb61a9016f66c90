import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { Queue, makeKeys } from '../src/index.ts';
import { REDIS_URL, deletePrefix, uniquePrefix } from '../../test/helpers/env.ts';

let redis: Redis;
let blocking: Redis;
let prefix: string;
let queue: Queue;
const h = (n: number): string => n.toString(16).padStart(56, '0');

beforeAll(() => {
  prefix = uniquePrefix('queue');
  redis = new Redis(REDIS_URL);
  blocking = new Redis(REDIS_URL);
  queue = new Queue(redis, makeKeys(prefix));
});
afterAll(async () => {
  await deletePrefix(prefix);
  redis.disconnect();
  blocking.disconnect();
});

describe('queue', () => {
  it('is first in, first out and never queues a song twice', async () => {
    for (const n of [1, 2, 3]) expect(await queue.enqueue({ hash: h(n), sizeBytes: 10 })).toBe('enqueued');
    expect(await queue.enqueue({ hash: h(2), sizeBytes: 10 })).toBe('queued');
    expect(await queue.waiting()).toEqual([h(1), h(2), h(3)]);
    expect(await queue.position(h(1))).toBe(0);
    expect(await queue.position(h(3))).toBe(2);
    const order: string[] = [];
    await queue.heartbeat('w1', 10);
    for (let i = 0; i < 3; i++) {
      const job = await queue.claim(blocking, 'w1', 1);
      order.push(job!.hash);
      expect(job!.attempt).toBe(1);
      expect((await queue.getJob(job!.hash))!.state).toBe('processing');
      expect(await queue.complete('w1', job!.hash, 1.5)).toBe(true);
    }
    expect(order).toEqual([h(1), h(2), h(3)]);
    expect(await queue.length()).toBe(0);
    expect(await queue.held('w1')).toEqual([]);
    const done = await queue.getJob(h(1));
    expect(done).toMatchObject({ state: 'done', progress: 1, durationSec: 1.5 });
    expect(await queue.enqueue({ hash: h(1), sizeBytes: 10 })).toBe('done');
  });

  it('returns an empty claim after the timeout', async () => {
    const t0 = Date.now();
    expect(await queue.claim(blocking, 'w1', 0.2)).toBeNull();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
  });

  it('a job held by a worker whose heartbeat expired goes back to the queue and another worker does it', async () => {
    await queue.enqueue({ hash: h(10), sizeBytes: 1 });
    await queue.enqueue({ hash: h(11), sizeBytes: 1 });
    await queue.heartbeat('dying', 1);
    const taken = await queue.claim(blocking, 'dying', 1);
    expect(taken!.hash).toBe(h(10));
    // the heartbeat is still alive: nothing is reaped
    expect((await queue.reap(3)).requeued).toBe(0);
    await new Promise((r) => setTimeout(r, 1200));
    const reaped = await queue.reap(3);
    expect(reaped).toMatchObject({ requeued: 1, dead: 0, workers: ['dying'] });
    // it is next again (front of the queue), ahead of the job that waited behind it
    expect(await queue.waiting()).toEqual([h(10), h(11)]);
    await queue.heartbeat('healthy', 10);
    const again = await queue.claim(blocking, 'healthy', 1);
    expect(again).toEqual({ hash: h(10), attempt: 2 });
    expect(await queue.complete('healthy', h(10), 1)).toBe(true);
    const next = await queue.claim(blocking, 'healthy', 1);
    await queue.complete('healthy', next!.hash, 1);
  });

  it('after MAX_ATTEMPTS failures a job lands in `dead` with its last error and state failed', async () => {
    await queue.heartbeat('w2', 10);
    await queue.enqueue({ hash: h(20), sizeBytes: 1 });
    const results: string[] = [];
    for (let i = 0; i < 3; i++) {
      const job = await queue.claim(blocking, 'w2', 1);
      expect(job!.attempt).toBe(i + 1);
      results.push(await queue.fail('w2', job!.hash, `boom ${i + 1}`, { retryable: true, maxAttempts: 3 }));
    }
    expect(results).toEqual(['retry', 'retry', 'dead']);
    expect(await queue.dead()).toContain(h(20));
    expect(await queue.getJob(h(20))).toMatchObject({ state: 'failed', error: 'boom 3', attempts: 3 });
    expect(await queue.length()).toBe(0);
  });

  it('a non-retryable failure goes straight to dead; a lost job cannot be failed by its old owner', async () => {
    await queue.enqueue({ hash: h(30), sizeBytes: 1 });
    const job = await queue.claim(blocking, 'w2', 1);
    expect(await queue.fail('w2', job!.hash, 'bad audio: not an mp3', { retryable: false, maxAttempts: 3 })).toBe('dead');
    expect(await queue.fail('w2', job!.hash, 'again', { retryable: true, maxAttempts: 3 })).toBe('lost');
  });

  it('a worker that dies on a job MAX_ATTEMPTS times sends it to dead', async () => {
    await queue.enqueue({ hash: h(40), sizeBytes: 1 });
    for (let i = 0; i < 2; i++) {
      await queue.heartbeat(`crashy${i}`, 1);
      await queue.claim(blocking, `crashy${i}`, 1);
      await redis.del(makeKeys(prefix).heartbeat(`crashy${i}`));
      await queue.reap(2);
    }
    expect(await queue.getJob(h(40))).toMatchObject({ state: 'failed', attempts: 2 });
    expect((await queue.getJob(h(40)))!.error).toMatch(/worker died 2 times/);
    expect(await queue.dead()).toContain(h(40));
  });

  it('a graceful hand-back puts the job at the front without counting the attempt', async () => {
    await queue.enqueue({ hash: h(50), sizeBytes: 1 });
    await queue.enqueue({ hash: h(51), sizeBytes: 1 });
    const job = await queue.claim(blocking, 'w3', 1);
    expect(await queue.release('w3', job!.hash)).toBe(true);
    expect(await queue.waiting()).toEqual([h(50), h(51)]);
    expect(await queue.getJob(h(50))).toMatchObject({ state: 'queued', attempts: 0 });
  });

  it('progress is written only by the worker that owns the job', async () => {
    const job = await queue.claim(blocking, 'w4', 1);
    expect(await queue.progress('w4', job!.hash, 0.4)).toBe(true);
    expect(await queue.progress('intruder', job!.hash, 0.9)).toBe(false);
    expect((await queue.getJob(job!.hash))!.progress).toBe(0.4);
  });
});
