import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { ChildProcess } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { ApiClient, ApiError, Queue, makeKeys, songhash, type JobView } from '@msaas/common';
import { printLinesOnFailure, startStack, type Stack } from '../helpers/stack.ts';
import { standinModelPath } from '../helpers/standin-model.ts';
import { REDIS_URL, waitFor } from '../helpers/env.ts';
import { clip, report, s3Client, sleep, variant, waitCallback, waitJob } from './support.ts';

/**
 * Issue 22 items 4, 6 and 9 with real processes (rest, a worker with the stand-in model, s3rver,
 * Redis) and two API keys:
 * - a song's finished files and callbacks belong to its claimants: another tenant re-submitting
 *   the same bytes for other formats neither hides alice's files (tracks, zip, mix answer 200 all
 *   through its runs), nor re-fires her callback, nor learns her formats from the reason;
 * - a joiner sees its own view of the shared work (its times, request and files; no one else's
 *   worker or run details);
 * - failing uploads are charged to the tenant (they hold active places and keep their seconds)
 *   and leave the store at the retention sweep after the failure.
 */
const KEY_A = 'alice-key-claims-0123456789';
const KEY_B = 'bob-key-claims-0123456789ab';
const KEYS = `alice:${KEY_A},bob:${KEY_B}`;
const figures: Record<string, unknown> = {};
const stacks: Stack[] = [];
printLinesOnFailure(() => stacks.flatMap((s) => s.lines));

afterAll(async () => {
  for (const s of stacks) await s.stop();
  report('claims', figures, stacks[0]?.lines);
}, 90_000);

async function stopWorker(w: ChildProcess): Promise<void> {
  if (w.exitCode !== null) return;
  const exited = new Promise<void>((r) => w.once('exit', () => r()));
  w.kill('SIGTERM');
  await exited;
}

/** Status of a request as `key` (the body is read and dropped). */
async function statusOf(stack: Stack, key: string, path: string, method = 'GET'): Promise<number> {
  const res = await fetch(`${stack.url}${path}`, { method, headers: { Authorization: `Bearer ${key}` } });
  await res.arrayBuffer();
  return res.status;
}

