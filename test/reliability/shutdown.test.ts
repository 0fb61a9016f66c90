import http from 'node:http';
import net from 'node:net';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { makeKeys, songhash } from '@msaas/common';
import { printLinesOnFailure, startStack, type Stack } from '../helpers/stack.ts';
import { standinModelPath } from '../helpers/standin-model.ts';
import { startS3Proxy, type S3Proxy } from '../helpers/s3-proxy.ts';
import { exited } from '../helpers/processes.ts';
import { REDIS_URL, waitFor } from '../helpers/env.ts';
import { clip, report, sleep, variant, waitJob, workerLines } from './support.ts';

/**
 * Graceful shutdown: SIGTERM to a worker mid-job → it finishes within the grace period or hands
 * the job back to the front of the queue, and exits 0; SIGTERM to rest → the upload in flight
 * completes, new connections are refused, exit 0.
 */
let stack: Stack;
printLinesOnFailure(() => stack?.lines);
let short: Buffer;
let proxy: S3Proxy;
let seq = 100;
const figures: Record<string, unknown> = {};

const spawnWorker = (id: string, graceSec: number, extra: Record<string, string> = {}): Promise<ChildProcess> =>
  stack.addWorker({ WORKER_ID: `${id}-${stack.prefix.split(':')[2]}`, MODEL_PATH: standinModelPath(), SHUTDOWN_GRACE_SEC: String(graceSec), ...extra });

async function waiting(): Promise<string[]> {
  return (await stack.api.queue()).queue;
}

beforeAll(async () => {
  short = await clip(4);
  stack = await startStack({ worker: false, env: { HEARTBEAT_TTL_SEC: '10', REAP_INTERVAL_SEC: '1', RATE_LIMIT_PER_MIN: '1000000' } });
  proxy = await startS3Proxy({ port: Number(stack.env.MINIO_PORT) });
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  await proxy?.close();
  report('shutdown', figures, stack?.lines);
}, 90_000);

describe('SIGTERM to a worker mid-job', () => {
  it('with time enough in the grace period: finishes the job, claims no other, exits 0', async () => {
    const worker = await spawnWorker('grace-long', 60);
    const first = await stack.api.submit(variant(short, ++seq));
    await waitFor(async () => workerLines(stack, first.hash, 'separating').length > 0, { timeoutMs: 30_000, what: 'separating' });
    const next = await stack.api.submit(variant(short, ++seq));
    const t0 = Date.now();
    worker.kill('SIGTERM');
    const { code } = await exited(worker);
    figures.finishWithinGraceMs = Date.now() - t0;
    expect(code).toBe(0);
    expect(await stack.api.job(first.hash)).toMatchObject({ state: 'done', attempts: 1 });
    expect(await stack.api.job(next.hash)).toMatchObject({ state: 'queued', attempts: 0 });
    expect(await waiting()).toEqual([next.hash]);
  }, 120_000);

  it('when the grace period runs out (a download slower than the grace): hands the job back to the front of the queue, attempt not counted, exits 0', async () => {
    // The previous test left one job waiting; this worker takes it first.
    const worker = await spawnWorker('grace-short', 1, { MINIO_PORT: String(proxy.port) });
    const leftover = (await waiting())[0];
    if (leftover) await waitJob(stack.api, leftover, (j) => j.state === 'done', 60_000, 'left-over job done');
    const mp3 = variant(short, ++seq);
    const stall = proxy.stallOnce({ method: 'GET', path: new RegExp(`^/queue/${songhash(mp3)}\\.mp3`), afterBytes: 16 * 1024 });
    const slow = await stack.api.submit(mp3);
    await stall.hit;
    const behind = [await stack.api.submit(variant(short, ++seq)), await stack.api.submit(variant(short, ++seq))];
    const t0 = Date.now();
    worker.kill('SIGTERM');
    await sleep(2500); // the 1 s grace runs out while the download is still stalled
    stall.release();
    const { code } = await exited(worker);
    figures.handBackExitMs = Date.now() - t0;
    expect(code).toBe(0);
    expect(await stack.api.job(slow.hash)).toMatchObject({ state: 'queued', attempts: 0, progress: 0 });
    expect(await waiting()).toEqual([slow.hash, behind[0]!.hash, behind[1]!.hash]);
    expect(workerLines(stack, slow.hash, 'handed back to the queue')).toHaveLength(1);

    // The next worker runs the handed-back job first, as its first attempt.
    const nextWorker = await spawnWorker('after', 2);
    const done = await waitJob(stack.api, slow.hash, (j) => j.state === 'done', 90_000, 'handed-back job done');
    expect(done.attempts).toBe(1);
    const others = await Promise.all(behind.map((b) => stack.api.job(b.hash)));
    for (const o of others) expect(o.startedAt === null || o.startedAt >= done.startedAt!).toBe(true);
    for (const b of behind) await waitJob(stack.api, b.hash, (j) => j.state === 'done', 90_000, 'job behind done');
    nextWorker.kill('SIGTERM');
    expect((await exited(nextWorker)).code).toBe(0);
  }, 240_000);

  it('when the grace period runs out during the separation itself: stops at the next chunk, hands the job back, exits 0', async () => {
    const worker = await spawnWorker('grace-separating', 1);
    const long = variant(await clip(30), ++seq); // 7 chunks: seconds of DSP even with the stand-in model
    const { hash } = await stack.api.submit(long);
    await waitJob(stack.api, hash, (j) => j.state === 'processing' && j.progress > 0, 60_000, 'job separating');
    const t0 = Date.now();
    worker.kill('SIGTERM');
    const { code } = await exited(worker);
    figures.handBackWhileSeparatingExitMs = Date.now() - t0;
    expect(code).toBe(0);
    expect(await stack.api.job(hash)).toMatchObject({ state: 'queued', attempts: 0, progress: 0 });
    expect(await waiting()).toEqual([hash]);
    expect(workerLines(stack, hash, 'handed back to the queue')).toHaveLength(1);
    // 1 s of grace, then the chunk in flight; the engine no longer holds the thread for seconds.
    expect(figures.handBackWhileSeparatingExitMs).toBeLessThan(15_000);
    const nextWorker = await spawnWorker('after-separating', 2);
    expect((await waitJob(stack.api, hash, (j) => j.state === 'done', 90_000, 'handed-back job done')).attempts).toBe(1);
    nextWorker.kill('SIGTERM');
    expect((await exited(nextWorker)).code).toBe(0);
  }, 240_000);
});

