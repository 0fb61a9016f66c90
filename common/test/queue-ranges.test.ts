/**
 * Issue 23 at the queue level, against real Redis: a song split into ranges (split-8.lua), each
 * range claimed, finished, failed, handed back and reaped like a song, the last range's worker made
 * the stitcher, the per-stem encoding units queued with the ranges in `toEncoder` (claimed, handed
 * back, reaped and deleted like ranges, in their own list), fair order counting ranges, and a delete
 * taking the waiting ranges with the song.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { Queue, TRACKS, makeKeys, parseRangeItem, type Claimed } from '../src/index.ts';
import { REDIS_URL, deletePrefix, uniquePrefix } from '../../test/helpers/env.ts';

let redis: Redis;
let blocking: Redis;
let prefix: string;
let queue: Queue;
const h = (n: number): string => n.toString(16).padStart(56, 'a');
const STRIDE = 257_985;

beforeAll(() => {
  prefix = uniquePrefix('qranges');
  redis = new Redis(REDIS_URL);
  blocking = new Redis(REDIS_URL);
  queue = new Queue(redis, makeKeys(prefix), { retentionSec: 60 });
});
afterAll(async () => {
  await deletePrefix(prefix);
  redis.disconnect();
  blocking.disconnect();
});

async function claim(worker: string): Promise<Claimed> {
  const c = await queue.claim(blocking, worker, 1);
  if (!c) throw new Error(`${worker} found nothing to claim`);
  return c;
}

async function claimUnit(worker: string): Promise<Claimed> {
  const c = await queue.claimUnit(blocking, worker, 1);
  if (!c) throw new Error(`${worker} found no encoding unit to claim`);
  return c;
}

/** Submits a song as `tenant`, lets `worker` take it and split it into ranges starting at `chunks` (and `encodeUnits` units). */
async function splitSong(hash: string, tenant: string, worker: string, chunks: number[], encodeUnits = 0): Promise<void> {
  expect((await queue.submit({ hash, tenant, sizeBytes: 1, audioSec: 600 })).result).toBe('enqueued');
  const c = await claim(worker);
  expect(c).toEqual({ hash, attempt: 1 });
  expect(await queue.split(worker, hash, { chunks, stride: STRIDE, estimatedFrames: 600 * 44_100, encodeUnits })).toBe('split');
}

