import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { loadConfig, startEmbeddedStore, type Config, type EmbeddedStore } from '@msaas/common';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A Redis key prefix of its own per test file, so files can run in parallel against one Redis. */
export function uniquePrefix(name: string): string {
  return `test:${name}:${randomBytes(4).toString('hex')}:`;
}

export function testConfig(prefix: string, overrides: Record<string, string> = {}): Config {
  return loadConfig({}, { REDIS_URL, REDIS_PREFIX: prefix, LOG_LEVEL: 'silent', HEARTBEAT_TTL_SEC: '2', REAP_INTERVAL_SEC: '0.5', ...overrides });
}

export interface TestStore extends EmbeddedStore {
  dir: string;
}

/** A real S3-compatible server (s3rver) over HTTP on a loopback port, in a temporary folder. */
export async function startTestStore(): Promise<TestStore> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'msaas-s3-'));
  const store = await startEmbeddedStore({ directory: dir });
  return {
    ...store,
    dir,
    async close() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function deletePrefix(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

export async function waitFor<T>(probe: () => Promise<T | null | undefined | false>, opts: { timeoutMs: number; intervalMs?: number; what: string }): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what}`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
  }
}
