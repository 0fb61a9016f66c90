import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { ApiClient, TRACKS, makeKeys, songhash, type Stem } from '@msaas/common';
import { createEngine } from '../../worker/src/separation/index.ts';
import { printLinesOnFailure, startStack, type Stack } from '../helpers/stack.ts';
import { startS3Proxy, type S3Proxy } from '../helpers/s3-proxy.ts';
import { standinModelPath } from '../helpers/standin-model.ts';
import { exited } from '../helpers/processes.ts';
import { REDIS_URL, waitFor } from '../helpers/env.ts';
import { clip, outputObjects, report, s3Client, variant, waitJob, workerLines } from './support.ts';

/**
 * One song, many workers (issue 23) and cancel (issue 24 item 5), with real rest and worker
 * processes on the stand-in model, real Redis and the embedded S3 server. Songs over SPLIT_MIN_SEC=20
 * are split into ranges of ~2 chunks: a 40 s clip is 7 chunks, 4 ranges. Each split song's stems are
 * compared byte for byte with the same song separated whole in this process by the same engine
 * (same model, threads and encoders): the stitch is exact, so WAV and MP3 files are identical.
 */
const KEY_A = 'alice-key-ranges-0123456789';
const KEY_B = 'bob-key-ranges-0123456789ab';
const KEY_C = 'carol-key-ranges-0123456789';
const KEY_D = 'dave-key-ranges-0123456789a';
const TTL_SEC = 3;
let stack: Stack;
let proxy: S3Proxy;
let s3: ReturnType<typeof s3Client>;
let alice: ApiClient;
let bob: ApiClient;
let song: Buffer;
const workers = new Map<string, ChildProcess>();
let workerSeq = 0;
const figures: Record<string, unknown> = {};
/** Reference files of `song`'s audio separated whole, by "<stem>.<format>". */
const reference = new Map<string, Uint8Array>();
const WAV_STEMS: Stem[] = [...TRACKS, 'instrumental'];
printLinesOnFailure(() => stack?.lines);

async function spawnWorker(extra: Record<string, string> = {}): Promise<string> {
  const id = `ranges-${++workerSeq}-${stack.prefix.split(':')[2]}`;
  workers.set(id, await stack.addWorker({ WORKER_ID: id, MINIO_PORT: String(proxy.port), ...extra }));
  return id;
}

async function killWorker(id: string): Promise<void> {
  const child = workers.get(id)!;
  child.kill('SIGKILL');
  await exited(child);
  workers.delete(id);
}

async function rangeObjects(hash: string): Promise<string[]> {
  return (await outputObjects(s3, `ranges/${hash}/`)).map((o) => o.name);
}

async function expectSameFiles(api: ApiClient, hash: string, stems: readonly Stem[], format: 'wav' | 'mp3'): Promise<void> {
  for (const stem of stems) {
    const got = (await api.stem(hash, stem, { format })).bytes;
    const want = reference.get(`${stem}.${format}`)!;
    expect(got.length, `${stem}.${format} length`).toBe(want.length);
    expect(Buffer.compare(Buffer.from(got), Buffer.from(want)), `${stem}.${format} bytes`).toBe(0);
  }
}

beforeAll(async () => {
  song = await clip(40, 23);
  // the song run whole, in this process, by the engine the workers run
  const engine = await createEngine({ modelPath: standinModelPath() });
  try {
    for (const [formats, stems] of [
      [['wav'], WAV_STEMS],
      [['mp3'], TRACKS],
    ] as const) {
      const { files } = await engine.separateToFiles(song, { formats, stems });
      for (const f of files) reference.set(`${f.stem}.${f.format}`, f.bytes);
    }
  } finally {
    await engine.close();
  }
  stack = await startStack({
    worker: false,
    env: {
      MODEL_PATH: standinModelPath(),
      API_KEYS: `alice:${KEY_A},bob:${KEY_B},carol:${KEY_C},dave:${KEY_D}`,
      RATE_LIMIT_PER_MIN: '1000000',
      SUBMIT_RATE_LIMIT_PER_MIN: '1000000',
      SPLIT_MIN_SEC: '20',
      SPLIT_RANGE_CHUNKS: '2',
      HEARTBEAT_TTL_SEC: String(TTL_SEC),
      REAP_INTERVAL_SEC: '1',
      RETENTION_SWEEP_SEC: '1',
    },
  });
  proxy = await startS3Proxy({ port: Number(stack.env.MINIO_PORT) });
  s3 = s3Client(stack.env);
  alice = new ApiClient({ baseUrl: stack.url, apiKey: KEY_A });
  bob = new ApiClient({ baseUrl: stack.url, apiKey: KEY_B });
  for (let i = 0; i < 3; i++) await spawnWorker();
}, 300_000);

