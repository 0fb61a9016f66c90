import { mkdtempSync, rmSync } from 'node:fs';
import { afterEach } from 'vitest';
import os from 'node:os';
import path from 'node:path';
import { ApiClient } from '@msaas/client';
import { startLocalStack, type LocalStack, type Service } from '../../scripts/local-stack.ts';
import { REDIS_URL, deletePrefix, uniquePrefix } from './env.ts';
import { contractHook } from './openapi.ts';

export interface Stack extends LocalStack {
  prefix: string;
  /** The API client of this stack's rest. */
  api: ApiClient;
  /** Every line the services printed, for assertions and for diagnosing a failure. */
  lines: { service: Service; line: string }[];
}

/**
 * The real services as child processes (rest, worker with the model, optionally logs) against the
 * local Redis under a key prefix of their own and an s3rver in a temporary folder.
 */
export async function startStack(opts: { worker?: boolean; logs?: boolean; env?: Record<string, string>; contract?: boolean } = {}): Promise<Stack> {
  const prefix = uniquePrefix('stack');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'msaas-stack-'));
  const lines: Stack['lines'] = [];
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    REDIS_URL,
    REDIS_PREFIX: prefix,
    LOCAL_STORE_DIR: dir,
    LOG_LEVEL: 'info',
    CALLBACK_ALLOW_PRIVATE: 'true',
    HEARTBEAT_TTL_SEC: '5',
    REAP_INTERVAL_SEC: '1',
    WORKER_ID: `test-${prefix.split(':')[2]}`,
    ...opts.env,
  };
  const stack = await startLocalStack({
    env,
    port: 0,
    worker: opts.worker ?? true,
    logs: opts.logs ?? false,
    storeDir: dir,
    onLine: (service, line) => {
      lines.push({ service, line });
      if (process.env.STACK_VERBOSE) process.stderr.write(`[${service}] ${line}\n`);
    },
  });
  return {
    ...stack,
    prefix,
    // contract: every answer `api` receives is checked against the API document (test/helpers/openapi.ts).
    api: new ApiClient({ baseUrl: stack.url, ...(opts.contract ? { onResponse: contractHook() } : {}) }),
    lines,
    async stop() {
      await stack.stop();
      await deletePrefix(prefix);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Registers an afterEach that prints the services' last lines when a test fails, so a failure in
 * CI (where test-output/ is not kept) says what the processes were doing.
 */
export function printLinesOnFailure(lines: () => Stack['lines'] | undefined, last = 80): void {
  afterEach((ctx) => {
    if (ctx.task.result?.state !== 'fail') return;
    const tail = (lines() ?? []).slice(-last).map((l) => `[${l.service}] ${l.line}`);
    process.stdout.write(`\n--- last ${tail.length} service lines of "${ctx.task.name}" ---\n${tail.join('\n')}\n---\n`);
  });
}
