import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { IMPLICIT_TENANT, Queue, TRACKS, createObjectStore, createRedis, makeKeys, songhash, type Config } from '@msaas/common';
import { buildWorker } from '../src/bootstrap.ts';
import type { Separator } from '../src/job.ts';
import type { Worker } from '../src/worker.ts';
import { deletePrefix, startTestStore, testConfig, uniquePrefix, waitFor, type TestStore } from '../../test/helpers/env.ts';

/**
 * The job loop with a stand-in separator (stems = tagged copies of the input), against real Redis
 * and a real S3-compatible server; the real model runs in the end-to-end test.
 */
class BadAudio extends Error {}
const standIn = (delayMs = 50): Separator => ({
  async separateToFiles(upload, output, opts) {
    if (upload[0] === 0x00) throw new BadAudio('decodes to nothing');
    if (upload[0] === 0x01) throw new Error('decoder crashed');
    for (let i = 1; i <= 4; i++) {
      await new Promise((r) => setTimeout(r, delayMs));
      if (opts?.signal?.aborted) throw new Error('aborted');
      opts?.onProgress?.(i / 4);
    }
    return { files: output.stems.flatMap((stem) => output.formats.map((format) => ({ stem, format, bytes: Buffer.concat([Buffer.from(stem), upload]) }))) };
  },
});

let store: TestStore;
let prefix: string;
let config: Config;
let queue: Queue;
let callbackServer: http.Server;
const callbacks: { body: unknown; headers: http.IncomingHttpHeaders }[] = [];
let callbackUrl: string;
const workers: { worker: Worker; close(): void }[] = [];

function startWorker(id: string, separator: Separator = standIn()): Worker {
  const w = buildWorker({ ...config, WORKER_ID: id }, store.endpoint, separator, (e) => e instanceof BadAudio, { logger: pino({ level: 'silent' }) });
  workers.push(w);
  return w.worker;
}

async function submit(bytes: Buffer, callback?: { url: string; data: unknown }): Promise<string> {
  const hash = songhash(bytes);
  await createObjectStore(store.endpoint, config).putUpload(hash, bytes);
  await queue.submit({ hash, sizeBytes: bytes.length, callback: callback ?? null });
  return hash;
}

beforeAll(async () => {
  store = await startTestStore();
  prefix = uniquePrefix('loop');
  config = testConfig(prefix, { CALLBACK_ALLOW_PRIVATE: 'true', MAX_ATTEMPTS: '2', CALLBACK_RETRIES: '1' });
  await createObjectStore(store.endpoint, config).ensureBuckets();
  queue = new Queue(createRedis(config.REDIS_URL, 'worker'), makeKeys(prefix));
  callbackServer = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      callbacks.push({ body: JSON.parse(body), headers: req.headers });
      res.end('ok');
    });
  });
  await new Promise<void>((r) => callbackServer.listen(0, '127.0.0.1', r));
  callbackUrl = `http://127.0.0.1:${(callbackServer.address() as { port: number }).port}/done`;
});

afterAll(async () => {
  for (const w of workers) {
    await w.worker.stop(1000);
    w.close();
  }
  callbackServer.close();
  queue.redis.disconnect();
  await store.close();
  await deletePrefix(prefix);
});

describe('worker job loop', () => {
  it('claims, separates with progress, uploads four stems, marks done and fires the callback', async () => {
    const worker = startWorker('loop-a');
    await worker.start();
    const mp3 = Buffer.from('ID3-fake-song-bytes-1');
    const hash = await submit(mp3, { url: callbackUrl, data: { mine: 'to be returned' } });
    const { job, claim } = await waitFor(async () => {
      const c = await queue.getClaimedJob(hash, IMPLICIT_TENANT.id);
      return c?.job.state === 'done' && c.claim.callbackStatus ? c : null;
    }, { timeoutMs: 10_000, what: 'job done' });
    expect(job).toMatchObject({ state: 'done', progress: 1, attempts: 1, stems: [...TRACKS] });
    expect(claim.callbackStatus).toMatch(/^delivered: HTTP 200/);
    const objects = createObjectStore(store.endpoint, config);
    for (const t of TRACKS) {
      const info = await objects.statStem(hash, t);
      expect(info?.contentType).toBe('audio/mpeg');
    }
    expect(callbacks).toHaveLength(1);
    expect(callbacks[0]!.body).toEqual({ mine: 'to be returned' });
    expect(callbacks[0]!.headers['x-msaas-songhash']).toBe(hash);
    expect(await queue.length()).toBe(0);
    expect(await queue.held('loop-a')).toEqual([]);
    // the consumed upload leaves the queue bucket
    await waitFor(async () => !(await objects.hasUpload(hash)), { timeoutMs: 5000, what: 'upload removed' });
  });

  it('fails bad audio with a readable reason without retrying, and keeps serving', async () => {
    const bad = await submit(Buffer.from([0x00, 1, 2, 3]));
    const good = await submit(Buffer.from('ID3-fake-song-bytes-2'));
    await waitFor(async () => (await queue.getJob(good))?.state === 'done', { timeoutMs: 10_000, what: 'good job done' });
    expect(await queue.getJob(bad)).toMatchObject({ state: 'failed', attempts: 1, error: 'bad audio: decodes to nothing' });
    expect(await queue.dead()).toContain(bad);
    expect(await createObjectStore(store.endpoint, config).hasUpload(bad)).toBe(true); // kept for inspection
  });

  it('retries a crashing job up to MAX_ATTEMPTS, then moves it to dead', async () => {
    const poison = await submit(Buffer.from([0x01, 9, 9]));
    const job = await waitFor(async () => {
      const j = await queue.getJob(poison);
      return j?.state === 'failed' ? j : null;
    }, { timeoutMs: 10_000, what: 'poison job failed' });
    expect(job.attempts).toBe(2);
    expect(job.error).toMatch(/decoder crashed/);
    expect(await queue.dead()).toContain(poison);
  });

  it('stop() during a job hands it back to the front of the queue and another worker finishes it', async () => {
    const slow = startWorker('loop-slow', standIn(400));
    await workers[0]!.worker.stop(100);
    await slow.start();
    const hash = await submit(Buffer.from('ID3-fake-song-bytes-3'));
    await waitFor(async () => (await queue.getJob(hash))?.state === 'processing', { timeoutMs: 5000, what: 'processing' });
    await slow.stop(50);
    const handedBack = await queue.getJob(hash);
    expect(handedBack).toMatchObject({ state: 'queued', attempts: 0 });
    expect(await queue.waiting()).toEqual([hash]);
    const next = startWorker('loop-b');
    await next.start();
    await waitFor(async () => (await queue.getJob(hash))?.state === 'done', { timeoutMs: 10_000, what: 'done by the next worker' });
    expect((await queue.getJob(hash))!.attempts).toBe(1);
  });
});
