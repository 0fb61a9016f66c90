import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { beforeEach, describe, it, type TestFunction } from 'vitest';
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

/** Under CI (CI=true, as CI runners and .ci/run set it) a test whose tool is missing fails instead of skipping. */
export const IN_CI = /^(1|true|yes)$/i.test(process.env.CI ?? '');

/**
 * A command-line tool some tests need, probed once per test file. The one rule for such tests:
 * with the tool they run; without it they FAIL under CI (scripts/ci-prereqs.sh installs every such
 * tool, so a missing one is a broken CI machine, not a reason to pass), and elsewhere they skip,
 * each skipped test carrying the reason (and a warning on stderr says it once per file).
 *
 * Register the tests with `tool.describe` / `tool.it`, and run the tool only inside the tests (not
 * at collection time, nor in a beforeAll: a failing beforeAll marks its tests skipped, not failed).
 */
export interface RequiredTool {
  name: string;
  /** null when the tool runs, else why the tests cannot. */
  missing: string | null;
  describe(title: string, fn: () => void): void;
  it(title: string, fn: TestFunction, timeout?: number): void;
}

export function requireTool(name: string, opts: { probe: string[]; neededFor: string; install: string }): RequiredTool {
  const r = spawnSync(name, opts.probe, { encoding: 'utf8', timeout: 30_000 });
  const why = r.error ? 'not found on PATH' : `does not run (\`${name} ${opts.probe.join(' ')}\` exited ${r.status})`;
  const missing = r.status === 0 ? null : `${name} ${why}, needed for ${opts.neededFor}. To install: ${opts.install}`;
  const failure = `${missing}. CI=true, so the test FAILS instead of skipping.`;
  const skipNote = `SKIPPED: ${missing}`;
  let warned = false;
  /** Registers what a missing tool means for the tests about to be declared; says it once per file. */
  const gated = (): boolean => {
    if (!missing) return false;
    if (!warned) console.warn(`[${name}] ${IN_CI ? failure : `${skipNote} (under CI=true these tests fail)`}`);
    warned = true;
    return true;
  };
  return {
    name,
    missing,
    describe(title, fn) {
      describe(title, () => {
        if (gated()) {
          if (IN_CI) beforeEach(() => { throw new Error(failure); });
          else beforeEach((ctx) => ctx.skip(skipNote));
        }
        fn();
      });
    },
    it(title, fn, timeout) {
      if (!gated()) it(title, fn, timeout);
      else if (IN_CI) it(title, () => { throw new Error(failure); });
      else it(title, (ctx) => ctx.skip(skipNote));
    },
  };
}