describe('SIGTERM to rest', () => {
  it('lets the slow upload in flight finish with 200, refuses new connections, exits 0', async () => {
    const rest = stack.children.get('rest')!;
    const mp3 = variant(short, ++seq);
    const body = Buffer.from(JSON.stringify({ mp3: mp3.toString('base64') }));
    const pieces = 10;
    const pieceLen = Math.ceil(body.length / pieces);

    const response = new Promise<{ status: number; body: string; at: number }>((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port: stack.port, method: 'POST', path: '/apiv1/separate', headers: { 'Content-Type': 'application/json', 'Content-Length': body.length } },
        (res) => {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, at: Date.now() }));
        },
      );
      req.on('error', reject);
      void (async () => {
        for (let i = 0; i < pieces; i++) {
          req.write(body.subarray(i * pieceLen, (i + 1) * pieceLen));
          if (i === 0) {
            await sleep(300);
            rest.kill('SIGTERM');
            await sleep(500);
            // While the upload is still streaming, the listening socket is already closed.
            const refused = await new Promise<string>((r) => {
              const s = net.connect(stack.port, '127.0.0.1');
              s.once('connect', () => {
                s.destroy();
                r('connected');
              });
              s.once('error', (e: NodeJS.ErrnoException) => r(e.code ?? e.message));
            });
            figures.newConnectionDuringShutdown = refused;
          }
          await sleep(250);
        }
        req.end();
      })();
    });
    const t0 = Date.now();
    const res = await response;
    figures.slowUploadMs = res.at - t0;
    expect(figures.newConnectionDuringShutdown).toBe('ECONNREFUSED');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ hash: songhash(mp3), result: 'enqueued' });
    const { code } = await exited(rest);
    figures.restExitAfterResponseMs = Date.now() - res.at;
    expect(code).toBe(0);
    // Not held open by the now idle keep-alive connection until keepAliveTimeout (5 s).
    expect(figures.restExitAfterResponseMs).toBeLessThan(2000);

    // The upload is recorded: the job exists in Redis and waits for a worker.
    const redis = new Redis(REDIS_URL);
    try {
      expect(await redis.hget(makeKeys(stack.prefix).job(songhash(mp3)), 'state')).toBe('queued');
    } finally {
      redis.disconnect();
    }
  }, 60_000);
});
