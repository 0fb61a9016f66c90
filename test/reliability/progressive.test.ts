import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { Queue, createObjectStore, loadConfig, makeKeys, parseJobRecord, songhash, streamToBuffer, type JobRecord, type ObjectStore } from '@msaas/common';
import { readWav24 } from '@msaas/common/audio-encode/index';
import { printLinesOnFailure, startStack, type Stack } from '../helpers/stack.ts';
import { standinModelPath } from '../helpers/standin-model.ts';
import { exited } from '../helpers/processes.ts';
import { REDIS_URL, waitFor } from '../helpers/env.ts';
import { report, sleep, waitJob, workerLines } from './support.ts';
import { readPiece } from '../../worker/src/pieces.ts';
import { sineWav } from './sine-wav.ts';

/**
 * Progressive pieces (issue 21) through the real services with the stand-in model: one piece per
 * chunk in the store before the record names it, readyFrames advancing per chunk, pieces that join
 * without a seam into the finished stem, a killed worker's retry re-publishing the same samples, a
 * song deleted while it runs, and the pieces' cleanup after the grace.
 */
const STRIDE = 257_985;
const GRACE_SEC = 3;
let stack: Stack;
printLinesOnFailure(() => stack?.lines);
let store: ObjectStore;
let sub: Redis;
let queue: Queue;
/** The job record as the worker wrote it. */
const record = async (hash: string): Promise<JobRecord> => (await queue.getJob(hash))!;
const workers = new Map<string, ChildProcess>();
let workerSeq = 0;
const figures: Record<string, unknown> = {};

async function spawnWorker(): Promise<string> {
  const id = `prog-${++workerSeq}-${stack.prefix.split(':')[2]}`;
  workers.set(id, await stack.addWorker({ WORKER_ID: id, MODEL_PATH: standinModelPath() }));
  return id;
}

/** Every version of the job record seen right after one of its events (the record is read on each). */
function watch(hash: string): { seen: JobRecord[]; events: () => number; stop: () => void } {
  const seen: JobRecord[] = [];
  let events = 0;
  let reading = Promise.resolve();
  const reader = new Redis(REDIS_URL);
  const keys = makeKeys(stack.prefix);
  const onMessage = (_channel: string, message: string): void => {
    if (message !== hash) return;
    events++;
    reading = reading.then(async () => {
      const job = parseJobRecord(hash, await reader.hgetall(keys.job(hash)));
      if (job) seen.push(job);
    });
  };
  sub.on('message', onMessage);
  return { seen, events: () => events, stop: () => (sub.off('message', onMessage), void reading.then(() => reader.disconnect())) };
}

async function pieces(hash: string): Promise<Buffer[]> {
  const seqs = await store.listPieces(hash);
  return Promise.all(seqs.map(async (s) => streamToBuffer(await store.getPiece(hash, s))));
}

function nonDecreasing(values: number[]): boolean {
  return values.every((v, i) => i === 0 || v >= values[i - 1]!);
}

beforeAll(async () => {
  stack = await startStack({
    worker: false,
    env: {
      HEARTBEAT_TTL_SEC: '3',
      REAP_INTERVAL_SEC: '0.5',
      MAX_ATTEMPTS: '3',
      RATE_LIMIT_PER_MIN: '1000000',
      RETENTION_SWEEP_SEC: '0.5',
      LIVE_PIECES_GRACE_SEC: String(GRACE_SEC),
    },
  });
  const env = stack.env;
  store = createObjectStore(
    { endPoint: env.MINIO_ENDPOINT!, port: Number(env.MINIO_PORT), useSSL: false, accessKey: env.MINIO_ACCESS_KEY!, secretKey: env.MINIO_SECRET_KEY!, region: 'us-east-1' },
    loadConfig({}, {}),
  );
  sub = new Redis(REDIS_URL);
  queue = new Queue(new Redis(REDIS_URL), makeKeys(stack.prefix));
  await sub.subscribe(makeKeys(stack.prefix).events);
  await Promise.all([spawnWorker(), spawnWorker()]);
}, 180_000);

afterAll(async () => {
  sub?.disconnect();
  queue?.redis.disconnect();
  await stack?.stop();
  report('progressive', figures, stack?.lines);
}, 90_000);

