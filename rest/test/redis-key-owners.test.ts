/**
 * Issue 22 item 8: every Redis key has a TTL or an owner that removes it. The job, claim, library,
 * re-run, failure and delete flows run against the real app (supertest), real Redis and the real
 * s3rver, the worker's side through the queue's real transitions (TestWorker); then the test's
 * prefix is SCANned and every key without a TTL must be one of the owned structures listed below,
 * each with the reason it needs none.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import { Redis } from 'ioredis';
import { TRACKS, makeKeys, songhash, type Keys } from '@msaas/common';
import { TestWorker } from '../../common/test/test-worker.ts';
import { synthesizeMp3 } from '../../worker/fixtures/synth.ts';
import { REDIS_URL } from '../../test/helpers/env.ts';
import { restUnderTest, type RestUnderTest } from './helpers/rest-under-test.ts';

const ALICE = 'k-alice-key-owners-1';
const BOB = 'k-bob-key-owners-2';
const RETENTION_SEC = 3;

/**
 * Keys allowed without a TTL, by the pattern after the prefix, with who removes them.
 * Per-song keys (job, claims set, claim) are allowed only while their song is queued or processing:
 * a song waiting or running never expires (lib/songs.lua keep()); its run's end gives it the TTL.
 */
const OWNED: [RegExp, string][] = [
  [/^toWorker$/, 'the queue: each song leaves it when a worker takes it or its last claim is deleted'],
  [/^processing:.+$/, "a worker's list: emptied by complete/fail/release or the reaper (an empty list is no key)"],
  [/^dead$/, 'songs failed for good: expire-song-5 and drop-claim-11 take each out'],
  [/^workers$/, 'live workers: the reaper removes a worker once its heartbeat key has expired'],
  [/^queue-order$/, "fair order's tags of waiting songs: start-4 and drop-claim-11 remove each"],
  [/^queue-last$/, "fair order: one tag per tenant, bounded by the configured keys (a tenant's whole state)"],
  [/^queue-vtime$/, "fair order's virtual time: one string"],
  [/^expiries$/, 'the retention sweep list: the sweeper removes each song once its objects are gone'],
  [/^active:.+$/, "a tenant's active places (only while it has a limit): submit-12 prunes, drop-claim-11 and expire-song-5 remove"],
  [/^library:.+$/, "a tenant's library: drop-claim-11 and expire-song-5 remove each song (the claims set outlives the claims for it), listing prunes"],
  [/^logging$/, 'the capped log list (LTRIM)'],
];

async function keysWithoutTtl(redis: Redis, prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    cursor = next;
    for (const k of batch) if ((await redis.ttl(k)) === -1) found.push(k.slice(prefix.length));
  } while (cursor !== '0');
  return found.sort();
}

/** Keys without TTL that no listed owner accounts for (per-song keys of a song still queued or processing are owned by its run). */
async function unowned(redis: Redis, prefix: string, keys: Keys): Promise<string[]> {
  const out: string[] = [];
  for (const k of await keysWithoutTtl(redis, prefix)) {
    if (OWNED.some(([re]) => re.test(k))) continue;
    const song = /^(?:job|claims|claim):([0-9a-f]{56})/.exec(k);
    const state = song ? await redis.hget(keys.job(song[1]!), 'state') : null;
    if (state === 'queued' || state === 'processing') continue;
    out.push(`${k} (${state ?? 'no record'})`);
  }
  return out;
}

