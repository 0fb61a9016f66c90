// The worker's liveness must not depend on Redis: a Redis outage longer than the liveness probe's
// tolerance would otherwise restart every worker (each dropping its job and loading the model
// again). Readiness carries the dependency. A real worker process (stand-in model) against a
// redis-server this test stops and restarts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../../scripts/local-stack.ts';
import { exited, ownRedis, type OwnedRedis } from '../../test/helpers/processes.ts';
import { standinModelPath } from '../../test/helpers/standin-model.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TTL_SEC = 2;

async function probe(port: number, route: '/healthz' | '/readyz'): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${route}`, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return Date.now() - started;
}

describe('worker probes during a Redis outage', () => {
  let dir: string;
  let redis: OwnedRedis;
  let worker: ChildProcess;
  let port: number;
  let output = '';

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'msaas-probes-'));
    redis = await ownRedis(dir);
    port = await freePort();
    const storePort = await freePort(); // nothing listens: the worker takes no job here
    worker = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'worker/src/main.ts')], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        REDIS_URL: redis.url,
        REDIS_PREFIX: `test:probes:${process.pid}:`,
        MINIO_ENDPOINT: '127.0.0.1',
        MINIO_PORT: String(storePort),
        MINIO_ACCESS_KEY: 'none',
        MINIO_SECRET_KEY: 'nonenone',
        MODEL_PATH: standinModelPath(),
        WORKER_HEALTH_PORT: String(port),
        HEARTBEAT_TTL_SEC: String(TTL_SEC),
        WORKER_ID: `probes-${process.pid}`,
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    worker.stdout?.on('data', (d) => (output += d));
    worker.stderr?.on('data', (d) => (output += d));
    await until('the worker to be ready', 90_000, async () => (await probe(port, '/readyz')) === 200);
  }, 120_000);

  afterAll(async () => {
    if (worker && worker.exitCode === null) {
      const done = exited(worker);
      worker.kill('SIGTERM');
      await done;
    }
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('stays live (/healthz 200) throughout, while /readyz turns 503 within the heartbeat TTL and 200 again once Redis is back', async () => {
    try {
      expect(await probe(port, '/healthz')).toBe(200);
      await redis.stop();
      const liveness: number[] = [];
      const notReadyAfterMs = await until('/readyz 503', (TTL_SEC + 5) * 1000, async () => {
        liveness.push(await probe(port, '/healthz'));
        return (await probe(port, '/readyz')) === 503;
      });
      // an outage of several TTLs (a liveness probe failing on Redis would have failed throughout)
      const outageEnd = Date.now() + 3 * TTL_SEC * 1000;
      while (Date.now() < outageEnd) {
        liveness.push(await probe(port, '/healthz'));
        expect(await probe(port, '/readyz')).toBe(503);
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(liveness.length).toBeGreaterThan(5);
      expect(liveness.every((s) => s === 200)).toBe(true);
      expect(notReadyAfterMs).toBeLessThanOrEqual((TTL_SEC + 4) * 1000);
      await redis.start();
      await until('/readyz 200 after Redis is back', 30_000, async () => (await probe(port, '/readyz')) === 200);
      expect(worker.exitCode).toBeNull(); // never restarted nor exited
    } catch (err) {
      process.stdout.write(`--- worker output ---\n${output.slice(-4000)}\n---\n`);
      throw err;
    }
  }, 90_000);
});
