import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { ApiClient, ApiError, TRACKS, makeKeys, songhash } from '@msaas/common';
import { printLinesOnFailure, startStack, type Stack } from '../helpers/stack.ts';
import { standinModelPath } from '../helpers/standin-model.ts';
import { REDIS_URL, waitFor } from '../helpers/env.ts';
import { clip, outputObjects, report, s3Client, sleep, stemNames, variant, waitCallback, waitJob, workerLines } from './support.ts';

/**
 * Many tenants, one service, with real processes: keys with ids, isolation on every route, work
 * shared across tenants with separate claims, quotas, fair order and retention.
 */
const KEY_A = 'alice-key-0123456789abcdef';
const KEY_B = 'bob-key-0123456789abcdef01';
const KEYS = `alice:${KEY_A},bob:${KEY_B}`;
const figures: Record<string, unknown> = {};
const stacks: Stack[] = [];
printLinesOnFailure(() => stacks.flatMap((s) => s.lines));

async function tenantStack(env: Record<string, string>, worker = true): Promise<{ stack: Stack; a: ApiClient; b: ApiClient }> {
  const stack = await startStack({ worker, env: { API_KEYS: KEYS, MODEL_PATH: standinModelPath(), RATE_LIMIT_PER_MIN: '1000000', SUBMIT_RATE_LIMIT_PER_MIN: '1000000', ...env } });
  stacks.push(stack);
  return { stack, a: new ApiClient({ baseUrl: stack.url, apiKey: KEY_A }), b: new ApiClient({ baseUrl: stack.url, apiKey: KEY_B }) };
}

/** The error a call answers with, with the songhash taken out so two songs' answers compare. */
async function refusal(call: () => Promise<unknown>, hash: string): Promise<{ status: number; error: string; detail: string }> {
  try {
    await call();
  } catch (err) {
    if (err instanceof ApiError) return { status: err.status, error: err.error, detail: err.detail.replaceAll(hash, '<hash>') };
    throw err;
  }
  throw new Error('the call succeeded');
}

afterAll(async () => {
  for (const s of stacks) await s.stop();
  report('tenancy', figures);
}, 90_000);

describe('two tenants on one service', () => {
  let stack: Stack;
  let a: ApiClient;
  let b: ApiClient;
  const hooks: { path: string; body: unknown }[] = [];
  let hookUrl = '';
  const hookServer = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      hooks.push({ path: req.url ?? '', body: JSON.parse(body || 'null') });
      res.end('ok');
    });
  });

  beforeAll(async () => {
    await new Promise<void>((r) => hookServer.listen(0, '127.0.0.1', r));
    hookUrl = `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}`;
    ({ stack, a, b } = await tenantStack({}));
  }, 180_000);
  afterAll(() => new Promise<void>((r) => hookServer.close(() => r())));

  it("answers another tenant's song on every route exactly like a song nobody submitted (404 not_found)", async () => {
    const mine = await clip(2, 61);
    const nobody = variant(mine, 999);
    const { hash } = await a.upload(mine, { filename: 'alice-secret.mp3', callback: { url: `${hookUrl}/alice?token=s3cret`, data: { a: 1 } } });
    await waitJob(a, hash, (j) => j.state === 'done', 60_000, 'alice song done');
    const nobodyHash = songhash(nobody);
    const routes: [string, (c: ApiClient, h: string) => Promise<unknown>][] = [
      ['GET job', (c, h) => c.job(h)],
      ['GET events', (c, h) => c.request(`/apiv1/jobs/${h}/events`)],
      ['GET zip', (c, h) => c.zip(h)],
      ['GET track', (c, h) => c.stem(h, 'vocals')],
      ['GET remove (lab)', (c, h) => c.removeStem(h, 'drums', { lab: true })],
      ['DELETE track', (c, h) => c.removeStem(h, 'bass')],
      ['DELETE job', (c, h) => c.deleteSong(h)],
    ];
    for (const [name, call] of routes) {
      const theirs = await refusal(() => call(b, hash), hash);
      const none = await refusal(() => call(b, nobodyHash), nobodyHash);
      expect({ name, ...theirs }).toEqual({ name, ...none });
      expect(theirs.status).toBe(404);
      expect(theirs.error).toBe('not_found');
    }
    // and the owner still has everything
    const job = await a.job(hash);
    expect(job).toMatchObject({ state: 'done', filename: 'alice-secret.mp3' });
    expect(Object.keys(job.stems).sort()).toEqual([...TRACKS].sort());
    expect(job.callback?.url).toContain('token=s3cret');
    expect((await a.stem(hash, 'vocals')).bytes.length).toBeGreaterThan(1000);
    expect((await a.zip(hash)).bytes.length).toBeGreaterThan(1000);
  });

  it('separates the same bytes once for two tenants, fires both callbacks, and deletes per claim', async () => {
    const song = variant(await clip(2, 61), 777);
    hooks.length = 0;
    const first = await a.upload(song, { filename: 'a-name.mp3', callback: { url: `${hookUrl}/a`, data: { who: 'alice' } } });
    const second = await b.upload(song, { filename: 'b-name.mp3', callback: { url: `${hookUrl}/b`, data: { who: 'bob' } } });
    expect(first.hash).toBe(second.hash);
    expect(first.result).toBe('enqueued');
    expect(second.result).toBe('queued');
    const hash = first.hash;
    await waitCallback(a, hash, 60_000, 'alice callback');
    await waitCallback(b, hash, 60_000, 'bob callback');
    expect(workerLines(stack, hash, 'job claimed')).toHaveLength(1); // one model run
    expect(hooks.map((h) => [h.path, h.body]).sort()).toEqual([
      ['/a', { who: 'alice' }],
      ['/b', { who: 'bob' }],
    ]);
    // each sees its own filename and callback only
    expect((await a.job(hash)).filename).toBe('a-name.mp3');
    expect((await b.job(hash)).filename).toBe('b-name.mp3');
    expect((await b.job(hash)).callback?.url).toBe(`${hookUrl}/b`);

    // A removes one stem from its view: B keeps it, the store keeps it
    await a.removeStem(hash, 'drums');
    expect(Object.keys((await a.job(hash)).stems)).not.toContain('drums');
    expect((await b.stem(hash, 'drums')).bytes.length).toBeGreaterThan(1000);
    const s3 = s3Client(stack.env);
    expect((await outputObjects(s3, hash)).map((o) => o.name)).toEqual(stemNames(hash));

    // A deletes the song: B's stems stay downloadable; B's delete then removes them from the store
    await a.deleteSong(hash);
    expect((await refusal(() => a.job(hash), hash)).status).toBe(404);
    expect((await b.stem(hash, 'vocals')).bytes.length).toBeGreaterThan(1000);
    expect((await outputObjects(s3, hash)).length).toBe(TRACKS.length);
    await b.deleteSong(hash);
    expect(await outputObjects(s3, hash)).toEqual([]);
    expect((await refusal(() => b.job(hash), hash)).status).toBe(404);
  });
});