describe('a finished song belongs to its claimants (issue 22 items 6 and 9)', () => {
  let stack: Stack;
  let a: ApiClient;
  let b: ApiClient;
  const hooks: { path: string; eventId: string }[] = [];
  let hookUrl = '';
  const hookServer = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      hooks.push({ path: req.url ?? '', eventId: String(req.headers['x-msaas-event-id'] ?? '') });
      res.end('ok');
    });
  });
  const hooksTo = (path: string) => hooks.filter((h) => h.path === path);
  let song1: Buffer;
  let song2: Buffer;
  let song3: Buffer;

  beforeAll(async () => {
    await new Promise<void>((r) => hookServer.listen(0, '127.0.0.1', r));
    hookUrl = `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}`;
    stack = await startStack({ worker: false, env: { API_KEYS: KEYS, MODEL_PATH: standinModelPath(), RATE_LIMIT_PER_MIN: '1000000', SUBMIT_RATE_LIMIT_PER_MIN: '1000000' } });
    stacks.push(stack);
    a = new ApiClient({ baseUrl: stack.url, apiKey: KEY_A });
    b = new ApiClient({ baseUrl: stack.url, apiKey: KEY_B });
    const base = await clip(4, 71);
    [song1, song2, song3] = [variant(base, 1), variant(base, 2), variant(base, 3)];
  }, 180_000);
  afterAll(() => new Promise<void>((r) => hookServer.close(() => r())));

  it("a joiner sees its own view: its times, name, callback and request; no other tenant's worker or run details", async () => {
    // alice's songs wait (no worker yet); bob joins song2 while it waits
    const first = await a.upload(song2, { filename: 'alice-2.mp3', callback: { url: `${hookUrl}/a2` } });
    await a.upload(song3, { filename: 'alice-3.mp3' });
    await sleep(20);
    const joined = await b.upload(song2, { filename: 'bob-2.mp3', callback: { url: `${hookUrl}/b2` } });
    expect(joined.result).toBe('queued');
    const [av, bv] = [await a.job(first.hash), await b.job(first.hash)];
    expect(bv).toMatchObject({ state: 'queued', filename: 'bob-2.mp3', worker: null, startedAt: null, callback: { url: `${hookUrl}/b2` } });
    expect(Date.parse(bv.createdAt)).toBeGreaterThan(Date.parse(av.createdAt));

    const worker = await stack.addWorker({ MODEL_PATH: standinModelPath() });
    const aDone = await waitCallback(a, first.hash, 60_000, 'alice song2 callback');
    const bDone = await waitCallback(b, first.hash, 60_000, 'bob song2 callback');
    await waitJob(a, songhash(song3), (j) => j.state === 'done', 60_000, 'alice song3 done');
    await stopWorker(worker);
    // the run was alice's: only she sees which worker ran it; each sees the run from its own claim
    expect(aDone.worker).toEqual(expect.any(String));
    expect(bDone.worker).toBeNull();
    expect(Date.parse(bDone.startedAt!)).toBeGreaterThanOrEqual(Date.parse(bDone.createdAt));
    expect(bDone).toMatchObject({ state: 'done', filename: 'bob-2.mp3', formats: ['mp3'], callback: { url: `${hookUrl}/b2` } });
    const same = (Object.keys(aDone) as (keyof JobView)[]).filter((k) => JSON.stringify(aDone[k]) === JSON.stringify(bDone[k])).sort();
    figures.fieldsIdenticalToTheOwnersView = same;
    expect(same).not.toContain('createdAt');
    expect(same).not.toContain('worker');
    expect(same).not.toContain('filename');
    expect(same).not.toContain('callback');

    // joining a song already done: nothing of the run that made it, the song done at its claim
    const song3Hash = (await b.upload(song3, { filename: 'bob-3.mp3' })).hash;
    const late = await b.job(song3Hash);
    expect(late).toMatchObject({ state: 'done', attempts: 0, worker: null, startedAt: null, error: null, filename: 'bob-3.mp3' });
    expect(late.finishedAt).toBe(late.createdAt);
    expect((await a.job(song3Hash)).createdAt).not.toBe(late.createdAt);
  }, 180_000);

  it("bob's runs of alice's song for flac, then wav: her files answer 200 throughout, her callback stays silent, the reasons never name her formats", async () => {
    // alice's song, done as mp3, her callback delivered once
    const w1 = await stack.addWorker({ MODEL_PATH: standinModelPath() });
    const { hash } = await a.upload(song1, { filename: 'alice.mp3', callback: { url: `${hookUrl}/a` } });
    const alice = await waitCallback(a, hash, 60_000, 'alice callback');
    await stopWorker(w1);
    expect(hooksTo('/a')).toHaveLength(1);
    const aliceEvent = hooksTo('/a')[0]!.eventId;
    expect(aliceEvent).toMatch(/^[0-9a-f]{40}$/);

    const aliceFiles = async (): Promise<number[]> =>
      Promise.all([
        statusOf(stack, KEY_A, `/apiv1/track/${hash}/vocals.mp3`),
        statusOf(stack, KEY_A, `/apiv1/jobs/${hash}/zip`),
        statusOf(stack, KEY_A, `/apiv1/jobs/${hash}/mix`, 'HEAD'),
      ]);
    /** Polls alice's files until bob's run is done; returns the statuses seen and bob's states meanwhile. */
    const duringRun = async (): Promise<{ statuses: number[]; bobStates: string[] }> => {
      const statuses: number[] = [];
      const bobStates: string[] = [];
      for (const t0 = Date.now(); Date.now() - t0 < 90_000; ) {
        const state = (await b.job(hash)).state;
        bobStates.push(state);
        statuses.push(...(await aliceFiles()));
        if (state === 'done' || state === 'failed') break;
      }
      return { statuses, bobStates };
    };

    for (const [format, earlier] of [
      ['flac', null],
      ['wav', 'flac'],
    ] as const) {
      const sub = await b.upload(song1, { filename: 'bob.mp3', format, callback: { url: `${hookUrl}/b` } });
      expect(sub.result).toBe('enqueued');
      figures[`reasonFor${format}`] = sub.reason;
      expect(sub.reason).not.toMatch(/mp3/);
      if (earlier) expect(sub.reason).toContain(earlier); // bob's own earlier request may be named
      // his view: what he asked (finished, then coming), never alice's mp3
      expect(sub.job?.formats).toEqual(earlier ? [earlier, format] : [format]);
      // waiting for a worker: alice's files answer, her view is her finished song
      expect(await aliceFiles()).toEqual([200, 200, 200]);
      expect(await a.job(hash)).toMatchObject({ state: 'done', formats: ['mp3'], finishedAt: alice.finishedAt, worker: alice.worker, live: null });
      const w = await stack.addWorker({ MODEL_PATH: standinModelPath() });
      const seen = await duringRun();
      await stopWorker(w);
      figures[`alicesStatusesDuring${format}Run`] = { requests: seen.statuses.length, non200: seen.statuses.filter((s) => s !== 200).length, bobStates: [...new Set(seen.bobStates)] };
      expect(seen.bobStates.at(-1)).toBe('done');
      expect(seen.bobStates).toContain('processing');
      expect(seen.statuses.filter((s) => s !== 200)).toEqual([]);
      await waitCallback(b, hash, 30_000, `bob ${format} callback`);
      expect((await b.stem(hash, 'vocals', { format })).bytes.length).toBeGreaterThan(1000);
    }
    await sleep(500); // a late re-fire would land by now
    // alice: one callback, ever; bob: one per request, each with an id of its own
    expect(hooksTo('/a').map((h) => h.eventId)).toEqual([aliceEvent]);
    const bobIds = hooksTo('/b').map((h) => h.eventId);
    expect(bobIds).toHaveLength(2);
    expect(new Set(bobIds).size).toBe(2);
    // neither sees the other's formats
    expect((await a.job(hash)).formats).toEqual(['mp3']);
    expect((await b.job(hash)).formats.sort()).toEqual(['flac', 'wav']);
    const refused = await b.stem(hash, 'vocals').then(
      () => null,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(ApiError);
    expect((refused as ApiError).status).toBe(404);
    expect((refused as ApiError).detail).not.toMatch(/stored as [^;]*mp3/);
  }, 300_000);
});

