import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { IMPLICIT_TENANT, Queue, TRACKS, makeKeys, type Keys } from '../src/index.ts';
import { Heartbeat } from '../../worker/src/heartbeat.ts';
import { REDIS_URL, deletePrefix, uniquePrefix } from '../../test/helpers/env.ts';
import { TestWorker } from './test-worker.ts';

let redis: Redis;
let blocking: Redis;
let prefix: string;
let queue: Queue;
const h = (n: number): string => n.toString(16).padStart(56, '0');
/** The implicit tenant: every claim of a service without keys. */
const T = IMPLICIT_TENANT.id;

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
    for (const n of [1, 2, 3]) expect((await queue.submit({ hash: h(n), sizeBytes: 10 })).result).toBe('enqueued');
    expect((await queue.submit({ hash: h(2), sizeBytes: 10 })).result).toBe('queued');
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
      expect(await queue.recordStems('w1', job!.hash, TRACKS)).toBe('owned');
      expect((await queue.complete('w1', job!.hash, 1.5)).outcome).toBe('done');
    }
    expect(order).toEqual([h(1), h(2), h(3)]);
    expect(await queue.length()).toBe(0);
    expect(await queue.held('w1')).toEqual([]);
    const done = await queue.getJob(h(1));
    expect(done).toMatchObject({ state: 'done', progress: 1, durationSec: 1.5 });
    expect((await queue.submit({ hash: h(1), sizeBytes: 10 })).result).toBe('done');
  });

  it('returns an empty claim after the timeout', async () => {
    const t0 = Date.now();
    expect(await queue.claim(blocking, 'w1', 0.2)).toBeNull();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
  });

  it('a job held by a worker whose heartbeat expired goes back to the queue and another worker does it', async () => {
    await queue.submit({ hash: h(10), sizeBytes: 1 });
    await queue.submit({ hash: h(11), sizeBytes: 1 });
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
    expect((await queue.complete('healthy', h(10), 1)).outcome).toBe('done');
    const next = await queue.claim(blocking, 'healthy', 1);
    await queue.complete('healthy', next!.hash, 1);
  });

  it('after MAX_ATTEMPTS failures a job lands in `dead` with its last error and state failed', async () => {
    await queue.heartbeat('w2', 10);
    await queue.submit({ hash: h(20), sizeBytes: 1 });
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
    await queue.submit({ hash: h(30), sizeBytes: 1 });
    const job = await queue.claim(blocking, 'w2', 1);
    expect(await queue.fail('w2', job!.hash, 'bad audio: not an mp3', { retryable: false, maxAttempts: 3 })).toBe('dead');
    expect(await queue.fail('w2', job!.hash, 'again', { retryable: true, maxAttempts: 3 })).toBe('lost');
  });

  it('a worker that dies on a job MAX_ATTEMPTS times sends it to dead', async () => {
    await queue.submit({ hash: h(40), sizeBytes: 1 });
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
    await queue.submit({ hash: h(50), sizeBytes: 1 });
    await queue.submit({ hash: h(51), sizeBytes: 1 });
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

/** Job events of a queue of their own, counted by a second connection subscribed to the channel. */
describe('job events and ownership', () => {
  let keys: Keys;
  let q: Queue;
  let subscriber: Redis;
  const received: string[] = [];
  let fences = 0;

  beforeAll(async () => {
    keys = makeKeys(`${prefix}events:`);
    q = new Queue(redis, keys);
    subscriber = new Redis(REDIS_URL);
    subscriber.on('message', (_channel: string, message: string) => received.push(message));
    await subscriber.subscribe(keys.events);
  });
  afterAll(() => subscriber.disconnect());

  /** Publishes a fence and waits for it: every event published before it has then arrived. Returns where it was received. */
  async function fence(): Promise<number> {
    const marker = `fence-${++fences}`;
    await redis.publish(keys.events, marker);
    while (!received.includes(marker)) await new Promise((r) => setTimeout(r, 5));
    return received.indexOf(marker);
  }

  /** The events `op` published: those between a fence before it and one after it (Redis delivers a channel's messages in order). */
  async function eventsOf(op: () => Promise<unknown>): Promise<string[]> {
    const from = (await fence()) + 1;
    await op();
    return received.slice(from, await fence());
  }

  it('every transition of a job publishes its songhash exactly once on the events channel', async () => {
    const x = h(100);
    const steps: [string, () => Promise<unknown>][] = [
      ['enqueue', () => q.submit({ hash: x, sizeBytes: 1 })],
      ['claim', () => q.claim(blocking, 'ev', 1)],
      ['progress', () => q.progress('ev', x, 0.5)],
      ['recordStems', () => q.recordStems('ev', x, ['vocals', 'drums'])],
      ['complete', () => q.complete('ev', x, 2)],
      ['setCallbackStatus', async () => q.setCallbackStatus(x, T, 'sent (200)', (await q.getJob(x))!.finishedAt!)],
      ['removeStem', () => q.removeStem(x, T, 'drums')],
      ['enqueue again (re-run: a stem is missing)', () => q.submit({ hash: x, sizeBytes: 1 })],
      ['claim again', () => q.claim(blocking, 'ev', 1)],
      ['fail, retried', () => q.fail('ev', x, 'flaky', { retryable: true, maxAttempts: 3 })],
      ['claim a third time', () => q.claim(blocking, 'ev', 1)],
      ['release', () => q.release('ev', x)],
      ['claim a fourth time', () => q.claim(blocking, 'ev', 1)],
      ['fail for good', () => q.fail('ev', x, 'bad', { retryable: false, maxAttempts: 3 })],
      ['dropClaim (the last)', () => q.dropClaim(x, T)],
    ];
    const published: [string, string[]][] = [];
    for (const [name, op] of steps) published.push([name, await eventsOf(op)]);
    expect(published).toEqual(steps.map(([name]) => [name, [x]]));
    expect(await q.getJob(x)).toBeNull();
  });

  it('a transition that changes nothing publishes nothing', async () => {
    const x = h(101);
    await q.submit({ hash: x, sizeBytes: 1 });
    expect(await eventsOf(() => q.submit({ hash: x, sizeBytes: 1 }))).toEqual([]);
    expect(await eventsOf(() => q.progress('nobody', x, 0.5))).toEqual([]);
    expect(await eventsOf(() => q.release('nobody', x))).toEqual([]);
    expect(await eventsOf(() => q.fail('nobody', x, 'no', { retryable: true, maxAttempts: 3 }))).toEqual([]);
    expect(await eventsOf(() => q.removeStem(x, T, 'bass'))).toEqual([]);
    expect(await eventsOf(() => q.reap(3))).toEqual([]);
    await q.dropClaim(x, T);
  });

  it('the reaper publishes once for each job it hands back or fails', async () => {
    const [a, b] = [h(110), h(111)];
    await q.heartbeat('gone', 10);
    await q.submit({ hash: a, sizeBytes: 1 });
    await q.submit({ hash: b, sizeBytes: 1 });
    expect((await q.claim(blocking, 'gone', 1))!.hash).toBe(a);
    expect(await q.fail('gone', a, 'flaky', { retryable: true, maxAttempts: 3 })).toBe('retry');
    expect(await q.claim(blocking, 'gone', 1)).toEqual({ hash: b, attempt: 1 });
    expect(await q.claim(blocking, 'gone', 1)).toEqual({ hash: a, attempt: 2 });
    await redis.del(keys.heartbeat('gone'));
    let reaped: Awaited<ReturnType<Queue['reap']>> | undefined;
    const events = await eventsOf(async () => (reaped = await q.reap(2)));
    expect(reaped).toMatchObject({ requeued: 1, dead: 1, workers: ['gone'] });
    expect(events.sort()).toEqual([a, b].sort());
    expect(await q.getJob(a)).toMatchObject({ state: 'failed' });
    expect(await q.getJob(b)).toMatchObject({ state: 'queued' });
    await q.dropClaim(a, T);
    await q.dropClaim(b, T);
  });

  it('stems are recorded only by the worker whose processing list holds the job', async () => {
    const x = h(120);
    await q.submit({ hash: x, sizeBytes: 1 });
    await q.claim(blocking, 'owner', 1);
    expect(await eventsOf(async () => expect(await q.recordStems('intruder', x, ['vocals'])).toBe('lost'))).toEqual([]);
    expect((await q.getJob(x))!.stems).toEqual([]);
    expect(await q.recordStems('owner', x, ['vocals', 'bass'])).toBe('owned');
    expect((await q.getJob(x))!.stems).toEqual(['vocals', 'bass']);
    // once handed back, the former owner records nothing either
    expect(await q.release('owner', x)).toBe(true);
    expect(await q.recordStems('owner', x, ['drums'])).toBe('lost');
    expect((await q.getJob(x))!.stems).toEqual(['vocals', 'bass']);
    await q.dropClaim(x, T);
  });

  it('a callback status is recorded only for the outcome it reported: not after a re-run, not after deletion', async () => {
    const x = h(130);
    await q.submit({ hash: x, sizeBytes: 1, callbackStatus: 'skipped: private address' });
    expect((await q.getClaim(x, T))!.callbackStatus).toBe('skipped: private address');
    await q.claim(blocking, 'cb', 1);
    await q.complete('cb', x, 1);
    const { finishedAt } = (await q.getJob(x))!;
    expect(await eventsOf(async () => expect(await q.setCallbackStatus(x, T, 'sent (200)', '2000-01-01T00:00:00.000Z')).toBe(false))).toEqual([]);
    expect(await q.setCallbackStatus(x, T, 'sent (200)', finishedAt!)).toBe(true);
    expect((await q.getClaim(x, T))!.callbackStatus).toBe('sent (200)');
    await q.submit({ hash: x, sizeBytes: 1 }); // no stems recorded: a re-run
    expect(await q.setCallbackStatus(x, T, 'late', finishedAt!)).toBe(false);
    expect((await q.getClaim(x, T))!.callbackStatus).toBeNull();
    await q.dropClaim(x, T);
    expect(await q.setCallbackStatus(x, T, 'late', finishedAt!)).toBe(false);
    expect(await redis.exists(keys.job(x))).toBe(0);
  });

  it('removing a stem takes it off a listing record only, and never recreates a deleted one', async () => {
    const x = h(140);
    await q.submit({ hash: x, sizeBytes: 1 });
    await q.claim(blocking, 'rm', 1);
    await q.recordStems('rm', x, ['vocals', 'drums', 'bass']);
    await q.complete('rm', x, 1);
    expect(await q.removeStem(x, T, 'drums')).toBe('last');
    expect((await q.getJob(x))!.stems).toEqual(['vocals', 'bass']);
    expect(await q.removeStem(x, T, 'drums')).toBe('absent');
    await q.dropClaim(x, T);
    expect(await q.removeStem(x, T, 'vocals')).toBe('absent');
    expect(await redis.exists(keys.job(x))).toBe(0);
  });

  it('the heartbeat, from the queue or from the worker thread, sets the worker\'s key with its TTL and adds it to the workers set', async () => {
    await q.heartbeat('beating', 7);
    const thread = new Heartbeat({
      url: REDIS_URL,
      heartbeatKey: keys.heartbeat('threaded'),
      workersKey: keys.workers,
      workerId: 'threaded',
      ttlSec: 9,
      intervalMs: 60_000,
    });
    await thread.started();
    await thread.stop();
    expect(thread.lastOk).toBeGreaterThan(0);
    for (const [id, ttl] of [['beating', 7], ['threaded', 9]] as const) {
      expect(await redis.ttl(keys.heartbeat(id))).toBeGreaterThan(ttl - 2);
      expect(await redis.ttl(keys.heartbeat(id))).toBeLessThanOrEqual(ttl);
      expect(Date.parse((await redis.get(keys.heartbeat(id)))!)).toBeGreaterThan(Date.now() - 60_000);
      expect(await redis.sismember(keys.workers, id)).toBe(1);
    }
  });
});

/** Claims: one shared job per song, one claim per tenant. */
describe('claims of several tenants', () => {
  let q: Queue;
  let keys: Keys;
  const A = 'alice';
  const B = 'bob';
  beforeAll(() => {
    keys = makeKeys(`${prefix}claims:`);
    q = new Queue(redis, keys, { retentionSec: 60 });
  });
  // each test starts with an empty queue and no active songs
  beforeEach(async () => {
    await redis.del(keys.toWorker, keys.order, keys.active(A), keys.active(B));
  });

  async function separate(hash: string, worker = 'cw'): Promise<string[]> {
    const claimed = await q.claim(blocking, worker, 1);
    expect(claimed?.hash).toBe(hash);
    expect(await q.recordStems(worker, hash, TRACKS)).toBe('owned');
    const { outcome, tenants } = await q.complete(worker, hash, 1);
    expect(outcome).toBe('done');
    return tenants.sort();
  }

  it('shares one run between tenants, reports every claim at completion, and keeps each claim its own', async () => {
    const x = h(300);
    expect((await q.submit({ hash: x, tenant: A, sizeBytes: 1, filename: 'a.mp3' })).result).toBe('enqueued');
    expect((await q.submit({ hash: x, tenant: B, sizeBytes: 1, filename: 'b.mp3' })).result).toBe('queued');
    expect(await q.length()).toBe(1);
    expect(await separate(x)).toEqual([A, B]);
    expect((await q.getClaim(x, A))!.filename).toBe('a.mp3');
    expect((await q.getClaim(x, B))!.filename).toBe('b.mp3');
    // a third tenant joining later gets the stems at once, and its callback is not called
    expect((await q.submit({ hash: x, tenant: 'carol', sizeBytes: 1, callback: { url: 'https://hooks.example.com/c' } })).result).toBe('done');
    expect((await q.getClaim(x, 'carol'))!.callbackStatus).toMatch(/^not sent: the song was already separated/);
  });

  it('removes a stem from one claim only, and from the job when the last claim that saw it removes it', async () => {
    const x = h(301);
    await q.submit({ hash: x, tenant: A, sizeBytes: 1 });
    await q.submit({ hash: x, tenant: B, sizeBytes: 1 });
    await separate(x);
    expect(await q.removeStem(x, A, 'drums')).toBe('hidden');
    expect(await q.removeStem(x, A, 'drums')).toBe('absent');
    expect((await q.getJob(x))!.stems).toContain('drums');
    expect(await q.removeStem(x, 'mallory', 'drums')).toBe('absent');
    expect(await q.removeStem(x, B, 'drums')).toBe('last');
    expect((await q.getJob(x))!.stems).not.toContain('drums');
    // a re-submission now needs a run again (a stem is gone for everyone)
    expect((await q.submit({ hash: x, tenant: A, sizeBytes: 1 })).result).toBe('enqueued');
  });

  it('drops claims one by one; the song goes with the last, and a worker finishing it then records nothing', async () => {
    const x = h(302);
    await q.submit({ hash: x, tenant: A, sizeBytes: 1 });
    await q.submit({ hash: x, tenant: B, sizeBytes: 1 });
    await q.claim(blocking, 'late', 1);
    expect(await q.dropClaim(x, 'mallory')).toBe('absent');
    expect(await q.dropClaim(x, A)).toBe('kept');
    expect(await q.dropClaim(x, B)).toBe('last');
    expect(await q.recordStems('late', x, TRACKS)).toBe('gone');
    expect((await q.complete('late', x, 1)).outcome).toBe('gone');
    expect(await redis.exists(keys.job(x), keys.claims(x))).toBe(0);
    expect(await q.held('late')).toEqual([]);
    // deleted and submitted again while a worker ran the old one: the old run records nothing
    const y = h(303);
    await q.submit({ hash: y, tenant: A, sizeBytes: 1 });
    await q.claim(blocking, 'late', 1);
    await q.dropClaim(y, A);
    expect((await q.submit({ hash: y, tenant: A, sizeBytes: 1 })).result).toBe('enqueued');
    expect((await q.complete('late', y, 1)).outcome).toBe('superseded');
    expect(await q.getJob(y)).toMatchObject({ state: 'queued', stems: [] });
    await q.dropClaim(y, A);
  });

  it('asks for the upload before queueing a new run, and refuses over a quota without writing anything', async () => {
    const x = h(310);
    expect((await q.submit({ hash: x, tenant: A, sizeBytes: 1, uploaded: false })).result).toBe('upload');
    expect(await q.getJob(x)).toBeNull();
    expect((await q.submit({ hash: x, tenant: A, sizeBytes: 1, maxActive: 1 })).result).toBe('enqueued');
    expect((await q.submit({ hash: h(311), tenant: A, sizeBytes: 1, maxActive: 1 })).result).toBe('over_active');
    expect(await q.getJob(h(311))).toBeNull();
    // joining another tenant's waiting song also makes it one more active song of the joiner
    expect((await q.submit({ hash: x, tenant: B, sizeBytes: 1, maxActive: 1 })).result).toBe('queued');
    expect(await q.activeCount(B)).toBe(1);
    // once A's song is done, A has room again
    await separate(x);
    expect((await q.submit({ hash: h(311), tenant: A, sizeBytes: 1, maxActive: 1 })).result).toBe('enqueued');
    // audio minutes a day
    const used = await q.usageSec(B);
    expect((await q.submit({ hash: h(312), tenant: B, sizeBytes: 1, audioSec: 50, maxAudioSecPerDay: used + 60 })).result).toBe('enqueued');
    expect((await q.submit({ hash: h(313), tenant: B, sizeBytes: 1, audioSec: 20, maxAudioSecPerDay: used + 60 })).result).toBe('over_minutes');
    expect(await q.usageSec(B)).toBe(used + 50);
  });

  it('gives a finished song and its claims the retention TTL, lists it for the sweep once due, and forgets it there', async () => {
    const x = h(320);
    await q.submit({ hash: x, tenant: A, sizeBytes: 1 });
    await separate(x);
    for (const key of [keys.job(x), keys.claim(x, A)]) {
      expect(await redis.ttl(key)).toBeGreaterThan(55);
      expect(await redis.ttl(key)).toBeLessThanOrEqual(60);
    }
    // the claims set outlives them by a day: the sweep reads it to clean each claimant's library
    expect(await redis.ttl(keys.claims(x))).toBeGreaterThan(86_400 + 55);
    expect(await redis.ttl(keys.claims(x))).toBeLessThanOrEqual(86_400 + 60);
    expect(await q.dueForExpiry(10)).not.toContain(x);
    expect(await q.dueForExpiry(10, Date.now() + 61_000)).toContain(x);
    expect(await q.expireSong(x, Date.now())).toBe(false); // not due yet
    expect(await q.expireSong(x, Date.now() + 61_000)).toBe(true);
    expect(await redis.exists(keys.job(x), keys.claims(x), keys.claim(x, A))).toBe(0);
    // a song queued again is not expired, and leaves the sweep list
    const y = h(321);
    await q.submit({ hash: y, tenant: A, sizeBytes: 1 });
    await separate(y);
    await q.removeStem(y, A, 'vocals');
    await q.submit({ hash: y, tenant: A, sizeBytes: 1 });
    expect(await redis.ttl(keys.job(y))).toBe(-1);
    expect(await q.dueForExpiry(10, Date.now() + 61_000)).not.toContain(y);
  });

  it('interleaves tenants in fair order and keeps one tenant first in, first out', async () => {
    const a = [h(400), h(401), h(402), h(403)];
    for (const x of a) await q.submit({ hash: x, tenant: A, sizeBytes: 1 });
    const b = [h(410), h(411)];
    for (const x of b) await q.submit({ hash: x, tenant: B, sizeBytes: 1 });
    const waiting = await q.waiting();
    expect(waiting.filter((x) => a.includes(x))).toEqual(a);
    expect(waiting.filter((x) => b.includes(x))).toEqual(b);
    expect(waiting.indexOf(b[0]!)).toBeLessThanOrEqual(1);
    expect(waiting.indexOf(b[1]!)).toBeLessThanOrEqual(3);
    expect(await q.waiting(B)).toEqual(b);
  });

  it("lists a tenant's library newest first, without other tenants' songs or deleted claims", async () => {
    const lib = [h(500), h(501), h(502)];
    for (const x of lib) {
      await q.submit({ hash: x, tenant: 'lib-a', sizeBytes: 1, filename: `${x.slice(-3)}.mp3` });
      await new Promise((r) => setTimeout(r, 5));
    }
    await q.submit({ hash: h(503), tenant: 'lib-b', sizeBytes: 1 });
    expect((await q.library('lib-a', { limit: 10 })).map((c) => c.job.hash)).toEqual([...lib].reverse());
    expect((await q.library('lib-a', { limit: 2 })).map((c) => c.claim.filename)).toEqual([`${h(502).slice(-3)}.mp3`, `${h(501).slice(-3)}.mp3`]);
    await q.dropClaim(h(501), 'lib-a');
    expect((await q.library('lib-a', { limit: 10 })).map((c) => c.job.hash)).toEqual([h(502), h(500)]);
    expect((await q.library('lib-b', { limit: 10 })).map((c) => c.job.hash)).toEqual([h(503)]);
  });
});

describe('output formats and stem sets at submit', () => {
  const worker = (): TestWorker => new TestWorker(queue);

  it('a record without formats is the lab\'s: mp3 and the four model stems', async () => {
    await queue.submit({ hash: h(700), sizeBytes: 1 });
    const job = await queue.getJob(h(700));
    expect(job).toMatchObject({ formats: ['mp3'], wanted: [...TRACKS] });
  });

  it('a done song asked in another format or with more stems gets a new run making the union; asked again, it is done', async () => {
    const x = h(701);
    expect(await queue.submit({ hash: x, sizeBytes: 1 })).toEqual({ result: 'enqueued' });
    const w = worker();
    await w.claim(x);
    await w.recordStems(x);
    await w.complete(x);
    // covered: mp3 asked of mp3, a subset of the stems
    expect(await queue.submit({ hash: x, sizeBytes: 1, stems: ['vocals'] })).toEqual({ result: 'done' });
    // not covered: the upload is asked for first, then a new run that says what the song had
    expect(await queue.submit({ hash: x, sizeBytes: 1, format: 'flac', stems: ['vocals', 'instrumental'], uploaded: false })).toEqual({ result: 'upload' });
    expect(await queue.submit({ hash: x, sizeBytes: 1, format: 'flac', stems: ['vocals', 'instrumental'] })).toEqual({
      result: 'enqueued',
      rerunOf: { formats: ['mp3'], stems: [...TRACKS] },
    });
    expect(await queue.getJob(x)).toMatchObject({ state: 'queued', formats: ['mp3', 'flac'], wanted: [...TRACKS, 'instrumental'], stems: [] });
    await w.claim(x);
    await queue.recordStems(w.id, x, [...TRACKS, 'instrumental']);
    await w.complete(x);
    expect(await queue.submit({ hash: x, sizeBytes: 1, format: 'flac', stems: ['instrumental'] })).toEqual({ result: 'done' });
    expect(await queue.submit({ hash: x, sizeBytes: 1 })).toEqual({ result: 'done' });
    // CBR 320 replaces the VBR mp3 (one .mp3 per stem); VBR mp3 is then served by it
    expect(await queue.submit({ hash: x, sizeBytes: 1, format: 'mp3-320' })).toMatchObject({ result: 'enqueued' });
    // the run makes the format it lacks alone; the flac files stay finished and served meanwhile
    expect(await queue.getJob(x)).toMatchObject({ formats: ['mp3-320'], storedFormats: ['flac'] });
    await w.claim(x);
    await queue.recordStems(w.id, x, [...TRACKS, 'instrumental']);
    await w.complete(x);
    expect(await queue.submit({ hash: x, sizeBytes: 1, format: 'mp3' })).toEqual({ result: 'done' });
  });

  it('a waiting run takes a later request into it; a running one does not, and the submission says so', async () => {
    const y = h(702);
    await queue.submit({ hash: y, sizeBytes: 1 });
    expect(await queue.submit({ hash: y, sizeBytes: 1, format: 'wav', stems: ['instrumental'] })).toEqual({ result: 'queued', extended: true });
    expect(await queue.getJob(y)).toMatchObject({ formats: ['mp3', 'wav'], wanted: [...TRACKS, 'instrumental'] });
    expect(await queue.submit({ hash: y, sizeBytes: 1, format: 'wav' })).toEqual({ result: 'queued' });
    await worker().claim(y);
    expect(await queue.submit({ hash: y, sizeBytes: 1, format: 'flac' })).toEqual({
      result: 'queued',
      running: { formats: ['mp3', 'wav'], stems: [...TRACKS, 'instrumental'] },
    });
    expect((await queue.getJob(y))!.formats).toEqual(['mp3', 'wav']);
  });
});