afterAll(async () => {
  for (const id of [...workers.keys()]) await killWorker(id).catch(() => undefined);
  await stack?.stop();
  await proxy?.close();
  report('ranges', figures, stack?.lines ?? []);
}, 60_000);

describe('one song over many workers', () => {
  it('a song split over 3 workers equals the song run whole (WAV and instrumental byte-identical), and its range outputs are gone after', async () => {
    const hash = songhash(song);
    const t0 = Date.now();
    expect((await alice.submit(song, { format: 'wav', stems: WAV_STEMS })).result).toBe('enqueued');
    const done = await waitJob(alice, hash, (j) => j.state === 'done', 120_000, 'split song done');
    figures.splitSongSec = (Date.now() - t0) / 1000;
    expect(done.ranges).toHaveLength(4);
    expect(done.ranges!.map((r) => r.state)).toEqual(['done', 'done', 'done', 'done']);
    expect(done.ranges![0]!.fromSec).toBe(0);
    expect(done.ranges!.at(-1)!.toSec).toBeCloseTo(40, 1);
    figures.rangeWorkers = new Set(done.ranges!.map((r) => r.worker)).size;
    expect(figures.rangeWorkers).toBeGreaterThanOrEqual(2);
    expect(done.readySec).toBeCloseTo(40, 1);
    await expectSameFiles(alice, hash, WAV_STEMS, 'wav');
    await waitFor(async () => (await rangeObjects(hash)).length === 0, { timeoutMs: 10_000, what: 'range outputs removed after done' });
    // the stems' encoding was spread: one unit per stem, each stitched and encoded once
    expect(workerLines(stack, hash, ' stitched in ')).toHaveLength(WAV_STEMS.length);
    expect(new Set(workerLines(stack, hash, 'encoding of').map((l) => /encoding of (\w+) claimed/.exec(l)?.[1]).filter(Boolean))).toEqual(new Set(WAV_STEMS));
    expect(workerLines(stack, hash, 'completing the song')).toHaveLength(1);
    // the units ran beside the ranges: at least one was claimed before the last range was done
    const firstUnit = stack.lines.findIndex((l) => l.line.includes(hash) && /encoding of \w+ claimed/.test(l.line));
    const lastRange = stack.lines.findIndex((l) => l.line.includes(hash) && l.line.includes('the last range'));
    expect(firstUnit).toBeGreaterThanOrEqual(0);
    expect(firstUnit).toBeLessThan(lastRange);
    // pieces cover a contiguous prefix of the ranges (the units may finish the song a moment before
    // the last ranges' pieces are listed: the finished stems serve from then on)
    expect(done.pieceEnds.length).toBeGreaterThanOrEqual(1);
    expect(done.pieceEnds.map((e) => Math.round((e / 44_100) * 10) / 10)).toEqual(done.ranges!.slice(0, done.pieceEnds.length).map((r) => Math.round(r.toSec * 10) / 10));
  }, 180_000);

  it('a worker killed mid-range: the range is retried elsewhere with its attempt counted, and the song comes out the same', async () => {
    const other = variant(song, 1); // the same audio as another song
    const hash = songhash(other);
    expect((await alice.submit(other)).result).toBe('enqueued');
    const running = await waitJob(alice, hash, (j) => (j.ranges ?? []).some((r) => r.state === 'processing'), 60_000, 'a range running');
    const victimRange = running.ranges!.findIndex((r) => r.state === 'processing');
    const victim = running.ranges![victimRange]!.worker!;
    await killWorker(victim);
    const killedAt = Date.now();
    void spawnWorker();
    const done = await waitJob(alice, hash, (j) => j.state === 'done', 120_000, 'song done after the kill');
    figures.killToDoneSec = (Date.now() - killedAt) / 1000;
    const range = done.ranges![victimRange]!;
    expect(range.attempts).toBe(2);
    expect(range.worker).not.toBe(victim);
    await expectSameFiles(alice, hash, TRACKS, 'mp3');
    await waitFor(async () => (await rangeObjects(hash)).length === 0, { timeoutMs: 10_000, what: 'range outputs removed after done' });
  }, 180_000);

  it('a worker stopped (SIGTERM, grace over) while its side slots encode hands its units back; another worker finishes the song the same', async () => {
    const redis = new Redis(REDIS_URL);
    const keys = makeKeys(stack.prefix);
    try {
      // a fourth worker with a 1 s grace; the units go to whichever side slots ask first, so try songs until it holds one
      const id = await spawnWorker({ SHUTDOWN_GRACE_SEC: '1' });
      let hash = '';
      for (let v = 7; v < 10 && !hash; v++) {
        const other = variant(song, v);
        const h = songhash(other);
        expect((await alice.submit(other)).result).toBe('enqueued');
        const held = await waitFor(
          async () => {
            const job = await alice.job(h);
            const units = (await redis.lrange(keys.processing(id), 0, -1)).filter((item) => item.startsWith(h) && Number(item.split('#')[1]) >= (job.ranges?.length ?? Infinity));
            return units.length > 0 || job.state === 'done' ? { units, done: job.state === 'done' } : null;
          },
          { timeoutMs: 60_000, intervalMs: 20, what: 'the song split, and a unit in the fourth worker or the song done' },
        );
        if (held.units.length > 0) hash = h;
      }
      expect(hash, 'the fourth worker took a unit of one of three songs').not.toBe('');
      const child = workers.get(id)!;
      child.kill('SIGTERM');
      await exited(child);
      workers.delete(id);
      expect(workerLines(stack, hash, 'handed back to the queue (shutdown)').filter((l) => /encoding of \w+ handed back/.test(l)).length).toBeGreaterThanOrEqual(1);
      const done = await waitJob(alice, hash, (j) => j.state === 'done', 120_000, 'song done after the stop');
      expect(done.state).toBe('done');
      await expectSameFiles(alice, hash, TRACKS, 'mp3');
    } finally {
      redis.disconnect();
    }
  }, 240_000);

  it('a range failing 3 times fails the song with its reason, and the range outputs go', async () => {
    const other = variant(song, 2);
    const hash = songhash(other);
    const refusal = proxy.refuse({ method: 'PUT', path: new RegExp(`^/output/ranges/${hash}/00001\\.f32`) });
    try {
      expect((await alice.submit(other)).result).toBe('enqueued');
      const failed = await waitJob(alice, hash, (j) => j.state === 'failed', 120_000, 'song failed');
      expect(failed.error).toMatch(/^range 2 of 4 \(11\.7 s to 23\.4 s\) failed after 3 attempts: .*Access Denied/);
      expect(failed.ranges![1]).toMatchObject({ attempts: 3 });
      expect(refusal.count()).toBe(3);
      figures.failedRangeError = failed.error;
    } finally {
      refusal.stop();
    }
    await waitFor(async () => (await rangeObjects(hash)).length === 0, { timeoutMs: 10_000, what: 'range outputs removed after the failure' });
  }, 180_000);

  it('the retention sweep removes range outputs no running song owns', async () => {
    const stray = 'f'.repeat(56);
    await s3.putObject('output', `ranges/${stray}/00000.f32`, Buffer.alloc(64));
    expect(await rangeObjects(stray)).toHaveLength(1);
    await waitFor(async () => (await rangeObjects(stray)).length === 0, { timeoutMs: 15_000, what: 'stray range outputs swept' });
  }, 30_000);
});

