/**
 * API load benchmark (`npm run bench:api`): the real services as child processes on loopback
 * (rest, worker; local Redis under a prefix of its own; embedded S3-compatible store), bounded to
 * about a minute of measuring plus start-up.
 *
 *   1. enqueue → worker start, worker idle: N small jobs one at a time (worker on the stand-in model
 *      from test/helpers/standin-model.ts when present, so each job ends quickly; else the real one)
 *   1b. the same status reads with no job running, as a baseline
 *   2. a worker on the real model starts separating a 60 s clip; while it is busy:
 *      GET /apiv1/jobs/:hash and GET /apiv1/queue under autocannon, then multipart uploads
 *
 * Env: BENCH_SECONDS (per phase, default 10), BENCH_CONNECTIONS (default 10), BENCH_JOBS (default 30),
 * BENCH_ORT_THREADS (busy worker's threads, default 1: on 2 cores the other one is left to rest,
 * as separate pods would have their own CPU).
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { ChildProcess } from 'node:child_process';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { songhash } from '@msaas/common';
import { startStack, type Stack } from '../test/helpers/stack.ts';
import { variant } from '../test/reliability/support.ts';
import { synthesizeMp3 } from '../worker/fixtures/synth.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
const JOBS = Number(process.env.BENCH_JOBS ?? 30);
const ORT_THREADS = process.env.BENCH_ORT_THREADS ?? '1';
const TARGET_RPS = 500;
const TARGET_P99_MS = 50;
const TARGET_START_P99_MS = 50;

const log = (s: string): void => void process.stdout.write(`${s}\n`);
const verdict = (ok: boolean): string => (ok ? 'meets target' : 'MISSES target');

function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

async function standinModel(): Promise<string | null> {
  try {
    const mod = (await import('../test/helpers/standin-model.ts')) as { standinModelPath: () => string };
    return mod.standinModelPath();
  } catch {
    return null;
  }
}

/** Job state changes as this process sees them: the job-events channel, then one HGETALL. */
function watchJobs(stack: Stack): { redis: Redis; sub: Redis; started: Map<string, number>; done: Map<string, number>; ready: Promise<unknown> } {
  const redis = new Redis(stack.env.REDIS_URL!);
  const sub = new Redis(stack.env.REDIS_URL!);
  const started = new Map<string, number>();
  const done = new Map<string, number>();
  sub.on('message', (_ch: string, hash: string) => {
    const seen = performance.now();
    void redis.hget(`${stack.prefix}job:${hash}`, 'state').then((state) => {
      if ((state === 'processing' || state === 'done') && !started.has(hash)) started.set(hash, seen);
      if ((state === 'done' || state === 'failed') && !done.has(hash)) done.set(hash, seen);
    });
  });
  return { redis, sub, started, done, ready: sub.subscribe(`${stack.prefix}job-events`) };
}

async function waitUntil(probe: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** CPU seconds a process has used (Linux /proc; NaN elsewhere). */
function cpuSeconds(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks of 10 ms
  } catch {
    return Number.NaN;
  }
}

let restPid: number | undefined;