/** A FLAC whose header promises `seconds` of audio and whose frames are garbage: rest accepts it (and charges the header's length), the worker refuses it. */
function poisonFlac(n: number, seconds: number, bytes: number): Buffer {
  const info = Buffer.alloc(34);
  info.writeUInt16BE(4096, 0);
  info.writeUInt16BE(4096, 2);
  const rate = 44_100;
  const total = seconds * rate;
  info[10] = (rate >> 12) & 0xff;
  info[11] = (rate >> 4) & 0xff;
  info[12] = ((rate & 0xf) << 4) | (1 << 1) | (15 >> 4); // 2 channels, 16 bits
  info[13] = ((15 & 0xf) << 4) | (Math.floor(total / 2 ** 32) & 0xf);
  info.writeUInt32BE(total >>> 0, 14);
  const frames = Buffer.alloc(bytes, 0x11);
  frames[0] = 0xff;
  frames[1] = 0xf8;
  frames.writeUInt32BE(n, 8);
  return Buffer.concat([Buffer.from('fLaC'), Buffer.from([0x80, 0, 0, 34]), info, frames]);
}

async function queueBucket(stack: Stack): Promise<{ objects: number; bytes: number }> {
  const s3 = s3Client(stack.env);
  let objects = 0;
  let bytes = 0;
  for await (const o of s3.listObjectsV2('queue', '', true) as AsyncIterable<{ size?: number }>) {
    objects++;
    bytes += o.size ?? 0;
  }
  return { objects, bytes };
}

describe('failing uploads are charged to the tenant and leave the store (issue 22 item 4)', () => {
  it('20 uploads the worker refuses: 10 accepted then 429 (failures hold places), seconds stay charged, uploads swept at once', async () => {
    const stack = await startStack({
      env: { API_KEYS: KEYS, MODEL_PATH: standinModelPath(), RATE_LIMIT_PER_MIN: '1000000', SUBMIT_RATE_LIMIT_PER_MIN: '1000000', MAX_ACTIVE_JOBS_PER_KEY: '10', RETENTION_SWEEP_SEC: '0.5' },
    });
    stacks.push(stack);
    const a = new ApiClient({ baseUrl: stack.url, apiKey: KEY_A });
    const b = new ApiClient({ baseUrl: stack.url, apiKey: KEY_B });
    const redis = new Redis(REDIS_URL);
    const queue = new Queue(redis, makeKeys(stack.prefix));
    try {
      const SIZE = 2 * 2 ** 20;
      const before = await queueBucket(stack);
      const accepted: string[] = [];
      const refused: ApiError[] = [];
      let peak = before;
      for (let i = 0; i < 20; i++) {
        try {
          accepted.push((await a.upload(poisonFlac(i, 30, SIZE), { filename: `poison-${i}.flac` })).hash);
          const now = await queueBucket(stack);
          if (now.bytes > peak.bytes) peak = now;
        } catch (err) {
          if (!(err instanceof ApiError)) throw err;
          refused.push(err);
        }
        // each failure lands before the next upload: without the charge, every one would be accepted
        if (accepted.length === i + 1) await waitJob(a, accepted[i]!, (j) => j.state === 'failed', 60_000, `poison ${i} failed`);
      }
      expect(accepted).toHaveLength(10);
      expect(refused).toHaveLength(10);
      for (const r of refused) expect(r).toMatchObject({ status: 429, error: 'quota_exceeded' });
      // the refused ones stored nothing; the failed ones' uploads leave at the next sweep
      const t0 = Date.now();
      await waitFor(async () => (await queueBucket(stack)).objects === before.objects, { timeoutMs: 10_000, intervalMs: 100, what: 'failed uploads swept' });
      figures.failingUploads = {
        accepted: accepted.length,
        refused429: refused.length,
        queueBucketBefore: before,
        queueBucketPeak: peak,
        queueBucketAfter: await queueBucket(stack),
        sweptWithinMs: Date.now() - t0,
        chargedSec: await queue.usageSec('alice'),
        heldPlaces: await queue.activeCount('alice'),
        refusal: refused[0]?.detail,
      };
      expect((await queueBucket(stack)).bytes).toBe(before.bytes);
      // charged: the header's 30 s of each accepted upload stay on the day's count, the places stay held
      expect(await queue.usageSec('alice')).toBeCloseTo(10 * 30, 0);
      expect(await queue.activeCount('alice')).toBe(10);
      // another tenant is not held back; deleting a failed song frees its place
      expect((await b.upload(poisonFlac(100, 30, 1024))).result).toBe('enqueued');
      await a.deleteSong(accepted[0]!);
      expect((await a.upload(poisonFlac(200, 30, 1024))).result).toBe('enqueued');
    } finally {
      redis.disconnect();
    }
  }, 300_000);
});
