import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRACKS, songhash, withTimeout } from '@msaas/common';
import { decodeMp3 } from '../../worker/src/separation/index.ts';
import { printLinesOnFailure, startStack, type Stack } from '../helpers/stack.ts';
import { standinModelPath } from '../helpers/standin-model.ts';
import { exited, ownStore, type OwnedStore } from '../helpers/processes.ts';
import { startS3Proxy, type S3Proxy } from '../helpers/s3-proxy.ts';
import { waitFor } from '../helpers/env.ts';
import { clip, outputObjects, report, s3Client, sleep, stemNames, variant, waitJob, workerLines } from './support.ts';

/**
 * Object-store outage: the S3-compatible server (a process of its own on a fixed port) is killed
 * while a job is running — after the worker has separated the song, as its first stem upload is on
 * the wire (a proxy in front of the store holds that request until the store is dead, so the
 * timing does not depend on the machine's load) → the upload fails, it and the next are retried
 * with backoff; rest (talking to the store directly) answers 503 JSON for uploads; no stem of the
 * running job is served (some are in the bucket, maybe half-written) and the job is not `done`
 * until all four stems are in the bucket; once the store is back on the same port and directory,
 * the job completes. A store that accepts requests and never answers them costs a timeout and a
 * retry.
 */
let storeDir: string;
let store: OwnedStore;
let stack: Stack;
printLinesOnFailure(() => stack?.lines);
let worker: ChildProcess;
let proxy: S3Proxy;
const figures: Record<string, unknown> = {};

beforeAll(async () => {
  storeDir = mkdtempSync(path.join(os.tmpdir(), 'msaas-store-'));
  store = await ownStore(storeDir);
  stack = await startStack({ worker: false, env: { ...store.env, HEARTBEAT_TTL_SEC: '10', REAP_INTERVAL_SEC: '1', RATE_LIMIT_PER_MIN: '1000000' } });
  proxy = await startS3Proxy({ port: store.port });
  worker = await stack.addWorker({ WORKER_ID: `store-outage-${stack.prefix.split(':')[2]}`, MODEL_PATH: standinModelPath(), MINIO_PORT: String(proxy.port) });
}, 180_000);

afterAll(async () => {
  await store?.start().catch(() => undefined);
  await stack?.stop();
  await proxy?.close();
  await store?.kill();
  if (storeDir) rmSync(storeDir, { recursive: true, force: true });
  report('store-outage', figures, stack?.lines);
}, 90_000);