interface Load {
  cpuUsPerRequest: number;
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

/**
 * As fast as CONNECTIONS keep-alive clients can go: throughput, and the latency each request saw at
 * that throughput. (A paced run at exactly 500 req/s was tried and dropped: autocannon's rate option
 * sends each second's budget in a burst, and a Node http client pacing itself fell behind on this
 * shared machine, measuring the client rather than the server.)
 */
async function cannon(url: string, title: string): Promise<Load> {
  const cpu0 = cpuSeconds(restPid);
  const r = await autocannon({ url, connections: CONNECTIONS, duration: SECONDS, title });
  const out: Load = {
    cpuUsPerRequest: ((cpuSeconds(restPid) - cpu0) * 1e6) / Math.max(1, r.requests.total),
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
  };
  const met = out.rps >= TARGET_RPS && out.p99 <= TARGET_P99_MS;
  log(
    `  ${title}: ${out.rps.toFixed(0)} req/s, latency p50 ${out.p50} ms, p99 ${out.p99} ms ` +
      `[target ≥ ${TARGET_RPS} req/s with p99 ≤ ${TARGET_P99_MS} ms: ${met ? 'met' : 'MISSED'}]; ${r.requests.total} requests, non-2xx ${out.non2xx}, errors ${out.errors}; ` +
      `rest used ${out.cpuUsPerRequest.toFixed(0)} µs CPU per request (≈ ${(1e6 / out.cpuUsPerRequest).toFixed(0)} req/s per free core)`,
  );
  return out;
}

async function main(): Promise<void> {
  log(`bench:api — ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}, node ${process.version}`);
  log(`  ${SECONDS} s per run, ${CONNECTIONS} connections, loopback only; status reads by autocannon as fast as the connections go`);
  const t0 = performance.now();
  const small = Buffer.from(await synthesizeMp3({ seconds: 1, seed: 501 }));
  const long = Buffer.from(await synthesizeMp3({ seconds: 60, seed: 502 }));
  const upload = Buffer.from(await synthesizeMp3({ seconds: 30, seed: 503 }));
  log(`  clips synthesized in ${((performance.now() - t0) / 1000).toFixed(1)} s (1 s: ${small.length} B, 60 s: ${long.length} B, upload 30 s: ${upload.length} B)`);

  const stack = await startStack({ worker: false, logs: false, env: { RATE_LIMIT_PER_MIN: '1000000000', LOG_LEVEL: 'info' } });
  restPid = stack.children.get('rest')?.pid;
  const watch = watchJobs(stack);
  await watch.ready;
  try {
    // ---- 1. enqueue → start with an idle worker ----
    const standin = await standinModel();
    log(`\n[1] enqueue → worker start, worker idle (${standin ? 'worker on the stand-in model' : 'worker on the real model'}), ${JOBS} jobs one at a time`);
    const idleWorker = await stack.addWorker(standin ? { MODEL_PATH: standin } : {});
    const serverSide: number[] = [];
    const clientSide: number[] = [];
    for (let i = 0; i < JOBS; i++) {
      await new Promise((r) => setTimeout(r, 50)); // the worker is back in its blocking claim
      const clip = variant(small, i);
      const hash = songhash(clip);
      await stack.api.upload(clip, { filename: `idle-${i}.mp3` });
      const answered = performance.now();
      await waitUntil(() => watch.started.has(hash), 30_000, `job ${i} to start`);
      clientSide.push(Math.max(0, watch.started.get(hash)! - answered));
      const job = await watch.redis.hmget(`${stack.prefix}job:${hash}`, 'createdAt', 'startedAt');
      serverSide.push(Date.parse(job[1]!) - Date.parse(job[0]!));
      await waitUntil(() => watch.done.has(hash), 120_000, `job ${i} to finish`);
    }
    const startP99 = percentile(serverSide, 99);
    log(
      `  enqueue → start (job record: createdAt → startedAt): p50 ${percentile(serverSide, 50)} ms, p99 ${startP99} ms, max ${Math.max(...serverSide)} ms (${verdict(startP99 <= TARGET_START_P99_MS)} ≤ ${TARGET_START_P99_MS})`,
    );
    log(`  as a client sees it (POST answered → "processing" event): p50 ${percentile(clientSide, 50).toFixed(1)} ms, p99 ${percentile(clientSide, 99).toFixed(1)} ms`);
    await stopChild(idleWorker);

    // The same reads with no separation running: what the busy worker's CPU use costs them below.
    const lastIdle = songhash(variant(small, JOBS - 1));
    log(`\n[1b] status reads with no job running (baseline)`);
    const idleJobs = await cannon(`${stack.url}/apiv1/jobs/${lastIdle}`, 'GET /apiv1/jobs/:hash (worker idle)');

    // ---- 2. a worker busy on the real model ----
    log(`\n[2] worker on the real model (ORT_THREADS=${ORT_THREADS}) separating a 60 s clip`);
    const tw = performance.now();
    await stack.addWorker({ ORT_THREADS, WORKER_ID: `bench-busy-${process.pid}` });
    log(`  worker ready in ${((performance.now() - tw) / 1000).toFixed(1)} s`);
    const busy = await stack.api.upload(variant(long, 0), { filename: 'long.mp3' });
    await waitUntil(() => watch.started.has(busy.hash), 60_000, 'the long job to start');
    // a few more waiting behind it so /apiv1/queue has something to list
    for (let i = 0; i < 5; i++) await stack.api.upload(variant(small, 1000 + i), { filename: `waiting-${i}.mp3` });
    const busyState = async (): Promise<string> => (await watch.redis.hget(`${stack.prefix}job:${busy.hash}`, 'state')) ?? '?';

    log(`\n[3] status reads while the worker is busy (state: ${await busyState()})`);
    const jobs = await cannon(`${stack.url}/apiv1/jobs/${busy.hash}`, `GET /apiv1/jobs/:hash`);
    const queue = await cannon(`${stack.url}/apiv1/queue`, 'GET /apiv1/queue');

    log(`\n[4] uploads while the worker is busy (state: ${await busyState()}): 4 clients posting distinct ${(upload.length / 2 ** 20).toFixed(2)} MB clips (multipart) for ${SECONDS} s`);
    let bytes = 0;
    let n = 0;
    const latencies: number[] = [];
    const until = performance.now() + SECONDS * 1000;
    await Promise.all(
      [0, 1, 2, 3].map(async (c) => {
        while (performance.now() < until) {
          const clip = variant(upload, 10_000 + c * 100_000 + n++);
          const s = performance.now();
          await stack.api.upload(clip, { filename: 'upload.mp3' });
          latencies.push(performance.now() - s);
          bytes += clip.length;
        }
      }),
    );
    const elapsed = (performance.now() - (until - SECONDS * 1000)) / 1000;
    log(
      `  uploads: ${(bytes / 2 ** 20 / elapsed).toFixed(1)} MB/s, ${(latencies.length / elapsed).toFixed(1)} uploads/s, latency p50 ${percentile(latencies, 50).toFixed(0)} ms, p99 ${percentile(latencies, 99).toFixed(0)} ms (${latencies.length} uploads, ${(bytes / 2 ** 20).toFixed(0)} MB)`,
    );
    log(`  the long job is still ${await busyState()} (busy throughout: ${(await busyState()) === 'processing' ? 'yes' : 'no'})`);

    log('\nsummary');
    for (const [name, r] of [['GET /apiv1/jobs/:hash', jobs], ['GET /apiv1/queue     ', queue]] as const) {
      const met = r.rps >= TARGET_RPS && r.p99 <= TARGET_P99_MS;
      log(`  ${name}  ${r.rps.toFixed(0)} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms, ${r.cpuUsPerRequest.toFixed(0)} µs rest CPU/request   [target ≥ ${TARGET_RPS} req/s with p99 ≤ ${TARGET_P99_MS} ms: ${met ? 'met' : 'MISSED'}]`);
    }
    log(`  baseline, no job running: GET /apiv1/jobs/:hash ${idleJobs.rps.toFixed(0)} req/s, p50 ${idleJobs.p50} ms, p99 ${idleJobs.p99} ms`);
    log(`  uploads                ${(bytes / 2 ** 20 / elapsed).toFixed(1)} MB/s`);
    log(`  load average now ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} (other processes on the machine compete for the same 2 cores)`);
    log(`  enqueue → start p99    ${startP99} ms   [target ≤ ${TARGET_START_P99_MS} ms: ${startP99 <= TARGET_START_P99_MS ? 'met' : 'MISSED'}]`);
  } finally {
    watch.sub.disconnect();
    watch.redis.disconnect();
    await stack.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`bench:api failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
