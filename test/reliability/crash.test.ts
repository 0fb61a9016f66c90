import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRACKS, songhash } from '@msaas/common';
import { decodeMp3 } from '../../worker/src/separation/index.ts';
import { printLinesOnFailure, startStack, type Stack } from '../helpers/stack.ts';
import { startS3Proxy, type S3Proxy, type Trap } from '../helpers/s3-proxy.ts';
import { standinModelPath } from '../helpers/standin-model.ts';
import { exited } from '../helpers/processes.ts';
import { waitFor } from '../helpers/env.ts';
import { clip, outputObjects, report, s3Client, sleep, stemNames, variant, waitJob, workerLines } from './support.ts';

/**
 * No job lost, none done twice in effect: a worker SIGKILLed mid-job at several points → another
 * worker takes the job after the heartbeat expires and finishes it; the four stems exist once,
 * under their names; the job's attempt count shows the retry.
 *
 * Workers reach the store through a proxy that can hold a chosen request, so each kill lands at
 * a known point (during the download, between stem uploads) instead of wherever a timer falls.
 */
// Short, so a kill is noticed quickly. The heartbeat beats from a thread of its own: seconds of
// synchronous DSP on the job loop's thread do not make a live worker look dead.
const TTL_SEC = 3;
let stack: Stack;
printLinesOnFailure(() => stack?.lines);
let proxy: S3Proxy;
let s3: ReturnType<typeof s3Client>;
let short: Buffer;
let long: Buffer;
const workers = new Map<string, ChildProcess>();
let workerSeq = 0;
let songSeq = 0;
const figures: Record<string, unknown>[] = [];

async function spawnWorker(extra: Record<string, string> = {}): Promise<string> {
  const id = `crash-${++workerSeq}-${stack.prefix.split(':')[2]}`;
  const child = await stack.addWorker({ WORKER_ID: id, MINIO_PORT: String(proxy.port), MODEL_PATH: standinModelPath(), ...extra });
  workers.set(id, child);
  return id;
}

const exactPath = (bucket: string, name: string): RegExp => new RegExp(`^/${bucket}/${name.replace(/[.]/g, '\\.')}(\\?|$)`);

/**
 * One kill trial: submit, wait for the kill point, SIGKILL the worker holding the job, let go of
 * any held request, and check the job's outcome.
 */
async function killTrial(opts: {
  name: string;
  mp3: Buffer;
  /** Arms traps for this song; returns what to await before killing and checks at the kill point. */
  arm: (hash: string) => { traps: Trap[]; killPoint: () => Promise<void>; atKill?: () => Promise<void> };
  clipSec: number;
  respawn?: boolean;
}): Promise<void> {
  const hash = songhash(opts.mp3);
  const { traps, killPoint, atKill } = opts.arm(hash);
  const t0 = Date.now();
  let victimId: string;
  try {
    expect((await stack.api.submit(opts.mp3)).result).toBe('enqueued');
    await killPoint();
    const before = await stack.api.job(hash);
    expect(before.state).toBe('processing');
    expect(before.attempts).toBe(1);
    victimId = before.worker!;
    await atKill?.();
  } catch (err) {
    // any failure before the kill: never leave a live worker stuck on a held request for the next trials
    for (const t of traps) t.release();
    throw err;
  }
  const victim = workers.get(victimId)!;
  const killedAt = Date.now();
  victim.kill('SIGKILL');
  expect((await exited(victim)).signal).toBe('SIGKILL');
  workers.delete(victimId);
  for (const t of traps) t.release(); // the next attempt passes freely
  const replacement = opts.respawn === false ? null : spawnWorker();

  const reclaimed = await waitJob(stack.api, hash, (j) => j.attempts === 2, 60_000, 'job claimed again');
  const reclaimedMs = Date.now() - killedAt;
  const done = await waitJob(stack.api, hash, (j) => j.state === 'done' || j.state === 'failed', 90_000, 'job finished');
  const recoveredMs = Date.now() - killedAt;
  expect(done).toMatchObject({ state: 'done', attempts: 2, progress: 1 });
  expect(done.worker).not.toBe(victimId);
  expect(reclaimed.worker).not.toBe(victimId);
  expect(Object.keys(done.stems).sort()).toEqual([...TRACKS].sort());

  // Exactly the four stems, under their names, each a whole MP3 of the clip's length.
  const objects = await outputObjects(s3, hash);
  expect(objects.map((o) => o.name)).toEqual(stemNames(hash));
  for (const o of objects) expect(o.size).toBeGreaterThan(1000);
  const decoded = await decodeMp3((await stack.api.stem(hash, 'vocals')).bytes);
  expect(Math.abs(decoded.durationSec - opts.clipSec)).toBeLessThan(0.2);
  // Done once in effect: one worker reported the job done, the queue holds no copy of it.
  expect(workerLines(stack, hash, 'job done')).toHaveLength(1);
  expect((await stack.api.queue()).queue).not.toContain(hash);

  figures.push({ trial: opts.name, reclaimedMs, recoveredMs, totalMs: Date.now() - t0 });
  await replacement;
}

beforeAll(async () => {
  [short, long] = await Promise.all([clip(4), clip(12)]);
  stack = await startStack({
    worker: false,
    env: { HEARTBEAT_TTL_SEC: String(TTL_SEC), REAP_INTERVAL_SEC: '0.5', MAX_ATTEMPTS: '3', LOG_LEVEL: 'info', RATE_LIMIT_PER_MIN: '1000000' },
  });
  proxy = await startS3Proxy({ port: Number(stack.env.MINIO_PORT) });
  s3 = s3Client(stack.env);
  await Promise.all([spawnWorker(), spawnWorker()]);
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  await proxy?.close();
  report('crash', { ttlSec: TTL_SEC, trials: figures }, stack?.lines);
}, 90_000);