describe('quotas and fair order', () => {
  it("refuses a tenant's 11th active song with 429 quota_exceeded, other tenants unaffected, and accepts it once one finishes", async () => {
    const { stack, a, b } = await tenantStack({ MAX_ACTIVE_JOBS_PER_KEY: '10' }, false);
    const base = await clip(2, 62);
    for (let i = 0; i < 10; i++) expect((await a.submit(variant(base, i))).result).toBe('enqueued');
    const eleventh = variant(base, 10);
    const refused = await a.submit(eleventh).then(
      () => null,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(ApiError);
    expect(refused).toMatchObject({ status: 429, error: 'quota_exceeded' });
    expect((refused as ApiError).detail).toMatch(/10 songs queued or processing.*MAX_ACTIVE_JOBS_PER_KEY=10/);
    figures.quotaDetail = (refused as ApiError).detail;
    // another tenant is not held back by alice's quota, and each lists only its own waiting songs
    const bobs = (await b.submit(variant(base, 50))).hash;
    expect((await b.queue()).queue).toEqual([bobs]);
    expect((await a.queue()).queue.length).toBe(10);
    expect((await a.queue()).queue).not.toContain(bobs);
    // once a worker finishes one of alice's songs, the 11th is accepted
    await stack.addWorker({ MODEL_PATH: standinModelPath() });
    await waitFor(
      async () => {
        try {
          return (await a.submit(eleventh)).result === 'enqueued';
        } catch (err) {
          if (err instanceof ApiError && err.status === 429) return false;
          throw err;
        }
      },
      { timeoutMs: 60_000, intervalMs: 200, what: 'the 11th song accepted' },
    );
  });

  it("starts a newcomer's song 1st or 2nd after the first of a tenant with five waiting (one worker)", async () => {
    const { stack, a, b } = await tenantStack({}, false);
    const base = await clip(2, 63);
    const alice: string[] = [];
    for (let i = 0; i < 5; i++) alice.push((await a.submit(variant(base, 100 + i))).hash);
    const bob = (await b.submit(variant(base, 200))).hash;
    expect((await b.queue()).queue).toEqual([bob]);
    await stack.addWorker({ MODEL_PATH: standinModelPath() });
    const all = [...alice, bob];
    const views = await Promise.all(all.map((h, i) => waitJob(i < 5 ? a : b, h, (j) => j.state === 'done', 120_000, 'fairness song done')));
    const order = views.sort((x, y) => Date.parse(x.startedAt!) - Date.parse(y.startedAt!)).map((v) => v.hash);
    figures.fairOrder = order.map((h) => (h === bob ? 'bob' : `alice${alice.indexOf(h) + 1}`));
    expect(order[0]).toBe(alice[0]);
    expect(order.indexOf(bob)).toBeLessThanOrEqual(2);
  });
});

describe('retention', () => {
  it('gives a finished song a TTL of at most RETENTION_DAYS and removes its stems and record after it', async () => {
    const retentionSec = 3;
    const { stack, a } = await tenantStack({ RETENTION_DAYS: String(retentionSec / 86_400), RETENTION_SWEEP_SEC: '0.5' });
    const { hash } = await a.submit(variant(await clip(2, 64), 1));
    await waitJob(a, hash, (j) => j.state === 'done', 60_000, 'song done');
    const redis = new Redis(REDIS_URL);
    try {
      const keys = makeKeys(stack.prefix);
      const ttl = await redis.ttl(keys.job(hash));
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(retentionSec);
      expect(await redis.ttl(keys.claim(hash, 'alice'))).toBeLessThanOrEqual(retentionSec);
      figures.redisBytesPerSong = {
        job: await redis.memory('USAGE', keys.job(hash)),
        claim: await redis.memory('USAGE', keys.claim(hash, 'alice')),
        claims: await redis.memory('USAGE', keys.claims(hash)),
      };
      const s3 = s3Client(stack.env);
      expect((await outputObjects(s3, hash)).length).toBe(TRACKS.length);
      const t0 = Date.now();
      await waitFor(async () => (await outputObjects(s3, hash)).length === 0, { timeoutMs: 20_000, intervalMs: 250, what: 'stems removed after retention' });
      figures.stemsGoneAfterMs = Date.now() - t0;
      await sleep(200);
      expect(await redis.exists(keys.job(hash), keys.claims(hash), keys.claim(hash, 'alice'))).toBe(0);
      expect((await refusal(() => a.job(hash), hash)).status).toBe(404);
    } finally {
      redis.disconnect();
    }
  });
});