describe('a song split into ranges', () => {
  it('queues its ranges, shows them in the record, and makes the last range’s worker the stitcher', async () => {
    const hash = h(1);
    await splitSong(hash, 't1', 'w1', [0, 4, 8]);
    expect(await queue.held('w1')).toEqual([]);
    const split = (await queue.getJob(hash))!;
    expect(split.state).toBe('processing');
    expect(split.ranges!.map((r) => [r.fromSec, r.state, r.worker])).toEqual([
      [0, 'queued', null],
      [Math.round((4 * STRIDE * 1000) / 44_100) / 1000, 'queued', null],
      [Math.round((8 * STRIDE * 1000) / 44_100) / 1000, 'queued', null],
    ]);
    expect(split.ranges!.at(-1)!.toSec).toBe(600);
    expect(await queue.length()).toBe(3);
    expect(await queue.waiting()).toEqual([]); // ranges are work, not songs waiting

    const a = await claim('w1');
    const b = await claim('w2');
    const c = await claim('w3');
    expect([a, b, c].map((x) => x.range?.index)).toEqual([0, 1, 2]);
    expect((await queue.getJob(hash))!.ranges!.map((r) => [r.state, r.worker, r.attempts])).toEqual([
      ['processing', 'w1', 1],
      ['processing', 'w2', 1],
      ['processing', 'w3', 1],
    ]);
    // finishing order: 2, 0, 1 — the worker of range 1 finishes last and stitches
    expect(await queue.rangeDone('w3', c.range!)).toEqual({ outcome: 'done', done: [false, false, true] });
    expect(await queue.rangeDone('w1', a.range!)).toEqual({ outcome: 'done', done: [true, false, true] });
    expect(await queue.rangeDone('w1', a.range!)).toMatchObject({ outcome: 'lost' });
    expect(await queue.rangeDone('w2', b.range!)).toEqual({ outcome: 'stitch', done: [true, true, true] });
    expect(await queue.held('w2')).toEqual([hash]);
    expect((await queue.getJob(hash))!.worker).toBe('w2');
    expect(await queue.recordStems('w2', hash, TRACKS)).toBe('owned');
    expect((await queue.complete('w2', hash, 3)).outcome).toBe('done');
    expect((await queue.getJob(hash))!.state).toBe('done');
  });

  it('queues one encoding unit per stem with the ranges, in toEncoder; units run beside the ranges and the last one’s worker finishes the song', async () => {
    const hash = h(8);
    const keys = makeKeys(prefix);
    await redis.del(keys.toWorker, keys.toEncoder);
    await splitSong(hash, 't1', 'w1', [0, 4], 2);
    expect(await queue.length()).toBe(2); // the ranges; the units wait apart
    expect(await redis.llen(keys.toEncoder)).toBe(2);
    let split = (await queue.getJob(hash))!.split!;
    expect([split.encodeUnits, split.encodesDone]).toEqual([2, 0]);
    // the units are taken at once, in stem order, while the ranges still wait
    const e1 = await claimUnit('w3');
    const e2 = await claimUnit('w4');
    expect([e1.range!.index, e2.range!.index]).toEqual([2, 3]);
    expect(await queue.rangeState(hash, 2)).toBe('processing');
    const a = await claim('w1');
    const b = await claim('w3'); // a range in w3's main slot beside its unit
    expect(await queue.held('w3')).toEqual([b.range!.item, e1.range!.item]);
    expect(await queue.rangeState(hash, 0)).toBe('processing');
    expect((await queue.rangeDone('w1', a.range!)).outcome).toBe('done');
    expect(await queue.rangeState(hash, 0)).toBe('done');
    expect((await queue.rangeDone('w3', b.range!)).outcome).toBe('encode');
    expect(await queue.held('w3')).toEqual([e1.range!.item]);
    split = (await queue.getJob(hash))!.split!;
    expect([split.encodeUnits, split.encodesDone]).toEqual([2, 0]);
    expect((await queue.rangeDone('w4', e2.range!)).outcome).toBe('done');
    expect((await queue.rangeDone('w3', e1.range!)).outcome).toBe('finish');
    expect(await queue.held('w3')).toEqual([hash]);
    expect((await queue.getJob(hash))!.split!.encodesDone).toBe(2);
    expect(await queue.recordStems('w3', hash, TRACKS)).toBe('owned');
    expect((await queue.complete('w3', hash, 3)).outcome).toBe('done');
  });

  it('lists pieces over the contiguous prefix only, whichever range finishes first', async () => {
    const hash = h(2);
    await splitSong(hash, 't1', 'w1', [0, 4, 8]);
    const splitId = (await redis.hget(makeKeys(prefix).job(hash), 'splitId'))!;
    const range = (i: number) => parseRangeItem(`${hash}#${i}#${splitId}`)!;
    expect(await queue.rangePiece(range(1), 8 * STRIDE, null)).toBe('owned');
    let job = (await queue.getJob(hash))!;
    expect([job.readyFrames, job.pieceEnds]).toEqual([0, []]);
    expect(await queue.rangePiece(range(0), 4 * STRIDE, null)).toBe('owned');
    job = (await queue.getJob(hash))!;
    expect([job.readyFrames, job.pieceEnds]).toEqual([8 * STRIDE, [4 * STRIDE, 8 * STRIDE]]);
    await queue.dropClaim(hash, 't1');
    expect(await queue.length()).toBe(0); // its waiting ranges left with it
    expect(await queue.rangePiece(range(2), 9 * STRIDE, 9 * STRIDE)).toBe('gone');
  });

  it('retries a failing range with its attempts counted, then fails the song with the range’s reason', async () => {
    const hash = h(3);
    await splitSong(hash, 't1', 'w1', [0, 4]);
    const first = await claim('w1');
    expect(first.range!.index).toBe(0);
    const second = await claim('w2');
    for (let attempt = 1; attempt <= 3; attempt++) {
      const c = attempt === 1 ? second : await claim('w2');
      expect(c.range!.index).toBe(1);
      expect(c.attempt).toBe(attempt);
      const outcome = await queue.failRange('w2', c.range!, 'Error: the model ran out of memory', { retryable: true, maxAttempts: 3 });
      expect(outcome).toBe(attempt < 3 ? 'retry' : 'dead');
    }
    const failed = (await queue.getJob(hash))!;
    expect(failed.state).toBe('failed');
    expect(failed.error).toMatch(/^range 2 of 2 \(23\.4 s to the end\) failed after 3 attempts: Error: the model ran out of memory$/);
    expect(await queue.dead()).toContain(hash);
    // the range still running elsewhere learns it at its finish, and its item leaves w1's list
    expect(await queue.runState('w1', first.range!.item)).toBe('superseded');
    expect((await queue.rangeDone('w1', first.range!)).outcome).toBe('gone');
    expect(await queue.held('w1')).toEqual([]);
  });

  it('hands a dead worker’s range to the front of the queue, and a shutdown’s back without counting it', async () => {
    const hash = h(4);
    await queue.heartbeat('w1', 1);
    await splitSong(hash, 't1', 'w1', [0, 4]);
    const a = await claim('w1');
    expect(a.range!.index).toBe(0);
    expect(await queue.release('w1', a.range!.item)).toBe(true);
    const again = await claim('w1');
    expect([again.range!.index, again.attempt]).toEqual([0, 1]);
    await new Promise((r) => setTimeout(r, 1200)); // w1's heartbeat expires
    const reaped = await queue.reap(3);
    expect(reaped.requeued).toBe(1);
    const job = (await queue.getJob(hash))!;
    expect(job.ranges![0]).toMatchObject({ state: 'queued', worker: null, attempts: 1 });
    expect(job.error).toMatch(/worker w1 stopped responding during range 1 of 2/);
    const next = await claim('w2');
    expect([next.range!.index, next.attempt]).toEqual([0, 2]); // front of the queue, ahead of range 2
    expect(await queue.runState('w2', next.range!.item)).toBe('owned');
    expect(await queue.runState('w1', next.range!.item)).toBe('lost');
  });

  it('hands a unit back to the front of toEncoder at shutdown and when its worker dies; a delete takes the waiting units too', async () => {
    const keys = makeKeys(prefix);
    await redis.del(keys.toWorker, keys.toEncoder);
    const hash = h(9);
    await queue.heartbeat('w6', 1);
    await splitSong(hash, 't1', 'w1', [0, 4], 3);
    const u = await claimUnit('w6');
    expect(u.range!.index).toBe(2);
    expect(await queue.release('w6', u.range!.item)).toBe(true);
    expect(await redis.lrange(keys.toEncoder, -1, -1)).toEqual([u.range!.item]); // the front: taken next
    expect(await queue.length()).toBe(2); // not among the ranges
    const again = await claimUnit('w6');
    expect([again.range!.index, again.attempt]).toEqual([2, 1]);
    await new Promise((r) => setTimeout(r, 1200)); // w6's heartbeat expires
    expect((await queue.reap(3)).ranges.requeued).toBe(1);
    expect((await queue.getJob(hash))!.error).toMatch(/worker w6 stopped responding during the encoding of stem 1 of 3/);
    expect(await redis.lrange(keys.toEncoder, -1, -1)).toEqual([u.range!.item]);
    const third = await claimUnit('w7');
    expect([third.range!.index, third.attempt]).toEqual([2, 2]);
    expect(await queue.failRange('w7', third.range!, 'Error: encoder', { retryable: true, maxAttempts: 3 })).toBe('retry');
    expect(await redis.lrange(keys.toEncoder, 0, 0)).toEqual([u.range!.item]); // a retry waits behind the others
    expect(await queue.length()).toBe(2);
    await queue.dropClaim(hash, 't1');
    expect(await queue.length()).toBe(0);
    expect(await redis.llen(keys.toEncoder)).toBe(0);
  });

  it('puts back a range or unit its worker took from the list but died before starting (BLMOVE, then nothing)', async () => {
    const keys = makeKeys(prefix);
    await redis.del(keys.toWorker, keys.toEncoder);
    const hash = h(10);
    await queue.heartbeat('w8', 1);
    await splitSong(hash, 't1', 'w1', [0, 4], 2);
    const unit = (await redis.lmove(keys.toEncoder, keys.processing('w8'), 'RIGHT', 'LEFT'))!;
    const range = (await redis.lmove(keys.toWorker, keys.processing('w8'), 'RIGHT', 'LEFT'))!;
    expect(await queue.held('w8')).toEqual([range, unit]);
    await new Promise((r) => setTimeout(r, 1200)); // w8 died before range-start-5
    expect((await queue.reap(3)).ranges.requeued).toBe(2);
    expect(await queue.held('w8')).toEqual([]);
    expect(await redis.lrange(keys.toEncoder, -1, -1)).toEqual([unit]);
    expect(await redis.lrange(keys.toWorker, -1, -1)).toEqual([range]);
    // and a restarted worker hands back what it took but never started
    const again = (await redis.lmove(keys.toEncoder, keys.processing('w8'), 'RIGHT', 'LEFT'))!;
    expect(await queue.release('w8', again)).toBe(true);
    expect(await redis.lrange(keys.toEncoder, -1, -1)).toEqual([unit]);
    expect(await redis.llen(keys.toEncoder)).toBe(2);
  });

  it('interleaves two tenants’ long songs range by range (fair order counts ranges)', async () => {
    const keys = makeKeys(prefix);
    await redis.del(keys.toWorker);
    const x = h(5);
    const y = h(6);
    expect((await queue.submit({ hash: x, tenant: 'alice', sizeBytes: 1, audioSec: 600 })).result).toBe('enqueued');
    expect((await queue.submit({ hash: y, tenant: 'bob', sizeBytes: 1, audioSec: 600 })).result).toBe('enqueued');
    for (const hash of [x, y]) {
      expect((await claim('w1')).hash).toBe(hash);
      expect(await queue.split('w1', hash, { chunks: [0, 2, 4, 6], stride: STRIDE, estimatedFrames: 600 * 44_100, encodeUnits: 0 })).toBe('split');
    }
    const order: string[] = [];
    for (let i = 0; i < 8; i++) {
      const c = await claim('w9');
      order.push(`${c.hash === x ? 'alice' : 'bob'}${c.range!.index}`);
    }
    // alice's ranges were queued first, yet the two songs share the workers range by range
    expect(order).toEqual(['alice0', 'bob0', 'alice1', 'bob1', 'alice2', 'bob2', 'alice3', 'bob3']);
  });

  it('drops a range of a song deleted while it waited, at the claim', async () => {
    const keys = makeKeys(prefix);
    await redis.del(keys.toWorker);
    const hash = h(7);
    await splitSong(hash, 't1', 'w1', [0, 4]);
    const item = (await redis.lrange(keys.toWorker, 0, -1))[0]!;
    await redis.del(keys.job(hash)); // as if deleted between the BLMOVE and the start
    await redis.rpush(keys.toWorker, item);
    expect(await queue.claim(blocking, 'w5', 1)).toBeNull();
    expect(await queue.held('w5')).toEqual([]);
  });
});