describe('object-store outage', () => {
  it('the job retries with backoff and completes once the store is back; rest answers 503 meanwhile; no partial stem is served', async () => {
    const [short, long] = await Promise.all([clip(4), clip(12)]);
    const mp3 = variant(long, 301);
    const hash = songhash(mp3);
    const firstUpload = proxy.holdOnce({ method: 'PUT', path: new RegExp(`^/output/${hash}-drums\\.mp3`) });
    expect((await stack.api.submit(mp3)).result).toBe('enqueued');
    await withTimeout(firstUpload.hit, 120_000, 'the worker never started uploading stems');
    expect(await stack.api.job(hash)).toMatchObject({ state: 'processing', progress: 0.95, stems: {} });

    await store.kill();
    const downAt = Date.now();
    firstUpload.release();

    // rest: uploads and stem downloads are 503 JSON {error, detail}, fast; the job record (Redis)
    // is still served, and so is the refusal of the running job's stems.
    const t0 = performance.now();
    await expect(stack.api.submit(variant(short, 302), { timeoutMs: 10_000 })).rejects.toMatchObject({ status: 503, error: 'unavailable', detail: expect.any(String) });
    figures.uploadAnswerMsDuringOutage = Math.round(performance.now() - t0);
    expect(figures.uploadAnswerMsDuringOutage).toBeLessThan(2000);
    await expect(stack.api.stem(songhash(variant(short, 305)), 'drums')).rejects.toMatchObject({ status: 503, error: 'unavailable' });
    await expect(stack.api.stem(hash, 'drums')).rejects.toMatchObject({ status: 404, error: 'not_ready' });
    await expect(stack.api.ready()).rejects.toMatchObject({ status: 503, error: 'not_ready' });

    // The worker finishes separating, then its uploads fail and are retried with growing delays.
    const retryLines = (): number[] =>
      stack.lines
        .filter((l) => l.service === 'worker' && l.line.includes(hash) && /upload of \w+ failed/.test(l.line))
        .map((l) => Number(/retry \d+ in (\d+) ms/.exec(l.line)?.[1]));
    await waitFor(async () => retryLines().length >= 5, { timeoutMs: 90_000, intervalMs: 200, what: 'five upload retries' });
    const delays = retryLines();
    figures.retryDelaysMs = delays;
    for (let i = 1; i < delays.length; i++) expect(delays[i]!).toBeGreaterThanOrEqual(delays[i - 1]!);
    expect(delays.at(-1)!).toBeGreaterThan(delays[0]!);
    const during = await stack.api.job(hash);
    expect(during).toMatchObject({ state: 'processing', attempts: 1, stems: {} });
    figures.outageSec = (Date.now() - downAt) / 1000;

    await store.start();
    const restartedAt = Date.now();
    // Until the job is done no stem is served (404 not_ready), though some are already in the
    // bucket, possibly half-written; `done` only with all four in the bucket.
    const s3 = s3Client(stack.env);
    let probes = 0;
    const late = new Map<string, Uint8Array>();
    let done = null;
    while (!done) {
      const job = await stack.api.job(hash);
      if (job.state === 'done') {
        expect((await outputObjects(s3, hash)).map((o) => o.name)).toEqual(stemNames(hash));
        done = job;
        break;
      }
      expect(job.state).toBe('processing');
      for (const t of TRACKS) {
        const served = await stack.api.stem(hash, t).catch((err: unknown) => {
          expect(err).toMatchObject({ status: 404, error: 'not_ready' });
          return null;
        });
        if (served) {
          // The job finished between our two requests: fine, if it really is done now.
          late.set(t, served.bytes);
          expect((await stack.api.job(hash)).state).toBe('done');
          continue;
        }
        probes++;
      }
      if (Date.now() - restartedAt > 120_000) throw new Error('job not done within 120 s of the store restart');
      await sleep(50);
    }
    figures.doneAfterRestartMs = Date.now() - restartedAt;
    figures.stemRequestsRefusedWhileRunning = probes;
    expect(probes).toBeGreaterThan(0);
    expect(done.attempts).toBe(1);
    // Once done, every stem is served whole (and any served in the race above was the same file).
    for (const t of TRACKS) {
      const { bytes } = await stack.api.stem(hash, t);
      if (late.has(t)) expect(Buffer.compare(late.get(t)!, bytes)).toBe(0);
      expect(Math.abs((await decodeMp3(bytes)).durationSec - 12.04)).toBeLessThan(0.2);
    }
    // And rest takes uploads again.
    expect((await stack.api.submit(variant(short, 303))).result).toBe('enqueued');
  }, 300_000);

  it('a store that stops answering: each hung request is given up after STORE_TIMEOUT_SEC and retried; the job completes', async () => {
    worker.kill('SIGTERM');
    expect((await exited(worker)).code).toBe(0);
    await stack.addWorker({ WORKER_ID: `store-hang-${stack.prefix.split(':')[2]}`, MODEL_PATH: standinModelPath(), MINIO_PORT: String(proxy.port), STORE_TIMEOUT_SEC: '2' });
    const mp3 = variant(await clip(4), 304);
    const hash = songhash(mp3);
    // The store accepts these two requests and never answers them.
    proxy.holdOnce({ method: 'GET', path: new RegExp(`^/queue/${hash}\\.mp3`) });
    proxy.holdOnce({ method: 'PUT', path: new RegExp(`^/output/${hash}-bass\\.mp3`) });
    const t0 = Date.now();
    expect((await stack.api.submit(mp3)).result).toBe('enqueued');
    const done = await waitJob(stack.api, hash, (j) => j.state === 'done' || j.state === 'failed', 90_000, 'job done despite hung requests');
    figures.hungRequestsJobMs = Date.now() - t0;
    expect(done).toMatchObject({ state: 'done', attempts: 1 });
    expect(workerLines(stack, hash, 'download got no answer within 2 s')).toHaveLength(1);
    expect(workerLines(stack, hash, 'upload of bass got no answer within 2 s')).toHaveLength(1);
    expect((await outputObjects(s3Client(stack.env), hash)).map((o) => o.name)).toEqual(stemNames(hash));
  }, 150_000);
});
