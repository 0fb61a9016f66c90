import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { IMPLICIT_TENANT, Queue, TRACKS, makeKeys } from '../src/index.ts';
import { REDIS_URL, deletePrefix, uniquePrefix } from '../../test/helpers/env.ts';

/**
 * charge-decoded-4.lua against real Redis: the minutes quota charged from the decoded length
 * (issue 22 item 5). The tenants charged at submit for a run pay what the header left out; nobody
 * else does, nothing is charged twice, and only the worker that owns the job can charge.
 */
let redis: Redis;
let blocking: Redis;
let prefix: string;
let queue: Queue;
const h = (n: number): string => `c${n.toString(16).padStart(55, '0')}`;
const events: string[] = [];
let sub: Redis;

beforeAll(async () => {
  prefix = uniquePrefix('charge');
  redis = new Redis(REDIS_URL);
  blocking = new Redis(REDIS_URL);
  sub = new Redis(REDIS_URL);
  queue = new Queue(redis, makeKeys(prefix));
  await sub.subscribe(queue.keys.events);
  sub.on('message', (_c: string, m: string) => events.push(m));
});
afterAll(async () => {
  await deletePrefix(prefix);
  redis.disconnect();
  blocking.disconnect();
  sub.disconnect();
});

/** Queues `hash` for `tenant` with `audioSec` from its header and has worker `w` take it. */
async function running(hash: string, tenant: string, audioSec: number, w = 'w1'): Promise<void> {
  expect((await queue.submit({ hash, tenant, sizeBytes: 10, audioSec })).result).toBe('enqueued');
  const claimed = await queue.claim(blocking, w, 1);
  expect(claimed?.hash).toBe(hash);
}

describe('charge-decoded-4.lua', () => {
  it('charges the submitter what the header left out, publishes, records the decoded length, and charges nothing twice', async () => {
    await running(h(1), 'alice', 0.5);
    expect(await queue.usageSec('alice')).toBeCloseTo(0.5, 3);
    events.length = 0;
    const r = await queue.chargeDecoded('w1', h(1), 40, { maxAudioSecPerDay: 0 });
    expect(r).toEqual({ outcome: 'charged', extraSec: 39.5, usedSec: { alice: 40 } });
    expect(await queue.usageSec('alice')).toBeCloseTo(40, 3);
    expect((await queue.getJob(h(1)))!.audioSec).toBe(40);
    await new Promise((res) => setTimeout(res, 50));
    expect(events).toContain(h(1));
    // A retried run decodes the same length again: nothing more.
    expect((await queue.chargeDecoded('w1', h(1), 40, { maxAudioSecPerDay: 0 })).outcome).toBe('unchanged');
    // A decode shorter than the header refunds nothing.
    expect((await queue.chargeDecoded('w1', h(1), 10, { maxAudioSecPerDay: 0 })).outcome).toBe('unchanged');
    expect(await queue.usageSec('alice')).toBeCloseTo(40, 3);
    const ttl = await redis.ttl(queue.keys.usage('alice', new Date().toISOString().slice(0, 10)));
    expect(ttl).toBeGreaterThan(86_400);
    await queue.recordStems('w1', h(1), TRACKS);
    await queue.complete('w1', h(1), 1);
  });

  it('charges every tenant that joined the run, not a tenant whose claim is from an earlier run', async () => {
    // carol's claim is from the song's first run, which is done; alice asks for a new format (a new
    // run, charged at submit), bob joins it asking for that format too (charged at submit), and
    // dan asks for the MP3s the first run finished (served at once: charged nothing).
    await running(h(2), 'carol', 1);
    await queue.recordStems('w1', h(2), TRACKS);
    await queue.complete('w1', h(2), 1);
    expect((await queue.submit({ hash: h(2), tenant: 'alice', sizeBytes: 10, audioSec: 1, format: 'flac' })).result).toBe('enqueued');
    expect((await queue.submit({ hash: h(2), tenant: 'bob', sizeBytes: 10, audioSec: 1, format: 'flac' })).result).toBe('queued');
    expect((await queue.submit({ hash: h(2), tenant: 'dan', sizeBytes: 10, audioSec: 1 })).result).toBe('done');
    expect((await queue.claim(blocking, 'w1', 1))?.hash).toBe(h(2));
    const before = { alice: await queue.usageSec('alice'), bob: await queue.usageSec('bob'), carol: await queue.usageSec('carol'), dan: await queue.usageSec('dan') };
    const r = await queue.chargeDecoded('w1', h(2), 31, { maxAudioSecPerDay: 0 });
    expect(r.outcome).toBe('charged');
    expect(Object.keys(r.usedSec).sort()).toEqual(['alice', 'bob']);
    expect(await queue.usageSec('alice')).toBeCloseTo(before.alice + 30, 3);
    expect(await queue.usageSec('bob')).toBeCloseTo(before.bob + 30, 3);
    expect(await queue.usageSec('carol')).toBeCloseTo(before.carol, 3);
    expect(await queue.usageSec('dan')).toBeCloseTo(before.dan, 3);
    await queue.recordStems('w1', h(2), TRACKS);
    await queue.complete('w1', h(2), 1);
  });

  it("says 'over' only when every tenant charged is past the limit; the implicit tenant has none", async () => {
    // dave is near his limit, erin is not: the run goes on.
    await redis.incrbyfloat(queue.keys.usage('dave', new Date().toISOString().slice(0, 10)), 50);
    await running(h(3), 'dave', 0);
    expect((await queue.submit({ hash: h(3), tenant: 'erin', sizeBytes: 10, audioSec: 0 })).result).toBe('queued');
    const shared = await queue.chargeDecoded('w1', h(3), 20, { maxAudioSecPerDay: 60 });
    expect(shared.outcome).toBe('charged');
    expect(shared.usedSec).toEqual({ dave: 70, erin: 20 });
    await queue.recordStems('w1', h(3), TRACKS);
    await queue.complete('w1', h(3), 1);
    // dave alone: over.
    await running(h(4), 'dave', 0);
    const alone = await queue.chargeDecoded('w1', h(4), 5, { maxAudioSecPerDay: 60 });
    expect(alone).toEqual({ outcome: 'over', extraSec: 5, usedSec: { dave: 75 } });
    await queue.fail('w1', h(4), 'over', { retryable: false, maxAttempts: 3 });
    // The implicit tenant (a service without keys) is charged but never over.
    await running(h(5), IMPLICIT_TENANT.id, 0);
    const implicit = await queue.chargeDecoded('w1', h(5), 3600, { maxAudioSecPerDay: 60 });
    expect(implicit.outcome).toBe('charged');
    await queue.recordStems('w1', h(5), TRACKS);
    await queue.complete('w1', h(5), 1);
  });

  it('a worker that does not own the job charges nothing', async () => {
    await running(h(6), 'frank', 1, 'w1');
    expect(await queue.chargeDecoded('w2', h(6), 100, { maxAudioSecPerDay: 0 })).toEqual({ outcome: 'lost', extraSec: 0, usedSec: {} });
    expect(await queue.usageSec('frank')).toBeCloseTo(1, 3);
    await queue.recordStems('w1', h(6), TRACKS);
    await queue.complete('w1', h(6), 1);
    // Nor on a finished job, even its own worker.
    expect((await queue.chargeDecoded('w1', h(6), 100, { maxAudioSecPerDay: 0 })).outcome).toBe('lost');
  });
});