describe('cancel (DELETE of a song the caller alone claims)', () => {
  /**
   * Milliseconds from the DELETE's answer (the song is gone from Redis: the cancel has taken effect)
   * until every given worker logged that it stopped work on the song; the request's own time is
   * recorded apart (rest on a loaded machine).
   */
  async function stopLatency(hash: string, n: number, text: string, api: ApiClient): Promise<number> {
    const before = workerLines(stack, hash, text).length;
    const t0 = Date.now();
    await api.deleteSong(hash);
    const answered = Date.now();
    figures[`deleteRequestMs_${hash.slice(0, 6)}`] = answered - t0;
    await waitFor(async () => workerLines(stack, hash, text).length >= before + n, { timeoutMs: 10_000, intervalMs: 20, what: `${n} worker(s) logging "${text}"` });
    return Date.now() - answered;
  }

  it('stops every running range within 2 s and frees their workers', async () => {
    const other = variant(song, 3);
    const hash = songhash(other);
    expect((await alice.submit(other)).result).toBe('enqueued');
    const running = await waitJob(alice, hash, (j) => (j.ranges ?? []).filter((r) => r.state === 'processing').length >= 2, 60_000, 'two ranges running');
    const n = running.ranges!.filter((r) => r.state === 'processing').length;
    const ms = await stopLatency(hash, n, 'stopped', alice);
    figures.cancelRangesMs = ms;
    expect(ms).toBeLessThan(2000);
    const redis = new Redis(REDIS_URL);
    const keys = makeKeys(stack.prefix);
    try {
      expect((await redis.lrange(keys.toWorker, 0, -1)).filter((item) => item.startsWith(hash))).toEqual([]);
      expect((await redis.lrange(keys.toEncoder, 0, -1)).filter((item) => item.startsWith(hash))).toEqual([]);
      // the encoding units running beside the ranges (side slots) stop too: no worker holds anything of the song
      await waitFor(
        async () => {
          for (const id of workers.keys()) if ((await redis.lrange(keys.processing(id), 0, -1)).some((item) => item.startsWith(hash))) return false;
          return true;
        },
        { timeoutMs: 2000, intervalMs: 20, what: 'every range and encoding unit of the song out of the workers’ lists' },
      );
    } finally {
      redis.disconnect();
    }
    await waitFor(async () => (await rangeObjects(hash)).length === 0, { timeoutMs: 15_000, what: 'range outputs removed after the cancel' });
    // the workers are free: the next song runs
    const next = variant(song, 4);
    expect((await alice.submit(next)).result).toBe('enqueued');
    await waitJob(alice, songhash(next), (j) => j.state === 'done', 120_000, 'next song done');
  }, 240_000);

  it('stops a running song run whole within 2 s; with another claim it only drops the caller’s', async () => {
    const short = await clip(18, 29); // under SPLIT_MIN_SEC: run whole
    const hash = songhash(short);
    expect((await alice.submit(short)).result).toBe('enqueued');
    await waitJob(alice, hash, (j) => j.state === 'processing' && j.progress > 0, 60_000, 'song running');
    const ms = await stopLatency(hash, 1, 'job stopped', alice);
    figures.cancelWholeMs = ms;
    expect(ms).toBeLessThan(2000);

    const shared = variant(short, 1);
    const sharedHash = songhash(shared);
    expect((await alice.submit(shared)).result).toBe('enqueued');
    expect((await bob.submit(shared)).result).toBe('queued');
    await waitJob(alice, sharedHash, (j) => j.state === 'processing' && j.progress > 0, 60_000, 'shared song running');
    await alice.deleteSong(sharedHash);
    const done = await waitJob(bob, sharedHash, (j) => j.state === 'done', 60_000, 'the other tenant’s song done');
    expect(done.state).toBe('done');
    expect(workerLines(stack, sharedHash, 'job stopped')).toEqual([]);
  }, 180_000);
});