describe('progressive pieces (stand-in model, real worker processes)', () => {
  it('one piece per chunk, readyFrames advancing per chunk; the pieces join without a seam into the finished WAV stems; gone after the grace', async () => {
    const seconds = 31;
    const wav = sineWav(seconds, 7);
    const hash = songhash(wav);
    const w = watch(hash);
    await stack.api.upload(wav, { filename: 'sine.wav', format: 'wav' });
    const done = await waitJob(stack.api, hash, (j) => j.state === 'done', 120_000, 'sine song done');
    const doneAt = Date.now();
    const stored = await pieces(hash); // at once: within the grace, they are all still there
    await sleep(300);
    w.stop();
    const total = seconds * 44100;
    const expectedEnds = [1, 2, 3, 4, 5].map((k) => k * STRIDE).concat(total);
    expect(await record(hash)).toMatchObject({ readyFrames: total, totalFrames: total, pieceEnds: expectedEnds });
    expect(done.state).toBe('done');

    // Per chunk: the record named one more piece each time, readyFrames never went down, an event each.
    const running = w.seen.filter((j) => j.state === 'processing');
    const ready = running.map((j) => j.readyFrames);
    expect(nonDecreasing(ready)).toBe(true);
    const distinct = [...new Set(ready.filter((r) => r > 0))];
    expect(distinct.length).toBeGreaterThanOrEqual(4);
    for (const j of running) {
      expect(j.readyFrames).toBe(j.pieceEnds.at(-1) ?? 0);
      expect(expectedEnds.slice(0, j.pieceEnds.length)).toEqual(j.pieceEnds);
    }
    expect(w.events()).toBeGreaterThanOrEqual(expectedEnds.length);

    // The pieces: 32 bytes a frame, and their concatenation is the finished stem (24-bit WAV) at ≥ 90 dB, with no seam.
    expect(stored.map((b) => b.length / 32)).toEqual(expectedEnds.map((e, i) => e - (expectedEnds[i - 1] ?? 0)));
    const snrs: number[] = [];
    let worstSeam = 0;
    let worstInside = 0;
    for (const [s, stem] of (['drums', 'bass', 'other', 'vocals'] as const).entries()) {
      const finished = readWav24((await stack.api.stem(hash, stem, { format: 'wav' })).bytes);
      for (let c = 0; c < 2; c++) {
        const joined = new Float32Array(total);
        let at = 0;
        for (const b of stored) {
          const ch = readPiece(b)[s]![c]!;
          joined.set(ch, at);
          at += ch.length;
        }
        const ref = finished.channels[c]!;
        expect(ref.length).toBe(total);
        let sig = 0;
        let err = 0;
        for (let i = 0; i < total; i++) {
          const r = ref[i]! / 8_388_608;
          sig += r * r;
          err += (joined[i]! - r) ** 2;
        }
        snrs.push(10 * Math.log10(sig / err));
        // A seam would show as a step at a piece boundary larger than any step of the sine inside a piece.
        for (let i = 1; i < total; i++) {
          const step = Math.abs(joined[i]! - joined[i - 1]!);
          if (expectedEnds.includes(i)) worstSeam = Math.max(worstSeam, step);
          else worstInside = Math.max(worstInside, step);
        }
      }
    }
    expect(Math.min(...snrs)).toBeGreaterThanOrEqual(90);
    expect(worstSeam).toBeLessThanOrEqual(worstInside * 1.001);

    // Cleanup: the sweeper removes them once the grace has passed.
    await waitFor(async () => (await store.listPieces(hash)).length === 0, { timeoutMs: 30_000, intervalMs: 200, what: 'pieces removed after the grace' });
    const goneAfterMs = Date.now() - doneAt;
    expect(goneAfterMs).toBeGreaterThanOrEqual(GRACE_SEC * 1000 - 1000);
    Object.assign(figures, { pieces: stored.length, minSnrDb: Number(Math.min(...snrs).toFixed(1)), worstSeam, worstInside, piecesGoneAfterDoneMs: goneAfterMs });
  }, 180_000);

  it('a worker killed mid-song: the retried run re-publishes identical pieces and readyFrames never decreases', async () => {
    const seconds = 64;
    const wav = sineWav(seconds, 9);
    const hash = songhash(wav);
    const w = watch(hash);
    await stack.api.upload(wav, { filename: 'kill.wav' });
    const before = await waitFor(
      async () => {
        const j = await record(hash);
        return j.state === 'processing' && j.pieceEnds.length >= 2 ? j : null;
      },
      { timeoutMs: 120_000, intervalMs: 20, what: 'two pieces published' },
    );
    const victimId = before.worker!;
    const victim = workers.get(victimId)!;
    victim.kill('SIGKILL');
    await exited(victim);
    workers.delete(victimId);
    const early = await pieces(hash);
    const replacement = spawnWorker();
    const done = await waitJob(stack.api, hash, (j) => j.state === 'done' || j.state === 'failed', 180_000, 'job done after the kill');
    await replacement;
    await sleep(300);
    w.stop();
    expect(done).toMatchObject({ state: 'done', attempts: 2 });
    const after = await pieces(hash);
    const total = seconds * 44100;
    expect(after.reduce((n, b) => n + b.length / 32, 0)).toBe(total);
    // The pieces a listener could have fetched before the kill are the same bytes after the retry.
    for (const [i, b] of early.entries()) expect(Buffer.compare(b, after[i]!), `piece ${i}`).toBe(0);
    const ready = w.seen.map((j) => j.readyFrames);
    expect(nonDecreasing(ready)).toBe(true);
    expect(w.seen.some((j) => j.attempts === 2 && j.state === 'processing')).toBe(true);
    const final = await record(hash);
    expect(final.readyFrames).toBe(total);
    expect(final.pieceEnds.at(-1)).toBe(total);
    figures.killed = { piecesBeforeKill: early.length, observations: ready.length };
  }, 300_000);

  it('a song deleted while it runs: the worker stops, the record is not re-created, its pieces go', async () => {
    const wav = sineWav(64, 13);
    const hash = songhash(wav);
    await stack.api.upload(wav, { filename: 'deleted.wav' });
    await waitFor(async () => (await record(hash)).pieceEnds.length >= 1, { timeoutMs: 120_000, intervalMs: 20, what: 'a piece published' });
    const deletedAt = Date.now();
    await stack.api.deleteSong(hash);
    await waitFor(async () => workerLines(stack, hash, 'job stopped').length > 0, { timeoutMs: 30_000, what: 'the worker to stop the deleted job' });
    const stoppedMs = Date.now() - deletedAt;
    const redis = new Redis(REDIS_URL);
    try {
      const key = makeKeys(stack.prefix).job(hash);
      expect(await redis.exists(key)).toBe(0);
      await sleep(1500);
      expect(await redis.exists(key)).toBe(0);
    } finally {
      redis.disconnect();
    }
    await waitFor(async () => (await store.listPieces(hash)).length === 0, { timeoutMs: 30_000, intervalMs: 200, what: 'pieces of the deleted song removed' });
    expect(workerLines(stack, hash, 'job done')).toHaveLength(0);
    figures.deleted = { workerStoppedMs: stoppedMs };
  }, 180_000);
});