describe('a worker killed mid-job (stand-in model)', () => {
  it('while the download request is in flight: the job is retried by another worker and done once', async () => {
    await killTrial({
      name: 'download requested',
      mp3: variant(short, ++songSeq),
      clipSec: 4.05,
      arm: (hash) => {
        const trap = proxy.holdOnce({ method: 'GET', path: exactPath('queue', `${hash}.mp3`) });
        return { traps: [trap], killPoint: () => trap.hit };
      },
    });
  }, 150_000);

  it('halfway through the download (32 kB received)', async () => {
    await killTrial({
      name: 'download half-way',
      mp3: variant(short, ++songSeq),
      clipSec: 4.05,
      arm: (hash) => {
        const trap = proxy.stallOnce({ method: 'GET', path: exactPath('queue', `${hash}.mp3`), afterBytes: 32 * 1024 });
        return { traps: [trap], killPoint: () => trap.hit };
      },
    });
  }, 150_000);

  it('during inference (a 12 s clip, 3 chunks: killed once the first chunk is reported, before any stem upload)', async () => {
    await killTrial({
      name: 'inference',
      mp3: variant(long, ++songSeq),
      clipSec: 12.04,
      arm: (hash) => {
        // Killed at the first progress report of the separation (chunk 1 of 3, below the 0.95 the
        // uploads start at), whatever this machine's speed; the guard proves no upload came first.
        const guard = proxy.holdOnce({ method: 'PUT', path: exactPath('output', `${hash}-drums.mp3`) });
        let guardHit = false;
        void guard.hit.then(() => (guardHit = true));
        return {
          traps: [guard],
          killPoint: async () => {
            await waitFor(async () => {
              const j = await stack.api.job(hash);
              return j.state === 'processing' && j.progress > 0 && j.progress < 0.95;
            }, { timeoutMs: 60_000, intervalMs: 10, what: 'the separation to report its first chunk' });
          },
          atKill: async () => {
            expect(guardHit).toBe(false);
            expect(await outputObjects(s3, hash)).toEqual([]);
          },
        };
      },
    });
  }, 150_000);

  for (const [k, track] of [[1, 'bass'], [2, 'other'], [3, 'vocals']] as const) {
    it(`between stem uploads (${k} of 4 stems uploaded)`, async () => {
      await killTrial({
        name: `after ${k} stem upload(s)`,
        mp3: variant(short, ++songSeq),
        clipSec: 4.05,
        arm: (hash) => {
          const trap = proxy.holdOnce({ method: 'PUT', path: exactPath('output', `${hash}-${track}.mp3`) });
          return {
            traps: [trap],
            killPoint: () => trap.hit,
            atKill: async () => {
              const names = (await outputObjects(s3, hash)).map((o) => o.name);
              expect(names).toEqual(TRACKS.slice(0, k).map((t) => `${hash}-${t}.mp3`).sort());
            },
          };
        },
        respawn: k !== 3, // the real-model trial below starts its own workers
      });
    }, 150_000);
  }
});

describe('a worker killed mid-job (real HTDemucs model)', () => {
  it('during inference: a second real worker finishes the job, attempts = 2', async () => {
    // Only real-model workers from here on.
    await Promise.all(
      [...workers.entries()].map(async ([id, child]) => {
        child.kill('SIGTERM');
        expect((await exited(child)).code).toBe(0);
        workers.delete(id);
      }),
    );
    const real = { MODEL_PATH: '' };
    await spawnWorker(real);
    const mp3 = variant(short, ++songSeq);
    const { hash } = await stack.api.submit(mp3);
    const guard = proxy.holdOnce({ method: 'PUT', path: exactPath('output', `${hash}-drums.mp3`) });
    let guardHit = false;
    void guard.hit.then(() => (guardHit = true));
    await waitFor(async () => workerLines(stack, hash, 'separating').length > 0, { timeoutMs: 60_000, what: 'real worker separating' });
    await sleep(2000); // well inside the ~10–20 s inference of the chunk
    const before = await stack.api.job(hash);
    expect(before).toMatchObject({ state: 'processing', attempts: 1 });
    expect(guardHit).toBe(false);
    const victimId = before.worker!;
    const victim = workers.get(victimId)!;
    const killedAt = Date.now();
    victim.kill('SIGKILL');
    await exited(victim);
    workers.delete(victimId);
    guard.release();

    const started = Date.now();
    await spawnWorker(real);
    const startMs = Date.now() - started;
    const done = await waitJob(stack.api, hash, (j) => j.state === 'done' || j.state === 'failed', 150_000, 'job done by the second real worker');
    expect(done).toMatchObject({ state: 'done', attempts: 2 });
    expect(done.worker).not.toBe(victimId);
    const objects = await outputObjects(s3, hash);
    expect(objects.map((o) => o.name)).toEqual(stemNames(hash));
    const decoded = await decodeMp3((await stack.api.stem(hash, 'drums')).bytes);
    expect(Math.abs(decoded.durationSec - 4.05)).toBeLessThan(0.2);
    expect(workerLines(stack, hash, 'job done')).toHaveLength(1);
    figures.push({ trial: 'real model, inference', workerStartMs: startMs, recoveredMs: Date.now() - killedAt });
  }, 300_000);
});