describe('fair share across tenants counts ranges', () => {
  it('two tenants’ long songs interleave range by range on one worker', async () => {
    // two tenants new to the queue (no tags of earlier songs), both songs waiting before the one worker starts
    const carol = new ApiClient({ baseUrl: stack.url, apiKey: KEY_C });
    const dave = new ApiClient({ baseUrl: stack.url, apiKey: KEY_D });
    for (const id of [...workers.keys()]) await killWorker(id);
    const a = variant(song, 5);
    const b = variant(song, 6);
    const [ha, hb] = [songhash(a), songhash(b)];
    expect((await carol.submit(a)).result).toBe('enqueued');
    expect((await dave.submit(b)).result).toBe('enqueued');
    await spawnWorker();
    await waitJob(carol, ha, (j) => j.state === 'done', 180_000, 'carol’s song');
    await waitJob(dave, hb, (j) => j.state === 'done', 180_000, 'dave’s song');
    // the one worker's claims, in its own log's order
    const claims = stack.lines
      .filter((l) => l.service === 'worker' && /range \d+ claimed/.test(l.line) && (l.line.includes(ha) || l.line.includes(hb)))
      .map((l) => `${l.line.includes(ha) ? 'A' : 'B'}${/range (\d+) claimed/.exec(l.line)![1]}`);
    figures.claimOrder = claims.join(' ');
    expect(claims).toEqual(['A1', 'B1', 'A2', 'B2', 'A3', 'B3', 'A4', 'B4']);
  }, 400_000);
});
