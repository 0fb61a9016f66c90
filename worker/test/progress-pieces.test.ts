import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { Queue, makeKeys } from '@msaas/common';
import { REDIS_URL, deletePrefix, uniquePrefix } from '../../test/helpers/env.ts';

let redis: Redis;
let blocking: Redis;
let prefix: string;
let queue: Queue;
let n = 0;
const nextHash = (): string => (++n).toString(16).padStart(56, 'a');

beforeAll(() => {
  prefix = uniquePrefix('progress-pieces');
  redis = new Redis(REDIS_URL);
  blocking = new Redis(REDIS_URL);
  queue = new Queue(redis, makeKeys(prefix));
});
afterAll(async () => {
  await deletePrefix(prefix);
  redis.disconnect();
  blocking.disconnect();
});

async function running(worker: string): Promise<string> {
  const hash = nextHash();
  expect((await queue.submit({ hash, sizeBytes: 10 })).result).toBe('enqueued');
  expect((await queue.claim(blocking, worker, 1))?.hash).toBe(hash);
  return hash;
}

describe('progress-3.lua with progressive pieces', () => {
  it('records readyFrames, totalFrames and piece ends per chunk, and publishes an event per call', async () => {
    const hash = await running('p1');
    const sub = new Redis(REDIS_URL);
    const events: string[] = [];
    await sub.subscribe(queue.keys.events);
    sub.on('message', (_c, m) => events.push(m));
    expect(await queue.reportProgress('p1', hash, 0.3, { readyFrames: 100, totalFrames: null, pieceEnds: [100] })).toBe('owned');
    expect(await queue.reportProgress('p1', hash, 0.6, { readyFrames: 200, totalFrames: 250, pieceEnds: [100, 200] })).toBe('owned');
    const job = (await queue.getJob(hash))!;
    expect(job).toMatchObject({ progress: 0.6, readyFrames: 200, totalFrames: 250, pieceEnds: [100, 200] });
    await new Promise((r) => setTimeout(r, 100));
    expect(events.filter((e) => e === hash).length).toBe(2);
    sub.disconnect();
  });

  it('a retried run re-publishing the same pieces never lowers readyFrames nor changes the list', async () => {
    const hash = await running('p2');
    await queue.reportProgress('p2', hash, 0.6, { readyFrames: 300, totalFrames: null, pieceEnds: [100, 200, 300] });
    // the worker dies; the job is run again from the start (as the reaper would: fail + claim)
    expect(await queue.fail('p2', hash, 'killed', { retryable: true, maxAttempts: 3 })).toBe('retry');
    expect((await queue.claim(blocking, 'p3', 1))?.hash).toBe(hash);
    expect(await queue.reportProgress('p3', hash, 0.2, { readyFrames: 100, totalFrames: null, pieceEnds: [100] })).toBe('owned');
    expect(await queue.getJob(hash)).toMatchObject({ readyFrames: 300, pieceEnds: [100, 200, 300], attempts: 2 });
    await queue.reportProgress('p3', hash, 0.9, { readyFrames: 400, totalFrames: 400, pieceEnds: [100, 200, 300, 400] });
    expect(await queue.getJob(hash)).toMatchObject({ readyFrames: 400, totalFrames: 400, pieceEnds: [100, 200, 300, 400] });
  });

  it('a call that did not reach Redis is made good by the next; reset starts the list again', async () => {
    const hash = await running('p4');
    await queue.reportProgress('p4', hash, 0.1, { readyFrames: 100, totalFrames: null, pieceEnds: [100] });
    await queue.reportProgress('p4', hash, 0.3, { readyFrames: 300, totalFrames: null, pieceEnds: [100, 200, 300] });
    expect((await queue.getJob(hash))!.pieceEnds).toEqual([100, 200, 300]);
    await queue.reportProgress('p4', hash, 0.1, { readyFrames: 50, totalFrames: null, pieceEnds: [50], reset: true });
    expect(await queue.getJob(hash)).toMatchObject({ readyFrames: 50, pieceEnds: [50] });
  });

  it('a job deleted while it runs is not re-created, and leaves the worker\'s list', async () => {
    const hash = await running('p5');
    expect(await queue.dropClaim(hash, 'default')).toBe('last');
    expect(await queue.reportProgress('p5', hash, 0.5, { readyFrames: 100, totalFrames: null, pieceEnds: [100] })).toBe('gone');
    expect(await redis.exists(queue.keys.job(hash))).toBe(0);
    expect(await queue.held('p5')).toEqual([]);
    expect(await queue.progress('p5', hash, 0.6)).toBe(false);
    expect(await redis.exists(queue.keys.job(hash))).toBe(0);
  });

  it('deleted and submitted again while it runs: superseded, the new record untouched', async () => {
    const hash = await running('p6');
    expect(await queue.dropClaim(hash, 'default')).toBe('last');
    expect((await queue.submit({ hash, sizeBytes: 10 })).result).toBe('enqueued');
    expect(await queue.reportProgress('p6', hash, 0.5, { readyFrames: 100, totalFrames: null, pieceEnds: [100] })).toBe('superseded');
    expect(await queue.getJob(hash)).toMatchObject({ state: 'queued', readyFrames: 0, pieceEnds: [], progress: 0 });
    expect(await queue.held('p6')).toEqual([]);
    await redis.lrem(queue.keys.toWorker, 0, hash); // out of the way of the next test's claim
  });

  it('a job the reaper handed on is lost to its old worker, which writes nothing', async () => {
    const hash = await running('p7');
    await redis.lrem(queue.keys.processing('p7'), 0, hash);
    expect(await queue.reportProgress('p7', hash, 0.5, { readyFrames: 100, totalFrames: null, pieceEnds: [100] })).toBe('lost');
    expect((await queue.getJob(hash))!.readyFrames).toBe(0);
  });
});