describe('Redis keys: a TTL or an owner for every one (issue 22 item 8)', () => {
  let under: RestUnderTest;
  let redis: Redis;
  let keys: Keys;
  const songs: Buffer[] = [];
  const post = (bytes: Buffer, key: string, fields: Record<string, string> = {}) => {
    const r = request(under.rest.app).post('/apiv1/separate').set('X-API-Key', key);
    for (const [k, v] of Object.entries(fields)) r.field(k, v);
    return r.attach('file', bytes, 'song.mp3');
  };

  beforeAll(async () => {
    under = await restUnderTest('key-owners', {
      API_KEYS: `alice:${ALICE},bob:${BOB}`,
      RATE_LIMIT_PER_MIN: '10000',
      SUBMIT_RATE_LIMIT_PER_MIN: '10000',
      RETENTION_DAYS: String(RETENTION_SEC / 86_400),
      RETENTION_SWEEP_SEC: '3600', // the test sweeps by hand
    });
    redis = new Redis(REDIS_URL);
    keys = makeKeys(under.prefix);
    for (let i = 0; i < 4; i++) songs.push(Buffer.from(await synthesizeMp3({ seconds: 1, seed: 900 + i })));
  }, 60_000);

  afterAll(async () => {
    redis?.disconnect();
    await under?.close();
  });

  it('after the job, join, re-run, failure, delete and retention flows, every key without a TTL is an owned structure', async () => {
    const { queue, store } = under.rest.deps;
    const worker = new TestWorker(queue);
    const [s1, s2, s3] = songs.map((b) => songhash(b));

    // a song shared by two tenants, then run again by one of them for another format
    expect((await post(songs[0]!, ALICE)).body.result).toBe('enqueued');
    expect((await post(songs[0]!, BOB)).body.result).toBe('queued');
    await worker.claim(s1!);
    for (const t of TRACKS) await store.putStem(s1!, t, songs[0]!);
    await worker.recordStems(s1!);
    expect((await worker.complete(s1!)).sort()).toEqual(['alice', 'bob']);
    expect((await post(songs[0]!, BOB, { format: 'flac' })).body.result).toBe('enqueued');
    await worker.claim(s1!);
    for (const t of TRACKS) await store.putStem(s1!, t, songs[0]!, 'flac');
    await worker.recordStems(s1!);
    // the run was made for bob's request alone: alice's claim is not reported again
    expect(await worker.complete(s1!)).toEqual(['bob']);
    expect((await request(under.rest.app).delete(`/apiv1/track/${s1}/drums.mp3`).set('X-API-Key', ALICE)).status).toBe(200);
    expect((await request(under.rest.app).delete(`/apiv1/jobs/${s1}`).set('X-API-Key', BOB)).status).toBe(200);

    // a song the worker refuses: failed for good, its upload swept at once
    expect((await post(songs[1]!, ALICE)).body.result).toBe('enqueued');
    await worker.claim(s2!);
    await worker.fail(s2!, 'bad audio: test');
    expect(await store.hasUpload(s2!)).toBe(true);
    await under.rest.sweeper.sweep();
    expect(await store.hasUpload(s2!)).toBe(false);

    // a song deleted while the worker runs it: the run records nothing
    expect((await post(songs[2]!, ALICE)).body.result).toBe('enqueued');
    await worker.claim(s3!);
    expect((await request(under.rest.app).delete(`/apiv1/jobs/${s3}`).set('X-API-Key', ALICE)).status).toBe(200);
    expect(await queue.recordStems(worker.id, s3!, TRACKS)).toBe('gone');
    expect((await queue.complete(worker.id, s3!, 1)).outcome).toBe('gone');

    // a tenant with no active-songs limit leaves no active set behind
    const s4 = songhash(songs[3]!);
    expect((await queue.submit({ hash: s4, tenant: 'unlimited', sizeBytes: 1, maxActive: 0 })).result).toBe('enqueued');
    expect(await redis.exists(keys.active('unlimited'))).toBe(0);
    await worker.claim(s4);
    await worker.recordStems(s4);
    await worker.complete(s4);

    // mid-way: finished songs carry the retention TTL; the claims set outlives record and claims
    expect(await unowned(redis, under.prefix, keys)).toEqual([]);
    const jobTtl = await redis.ttl(keys.job(s1!));
    expect(jobTtl).toBeGreaterThan(0);
    expect(jobTtl).toBeLessThanOrEqual(RETENTION_SEC);
    expect(await redis.ttl(keys.claims(s1!))).toBeGreaterThan(86_400);

    // past the retention: Redis has expired records and claims before any sweep; the library
    // entries are still there, and the sweep (reading the claims sets) takes them out
    await new Promise((r) => setTimeout(r, (RETENTION_SEC + 1) * 1000));
    expect(await redis.exists(keys.job(s1!), keys.claim(s1!, 'alice'), keys.job(s2!))).toBe(0);
    expect(await redis.zscore(keys.library('alice'), s1!)).not.toBeNull();
    expect(await under.rest.sweeper.sweep()).toBeGreaterThanOrEqual(3);
    for (const t of ['alice', 'bob', 'unlimited']) {
      expect(await redis.exists(keys.library(t), keys.active(t))).toBe(0);
    }
    const left = await keysWithoutTtl(redis, under.prefix);
    expect(await unowned(redis, under.prefix, keys)).toEqual([]);
    // what is left without a TTL: fair order's per-tenant state, nothing per song
    expect(left.filter((k) => /[0-9a-f]{56}/.test(k))).toEqual([]);
    expect(left.every((k) => /^(queue-last|queue-vtime|logging)$/.test(k))).toBe(true);
  }, 60_000);
});
