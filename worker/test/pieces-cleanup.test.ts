import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Queue, createObjectStore, createRedis, makeKeys, songhash, type Config, type ObjectStore } from '@msaas/common';
import { buildWorker } from '../src/bootstrap.ts';
import type { Separator } from '../src/job.ts';
import type { Worker } from '../src/worker.ts';
import { createEngine, type DetailedEngine } from '../src/separation/index.ts';
import { RetentionSweeper, sweepLivePieces } from '../../rest/src/retention.ts';
import { deletePrefix, startTestStore, testConfig, uniquePrefix, waitFor, type TestStore } from '../../test/helpers/env.ts';
import { standinModelPath } from '../../test/helpers/standin-model.ts';
import { sineWav } from '../../test/reliability/sine-wav.ts';

/**
 * The pieces of a failed job, and the sweeps that remove pieces: after the grace of a done or
 * failed song, with the record (deleted song), and with the song's retention. A worker in this
 * process with the real engine on the stand-in model, real Redis and a real S3 server.
 */
const logger = pino({ level: 'silent' });
let s3: TestStore;
let prefix: string;
let config: Config;
let queue: Queue;
let store: ObjectStore;
let engine: DetailedEngine;
const workers: { worker: Worker; close(): void }[] = [];

class DiskFull extends Error {}

function startWorker(id: string, separator: Separator): Worker {
  const w = buildWorker({ ...config, WORKER_ID: id }, s3.endpoint, separator, () => false, { logger });
  workers.push(w);
  return w.worker;
}

async function submit(bytes: Buffer): Promise<string> {
  const hash = songhash(bytes);
  await store.putUpload(hash, bytes);
  await queue.submit({ hash, sizeBytes: bytes.length });
  return hash;
}

beforeAll(async () => {
  s3 = await startTestStore();
  prefix = uniquePrefix('pieces-cleanup');
  config = testConfig(prefix, { MAX_ATTEMPTS: '1', RETENTION_DAYS: String(3 / 86_400) });
  store = createObjectStore(s3.endpoint, config);
  await store.ensureBuckets();
  queue = new Queue(createRedis(config.REDIS_URL, 'worker'), makeKeys(prefix), { retentionSec: 3 });
  engine = await createEngine({ modelPath: standinModelPath(), graph: 'original', threads: 1 });
  const failing: Separator = {
    separateToFiles: () => Promise.reject(new Error('not used')),
    async separateToSinks(bytes, output, open, opts) {
      await engine.separateToSinks(bytes, output, open, opts);
      throw new DiskFull('the encoder ran out of disk');
    },
  };
  await startWorker('cleanup-failing', failing).start();
}, 120_000);

afterAll(async () => {
  for (const w of workers) {
    await w.worker.stop(1000);
    w.close();
  }
  await engine?.close();
  queue?.redis.disconnect();
  await s3?.close();
  await deletePrefix(prefix);
});

describe('pieces of a failed job and their cleanup', () => {
  it('a job that fails after separating keeps its pieces and readyFrames for the grace, then the sweep removes them', async () => {
    const hash = await submit(sineWav(13, 3));
    await waitFor(async () => ((await queue.getJob(hash))?.state === 'failed' ? true : null), { timeoutMs: 60_000, what: 'the job to fail' });
    const job = (await queue.getJob(hash))!;
    const total = 13 * 44100;
    expect(job).toMatchObject({ state: 'failed', readyFrames: total, totalFrames: total, pieceEnds: [257_985, 515_970, total] });
    expect(job.error).toMatch(/ran out of disk/);
    expect(await store.listPieces(hash)).toEqual([0, 1, 2]);
    // No stem object: the streamed uploads were given up, nothing completed under a stem's name.
    for (const stem of ['drums', 'bass', 'other', 'vocals'] as const) expect(await store.statStem(hash, stem)).toBeNull();

    const deps = { queue, store, logger, livePiecesGraceSec: 2 };
    const finishedMs = Date.parse(job.finishedAt!);
    expect(await sweepLivePieces(deps, finishedMs + 1000)).toBe(0);
    expect(await store.listPieces(hash)).toEqual([0, 1, 2]);
    expect(await sweepLivePieces(deps, finishedMs + 2500)).toBe(1);
    expect(await store.listPieces(hash)).toEqual([]);
  }, 90_000);

  it('pieces go with the record (a deleted song), while a running song keeps them', async () => {
    for (const w of workers) await w.worker.stop(1000); // from here on the test drives the queue itself
    const a = 'a'.repeat(64);
    const b = 'b'.repeat(64);
    await store.putPiece(a, 0, new Uint8Array(64));
    await store.putPiece(b, 0, new Uint8Array(64));
    await queue.submit({ hash: b, sizeBytes: 1 }); // queued: a song waiting or running keeps its pieces
    const deps = { queue, store, logger, livePiecesGraceSec: 0 };
    expect(await sweepLivePieces(deps)).toBe(1);
    expect(await store.listPieces(a)).toEqual([]);
    expect(await store.listPieces(b)).toEqual([0]);
    await queue.dropClaim(b, 'default');
    expect(await sweepLivePieces(deps)).toBe(1);
    expect(await store.listPieces(b)).toEqual([]);
  });

  it('the retention sweep removes a done song\'s pieces with its stems, whatever the grace', async () => {
    const hash = 'c'.repeat(64);
    await queue.submit({ hash, sizeBytes: 1 });
    const blocking = createRedis(config.REDIS_URL, 'worker');
    expect((await queue.claim(blocking, 'retention-test', 1))?.hash).toBe(hash);
    blocking.disconnect();
    await store.putPiece(hash, 0, new Uint8Array(64));
    expect(await queue.reportProgress('retention-test', hash, 0.5, { readyFrames: 2, totalFrames: 2, pieceEnds: [2] })).toBe('owned');
    expect((await queue.complete('retention-test', hash, 1)).outcome).toBe('done');
    const sweeper = new RetentionSweeper({ queue, store, logger, livePiecesGraceSec: 10_000 }, 500);
    await sweeper.sweep();
    expect(await store.listPieces(hash)).toEqual([0]); // within retention and grace
    await waitFor(async () => ((await queue.dueForExpiry(10)).includes(hash) ? true : null), { timeoutMs: 10_000, what: 'the song past its retention' });
    await sweeper.sweep();
    expect(await store.listPieces(hash)).toEqual([]);
    expect(await queue.getJob(hash)).toBeNull();
  }, 30_000);
});
