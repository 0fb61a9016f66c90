import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, type CallOptions } from '@msaas/common';
import { printLinesOnFailure, startStack, type Stack } from '../helpers/stack.ts';
import { standinModelPath } from '../helpers/standin-model.ts';
import { ownRedis, type OwnedRedis } from '../helpers/processes.ts';
import { waitFor } from '../helpers/env.ts';
import { clip, outputObjects, report, s3Client, sleep, stemNames, variant, waitJob, workerLines } from './support.ts';

/**
 * Redis outage: a redis-server of this test's own (append-only file on, as the k8s manifest runs
 * it) is stopped while jobs are queued and one is running, then started again on the same port
 * and directory → rest answers 503 JSON meanwhile (quickly: no hang, no crash), the workers
 * reconnect, every job completes, once. The outage outlasts the heartbeat TTL, so Redis comes back
 * with every worker's heartbeat expired while two jobs are running and a third worker is idle.
 */
let redis: OwnedRedis;
let redisDir: string;
let stack: Stack;
printLinesOnFailure(() => stack?.lines);
let workers: ChildProcess[];
// Short, so that the outage outlasts it: every heartbeat key has expired when Redis comes back.
const TTL_SEC = 3;
const figures: Record<string, unknown> = {};

beforeAll(async () => {
  redisDir = mkdtempSync(path.join(os.tmpdir(), 'msaas-redis-'));
  redis = await ownRedis(redisDir);
  stack = await startStack({
    worker: false,
    env: { REDIS_URL: redis.url, HEARTBEAT_TTL_SEC: String(TTL_SEC), REAP_INTERVAL_SEC: '0.5', RATE_LIMIT_PER_MIN: '1000000' },
  });
  const id = stack.prefix.split(':')[2];
  // Two workers run jobs through the outage; the third is idle, its reaper free to run at once.
  workers = await Promise.all(['a', 'b', 'c'].map((w) => stack.addWorker({ WORKER_ID: `outage-${w}-${id}`, MODEL_PATH: standinModelPath() })));
}, 180_000);

afterAll(async () => {
  await redis?.start().catch(() => undefined); // so the services can stop cleanly
  await stack?.stop();
  await redis?.stop();
  if (redisDir) rmSync(redisDir, { recursive: true, force: true });
  report('redis-outage', figures, stack?.lines);
}, 90_000);

/** A call's refusal and how long it took; a call that succeeds fails the test. */
async function refusal(call: (opts: CallOptions) => Promise<unknown>): Promise<{ err: ApiError; ms: number }> {
  const t0 = performance.now();
  const err = await call({ timeoutMs: 10_000 }).then(
    (body) => {
      throw new Error(`answered ${JSON.stringify(body)}`);
    },
    (e: unknown) => e,
  );
  if (!(err instanceof ApiError)) throw err;
  return { err, ms: performance.now() - t0 };
}

describe('Redis outage', () => {
  it('rest answers 503 JSON while Redis is down; after restart the worker reconnects and every job completes', async () => {
    const [short, long] = await Promise.all([clip(4), clip(12)]);
    const running = await stack.api.submit(variant(long, 201));
    await waitFor(async () => workerLines(stack, running.hash, 'separating').length > 0, { timeoutMs: 60_000, what: 'long job separating' });
    const busy = await stack.api.submit(variant(long, 202));
    await waitFor(async () => workerLines(stack, busy.hash, 'separating').length > 0, { timeoutMs: 60_000, what: 'second long job separating' });
    const queued = [busy, await stack.api.submit(variant(short, 203)), await stack.api.submit(variant(short, 204))];
    expect((await stack.api.job(queued[2]!.hash)).state).toBe('queued');

    await redis.stop();
    const downAt = Date.now();
    const mp3 = variant(short, 205);
    const latencies: Record<string, number[]> = {};
    for (let round = 0; round < 5; round++) {
      // Each a 503 with its JSON {error, detail} (a body not JSON would be error "http_503").
      const answers = {
        'POST /apiv1/separate': [await refusal((o) => stack.api.submit(mp3, o)), 'unavailable'],
        'GET /apiv1/queue': [await refusal((o) => stack.api.queue(o)), 'unavailable'],
        'GET /apiv1/jobs/:hash': [await refusal((o) => stack.api.job(running.hash, o)), 'unavailable'],
        'GET /readyz': [await refusal((o) => stack.api.ready(o)), 'not_ready'],
      } as const;
      for (const [name, [a, error]] of Object.entries(answers)) {
        expect(a.err, name).toMatchObject({ status: 503, error, detail: expect.any(String) });
        expect(a.ms, name).toBeLessThan(2000);
        (latencies[name] ??= []).push(Math.round(a.ms));
      }
      // the process is alive, only its backend is not
      expect(await stack.api.health({ timeoutMs: 10_000 })).toEqual({ status: 'ok' });
      await sleep(500);
    }
    figures.latencyMsDuringOutage = Object.fromEntries(Object.entries(latencies).map(([k, v]) => [k, { max: Math.max(...v), median: v.sort((a, b) => a - b)[2] }]));
    expect(stack.children.get('rest')!.exitCode).toBeNull();
    for (const w of workers) expect(w.exitCode).toBeNull();
    // Outlast the heartbeat TTL twice over: on restart no worker has a live heartbeat key.
    await sleep(Math.max(0, 2 * TTL_SEC * 1000 + 500 - (Date.now() - downAt)));
    figures.outageSec = (Date.now() - downAt) / 1000;

    const restartedAt = Date.now();
    await redis.start();
    await waitFor(() => stack.api.ready().catch(() => null), { timeoutMs: 30_000, what: 'rest ready again' });
    figures.restReadyAfterRestartMs = Date.now() - restartedAt;

    const all = [running, ...queued];
    const finished = await Promise.all(all.map((s) => waitJob(stack.api, s.hash, (j) => j.state === 'done' || j.state === 'failed', 120_000, 'job finished after the outage')));
    figures.allDoneAfterRestartMs = Date.now() - restartedAt;
    const s3 = s3Client(stack.env);
    for (const [i, job] of finished.entries()) {
      expect(job.state).toBe('done');
      // No running job was taken for abandoned when Redis came back with every heartbeat expired.
      expect(job.attempts).toBe(1);
      expect(workerLines(stack, all[i]!.hash, 'job done')).toHaveLength(1);
      expect((await outputObjects(s3, all[i]!.hash)).map((o) => o.name)).toEqual(stemNames(all[i]!.hash));
    }
    // Queued state survived the restart (append-only file): nothing re-enqueued, nothing lost.
    expect((await stack.api.queue()).queue).toEqual([]);
    // And rest takes new work again.
    expect((await stack.api.submit(variant(short, 206))).result).toBe('enqueued');
  }, 300_000);
});
