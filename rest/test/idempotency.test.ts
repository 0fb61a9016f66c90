/**
 * Issue 24 item 4: `Idempotency-Key` on POST /apiv1/separate and POST /apiv1/uploads. Real rest app
 * (supertest), real Redis, the real s3rver; a real HTTP server for the slow URL submit.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import { Redis } from 'ioredis';
import { songhash } from '@msaas/common';
import { synthesizeMp3 } from '../../worker/fixtures/synth.ts';
import { REDIS_URL } from '../../test/helpers/env.ts';
import { restUnderTest, type RestUnderTest } from './helpers/rest-under-test.ts';

const ALICE = 'k-alice-idempotency-1';
const BOB = 'k-bob-idempotency-2';
let under: RestUnderTest;
let redis: Redis;
let server: http.Server;
let base: string;
let release: (() => void) | null = null;
const songs: Uint8Array[] = [];

const app = () => under.rest.app;
const as = (key: string, idem?: string) => ({ Authorization: `Bearer ${key}`, ...(idem ? { 'Idempotency-Key': idem } : {}) });

beforeAll(async () => {
  for (const seed of [1, 2, 3, 4, 5, 6]) songs.push(await synthesizeMp3({ seconds: 3, seed: 500 + seed }));
  let flaky = 0;
  server = http.createServer((req, res) => {
    // 404 the first time, the song after.
    if (req.url === '/flaky.mp3') {
      if (flaky++ === 0) return res.writeHead(404).end();
      return res.writeHead(200, { 'content-length': songs[4]!.length }).end(songs[4]);
    }
    // Answers the song once the test releases it.
    res.writeHead(200, { 'content-type': 'audio/mpeg', 'content-length': songs[5]!.length });
    res.write(songs[5]!.subarray(0, 1000));
    release = () => res.end(songs[5]!.subarray(1000));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  under = await restUnderTest('idempotency', { API_KEYS: `alice:${ALICE},bob:${BOB}`, URL_FETCH_ALLOW_PRIVATE: 'true', URL_FETCH_TIMEOUT_SEC: '60' });
  redis = new Redis(REDIS_URL);
}, 60_000);

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await under?.close();
  redis?.disconnect();
});

describe('Idempotency-Key', () => {
  it('the same key and the same request twice: the first answer again (status and body, Idempotent-Replayed), one job', async () => {
    const body = { mp3: Buffer.from(songs[0]!).toString('base64') };
    const first = await request(app()).post('/apiv1/separate').set(as(ALICE, 'retry-1')).send(body);
    expect(first.status).toBe(200);
    expect(first.body.result).toBe('enqueued');
    const second = await request(app()).post('/apiv1/separate').set(as(ALICE, 'retry-1')).send(body);
    expect(second.status).toBe(200);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(second.body).toEqual(first.body);
    // Without the key the same song is answered as the job already queued: the replay is the first answer, not a second submit.
    const plain = await request(app()).post('/apiv1/separate').set(as(ALICE)).send(body);
    expect(plain.body.result).toBe('queued');
    expect(await under.rest.deps.queue.length()).toBe(1);
  });

  it('the same key with another request is 422 idempotency_key_reused with a sentence; a multipart file counts as the same request as itself', async () => {
    const first = await request(app()).post('/apiv1/separate').set(as(ALICE, 'key-2')).attach('file', Buffer.from(songs[1]!), 'a.mp3');
    expect(first.status).toBe(200);
    const same = await request(app()).post('/apiv1/separate').set(as(ALICE, 'key-2')).attach('file', Buffer.from(songs[1]!), 'a.mp3');
    expect(same.status).toBe(200);
    expect(same.headers['idempotent-replayed']).toBe('true');
    expect(same.body).toEqual(first.body);
    const other = await request(app()).post('/apiv1/separate').set(as(ALICE, 'key-2')).attach('file', Buffer.from(songs[2]!), 'a.mp3');
    expect(other.status).toBe(422);
    expect(other.body.error).toBe('idempotency_key_reused');
    expect(other.body.detail).toMatch(/this Idempotency-Key was used for another request within the last 24 hours/);
    const otherFields = await request(app()).post('/apiv1/separate').set(as(ALICE, 'key-2')).field('format', 'wav').attach('file', Buffer.from(songs[1]!), 'a.mp3');
    expect(otherFields.status).toBe(422);
    // Nothing of the refused requests stays staged.
    expect(await under.rest.deps.store.staleStaged('incoming/', new Date(Date.now() + 60_000))).toEqual([]);
  });

  it('keys are scoped per tenant: another tenant\'s same key is a request of its own', async () => {
    const a = await request(app()).post('/apiv1/uploads').set(as(ALICE, 'shared-key')).send({ filename: 'a.mp3' });
    const b = await request(app()).post('/apiv1/uploads').set(as(BOB, 'shared-key')).send({ filename: 'b.mp3' });
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(b.body.id).not.toBe(a.body.id);
  });

  it('concurrent duplicates make one upload and one job, and all get the first answer', async () => {
    const uploads = await Promise.all(Array.from({ length: 6 }, () => request(app()).post('/apiv1/uploads').set(as(ALICE, 'burst-upload')).send({ filename: 'x.mp3' })));
    expect(uploads.map((r) => r.status)).toEqual(Array(6).fill(201));
    expect(new Set(uploads.map((r) => r.body.id)).size).toBe(1);
    expect(uploads.filter((r) => r.headers['idempotent-replayed'] === 'true')).toHaveLength(5);

    const before = await under.rest.deps.queue.length();
    const submits = await Promise.all(
      Array.from({ length: 5 }, () => request(app()).post('/apiv1/separate').set(as(ALICE, 'burst-submit')).attach('file', Buffer.from(songs[3]!), 'burst.mp3')),
    );
    expect(submits.map((r) => r.status)).toEqual(Array(5).fill(200));
    expect(submits.map((r) => r.body.result)).toEqual(Array(5).fill('enqueued'));
    expect(new Set(submits.map((r) => JSON.stringify(r.body))).size).toBe(1);
    expect(await under.rest.deps.queue.length()).toBe(before + 1);
    expect(submits[0]!.body.hash).toBe(songhash(songs[3]!));
  });

  it('a duplicate of a request still being answered waits, then gets 409 idempotency_in_progress with Retry-After; once answered, the answer is replayed', async () => {
    const first = request(app()).post('/apiv1/separate').set(as(ALICE, 'slow-url')).send({ url: `${base}/song.mp3` }).then((r) => r);
    await new Promise((r) => setTimeout(r, 500));
    const started = Date.now();
    const dup = await request(app()).post('/apiv1/separate').set(as(ALICE, 'slow-url')).send({ url: `${base}/song.mp3` });
    expect(dup.status).toBe(409);
    expect(dup.body.error).toBe('idempotency_in_progress');
    expect(dup.headers['retry-after']).toBe('2');
    expect(Date.now() - started).toBeGreaterThanOrEqual(9000);
    release!();
    const answered = await first;
    expect(answered.status).toBe(200);
    expect(answered.body.hash).toBe(songhash(songs[5]!));
    const replay = await request(app()).post('/apiv1/separate').set(as(ALICE, 'slow-url')).send({ url: `${base}/song.mp3` });
    expect(replay.status).toBe(200);
    expect(replay.body).toEqual(answered.body);
  }, 30_000);

  it('a request refused before it was read whole is not kept: the retry with the same key runs', async () => {
    const bad = await request(app()).post('/apiv1/separate').set(as(ALICE, 'fix-and-retry')).send({ mp3: Buffer.from('not audio at all').toString('base64') });
    expect(bad.status).toBe(400);
    const good = await request(app()).post('/apiv1/separate').set(as(ALICE, 'fix-and-retry')).send({ mp3: Buffer.from(songs[4]!).toString('base64') });
    expect(good.status).toBe(200);
    expect(good.headers['idempotent-replayed']).toBeUndefined();
  });

  it('a URL that did not deliver (422) is not kept: the retry with the same key fetches again', async () => {
    const first = await request(app()).post('/apiv1/separate').set(as(ALICE, 'flaky-url')).send({ url: `${base}/flaky.mp3` });
    expect(first.status).toBe(422);
    expect(first.body.error).toBe('url_fetch_failed');
    const retry = await request(app()).post('/apiv1/separate').set(as(ALICE, 'flaky-url')).send({ url: `${base}/flaky.mp3` });
    expect(retry.status).toBe(200);
    expect(retry.body.hash).toBe(songhash(songs[4]!));
  });

  it('a key that is not 1–255 visible ASCII characters is 400 bad_idempotency_key', async () => {
    const res = await request(app()).post('/apiv1/uploads').set(as(ALICE)).set('Idempotency-Key', 'x'.repeat(256)).send({});
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('bad_idempotency_key');
  });

  it('every idempotency key in Redis has a TTL of at most 24 h', async () => {
    const keys = await redis.keys(`${under.prefix}idem:*`);
    expect(keys.length).toBeGreaterThanOrEqual(6);
    for (const k of keys) {
      const ttl = await redis.ttl(k);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(86_400);
    }
    for (const k of await redis.keys(`${under.prefix}direct-upload*`)) expect(await redis.ttl(k)).toBeGreaterThan(0);
  });
});
