/**
 * Backing services owned by one test: a `redis-server` with persistence on its own port, and the
 * embedded S3-compatible server in a child process (so it can be killed like a crashed MinIO pod).
 * Both restart on the same port and data directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, redisAnswers } from '../../scripts/local-stack.ts';

const ROOT = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));

export function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

const pingRedis = (url: string): Promise<boolean> => redisAnswers(url, 500);

export interface OwnedRedis {
  url: string;
  port: number;
  dir: string;
  /** Starts (or restarts) redis-server on the same port and directory. */
  start(): Promise<void>;
  /** SIGTERM: redis-server flushes its append-only file and exits. */
  stop(): Promise<void>;
  running(): boolean;
}

/** redis-server with the append-only file on, as the k8s manifest runs it. */
export async function ownRedis(dir: string): Promise<OwnedRedis> {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | null = null;
  const owned: OwnedRedis = {
    url,
    port,
    dir,
    running: () => child !== null && child.exitCode === null && child.signalCode === null,
    async start() {
      if (owned.running()) return;
      child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir, '--save', ''], {
        stdio: 'ignore',
      });
      for (let i = 0; i < 100; i++) {
        if (await pingRedis(url)) return;
        if (!owned.running()) throw new Error(`redis-server on ${port} exited (${child.exitCode})`);
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`redis-server on ${port} did not answer`);
    },
    async stop() {
      if (!child || !owned.running()) return;
      const done = exited(child);
      child.kill('SIGTERM');
      const timer = setTimeout(() => child?.kill('SIGKILL'), 10_000);
      await done;
      clearTimeout(timer);
    },
  };
  await owned.start();
  return owned;
}

export interface OwnedStore {
  port: number;
  dir: string;
  endpoint: { endPoint: string; port: number; useSSL: false; accessKey: string; secretKey: string; region: string };
  /** Env for services to use this store (MINIO_*). */
  env: Record<string, string>;
  start(): Promise<void>;
  /** SIGKILL: the store vanishes mid-whatever, connections reset (a crashed MinIO pod). */
  kill(): Promise<void>;
  running(): boolean;
}

/** startEmbeddedStore({directory, port}) in a child process on a fixed port of its own. */
export async function ownStore(dir: string): Promise<OwnedStore> {
  const port = await freePort();
  let child: ChildProcess | null = null;
  const owned: OwnedStore = {
    port,
    dir,
    endpoint: { endPoint: '127.0.0.1', port, useSSL: false, accessKey: 'S3RVER', secretKey: 'S3RVER', region: 'us-east-1' },
    env: { MINIO_ENDPOINT: '127.0.0.1', MINIO_PORT: String(port), MINIO_ACCESS_KEY: 'S3RVER', MINIO_SECRET_KEY: 'S3RVER', MINIO_USE_SSL: 'false' },
    running: () => child !== null && child.exitCode === null && child.signalCode === null,
    async start() {
      if (owned.running()) return;
      const c = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/helpers/store-main.ts')], {
        cwd: ROOT,
        env: { ...process.env, STORE_DIR: dir, STORE_PORT: String(port) },
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      });
      child = c;
      let stderr = '';
      c.stderr?.on('data', (d) => (stderr += d));
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('store did not start within 30 s')), 30_000);
        c.once('message', () => {
          clearTimeout(timer);
          resolve();
        });
        c.once('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`store exited (${code}): ${stderr}`));
        });
      });
    },
    async kill() {
      if (!child || !owned.running()) return;
      const done = exited(child);
      child.kill('SIGKILL');
      await done;
    },
  };
  await owned.start();
  return owned;
}
