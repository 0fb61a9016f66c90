import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { printLinesOnFailure, startStack, type Stack } from '../helpers/stack.ts';
import { standinModelPath } from '../helpers/standin-model.ts';
import { ownRedis, type OwnedRedis } from '../helpers/processes.ts';
import { waitFor } from '../helpers/env.ts';
import { clip, getJob, outputObjects, report, s3Client, sleep, stemNames, submit, variant, waitJob, workerLines } from './support.ts';

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

async function timed(url: string, init?: RequestInit): Promise<{ status: number; body: { error?: string; detail?: string }; ms: number; type: string | null }> {
  const t0 = performance.now();
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  const body = (await res.json()) as { error?: string; detail?: string };
  return { status: res.status, body, ms: performance.now() - t0, type: res.headers.get('content-type') };
}

describe('Redis outage', () => {
  it('rest answers 503 JSON while Redis is down; after restart the worker reconnects and every job completes', async () => {
    const [short, long] = await Promise.all([clip(4), clip(12)]);
    const running = await submit(stack.url, variant(long, 201));
    await waitFor(async () => workerLines(stack, running.hash, 'separating').length > 0, { timeoutMs: 60_000, what: 'long job separating' });
    const busy = await submit(stack.url, variant(long, 202));
    await waitFor(async () => workerLines(stack, busy.hash, 'separating').length > 0, { timeoutMs: 60_000, what: 'second long job separating' });
    const queued = [busy, await submit(stack.url, variant(short, 203)), await submit(stack.url, variant(short, 204))];
    expect((await getJob(stack.url, queued[2]!.hash)).state).toBe('queued');

    await redis.stop();
    const downAt = Date.now();
    const mp3 = variant(short, 205).toString('base64');
    const latencies: Record<string, number[]> = {};
    for (let round = 0; round < 5; round++) {
      const answers = {
        'POST /apiv1/separate': await timed(`${stack.url}/apiv1/separate`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ mp3 }) }),
        'GET /apiv1/queue': await timed(`${stack.url}/apiv1/queue`),
        'GET /apiv1/jobs/:hash': await timed(`${stack.url}/apiv1/jobs/${running.hash}`),
        'GET /readyz': await timed(`${stack.url}/readyz`),
      };
      for (const [name, a] of Object.entries(answers)) {
        expect(a.status, name).toBe(503);
        expect(a.type, name).toMatch(/^application\/json/);
        expect(typeof a.body.error, name).toBe('string');
        expect(typeof a.body.detail, name).toBe('string');
        expect(a.ms, name).toBeLessThan(2000);
        (latencies[name] ??= []).push(Math.round(a.ms));
      }
      const health = await timed(`${stack.url}/healthz`);
      expect(health.status).toBe(200); // the process is alive, only its backend is not
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
    await waitFor(async () => (await fetch(`${stack.url}/readyz`)).status === 200, { timeoutMs: 30_000, what: 'rest ready again' });
    figures.restReadyAfterRestartMs = Date.now() - restartedAt;

    const all = [running, ...queued];
    const finished = await Promise.all(all.map((s) => waitJob(stack.url, s.hash, (j) => j.state === 'done' || j.state === 'failed', 120_000, 'job finished after the outage')));
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
    expect(((await (await fetch(`${stack.url}/apiv1/queue`)).json()) as { queue: string[] }).queue).toEqual([]);
    // And rest takes new work again.
    expect((await submit(stack.url, variant(short, 206))).status).toBe(200);
  }, 300_000);
});
