/**
 * The system under fuzz: the real rest app (buildRest) wired to real Redis and a real S3-compatible
 * server, behind the real HTTP server settings, on a loopback port. It records what must stay empty
 * (uncaught errors, error logs, files written to its private TMPDIR) and builds the corpus the
 * generators draw from, including one song already separated.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { pino } from 'pino';
import { songhash } from '@msaas/common';
import { buildRest, type RestService } from '../../src/bootstrap.ts';
import { createHttpServer } from '../../src/http-server.ts';
import { synthesizeMp3, synthesizeSong } from '../../../worker/fixtures/synth.ts';
import { encodeAs } from '../../../worker/fixtures/encode-formats.ts';
import { deletePrefix, startTestStore, testConfig, uniquePrefix, type TestStore } from '../../../test/helpers/env.ts';
import { storeSeparated } from '../../../common/test/test-worker.ts';
import { MAX_MB, type Corpus } from './arbitraries.ts';

export const REPO = path.resolve(fileURLToPath(new URL('../../..', import.meta.url)));

// ---------- file-tree snapshots ----------
export function walk(root: string, skip: (rel: string) => boolean = () => false): string[] {
  const out: string[] = [];
  const visit = (dir: string): void => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const abs = path.join(dir, e.name);
      const rel = path.relative(root, abs);
      if (skip(rel)) continue;
      out.push(rel);
      if (e.isDirectory()) visit(abs);
    }
  };
  visit(root);
  return out;
}
export const repoSkip = (rel: string): boolean => /(^|\/)(node_modules|\.git)$/.test(rel);

export interface FuzzTarget {
  store: TestStore;
  rest: RestService;
  server: Server;
  port: number;
  /** The TMPDIR the app runs with while the target is up: must stay empty. */
  privateTmp: string;
  /** TMPDIR before the target replaced it. */
  savedTmpdir: string | undefined;
  /** Lines the app logged at level error. */
  errorLogs: string[];
  /** Uncaught exceptions and unhandled rejections while the target was up. */
  processErrors: string[];
  /** The repository's files (without node_modules/.git) before the target started. */
  repoBefore: Set<string>;
  corpus: Corpus;
  close(): Promise<void>;
}

export async function startFuzzTarget(name = 'fuzz'): Promise<FuzzTarget> {
  const savedTmpdir = process.env.TMPDIR;
  const errorLogs: string[] = [];
  const processErrors: string[] = [];
  const onProcessError = (err: unknown): void => void processErrors.push(String((err as Error)?.stack ?? err));
  let store: TestStore | undefined;
  let rest: RestService | undefined;
  let server: Server | undefined;
  let prefix: string | undefined;
  let privateTmp: string | undefined;
  const close = async (): Promise<void> => {
    process.off('uncaughtException', onProcessError);
    process.off('unhandledRejection', onProcessError);
    if (savedTmpdir === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = savedTmpdir;
    await new Promise<void>((r) => {
      server?.closeAllConnections();
      server ? server.close(() => r()) : r();
    });
    await rest?.close();
    await store?.close();
    if (prefix) await deletePrefix(prefix);
    if (privateTmp) rmSync(privateTmp, { recursive: true, force: true });
  };

  try {
    process.on('uncaughtException', onProcessError);
    process.on('unhandledRejection', onProcessError);
    const repoBefore = new Set(walk(REPO, repoSkip));
    store = await startTestStore();
    privateTmp = mkdtempSync(path.join(os.tmpdir(), 'msaas-fuzz-tmp-'));
    process.env.TMPDIR = privateTmp; // anything the app would spool to os.tmpdir() lands here, where we look
    prefix = uniquePrefix(name);
    const logSink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        errorLogs.push(chunk.toString());
        cb();
      },
    });
    const publicResolver = async (host: string): Promise<string[]> => {
      if (host === 'internal.example') return ['10.1.2.3'];
      if (host === 'metadata.example') return ['169.254.169.254'];
      if (host === 'nxdomain.example') throw new Error('ENOTFOUND');
      return ['93.184.216.34'];
    };
    rest = await buildRest(testConfig(prefix, { MAX_UPLOAD_MB: String(MAX_MB), RATE_LIMIT_PER_MIN: '1000000', SUBMIT_RATE_LIMIT_PER_MIN: '1000000' }), store.endpoint, {
      resolveHost: publicResolver,
      logger: pino({ level: 'error' }, logSink),
    });
    const redis = rest.deps.queue.redis; // fails fast until connected: a 503 here would be a false finding
    if (redis.status !== 'ready') await new Promise((resolve) => redis.once('ready', resolve));
    const srv = createHttpServer(rest.app, { idleTimeoutMs: 1500, headersTimeoutMs: 2000, requestTimeoutMs: 6000, checkIntervalMs: 250 });
    server = srv;
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as AddressInfo).port;

    const pool = await Promise.all([1, 2, 3, 4].map(async (seed) => Buffer.from(await synthesizeMp3({ seconds: 1, seed: 900 + seed }))));
    const song = synthesizeSong({ seconds: 1, seed: 950 });
    const formats = await Promise.all((['wav16', 'wavf32', 'flac', 'ogg-vorbis', 'ogg-opus', 'm4a'] as const).map(async (f) => Buffer.from(await encodeAs(f, song, 44100))));
    const doneClip = Buffer.from(await synthesizeMp3({ seconds: 1, seed: 999 }));
    const doneHash = songhash(doneClip);
    await storeSeparated(rest.deps, doneHash, doneClip);
    const corpus: Corpus = {
      pool,
      formats,
      doneHash,
      gzipBomb: gzipSync(Buffer.alloc(50 * 2 ** 20, 0x20)),
      hugeB64: 'A'.repeat(Math.ceil(1.5 * 2 ** 20)),
      overB64: Buffer.concat([pool[0]!, Buffer.alloc(MAX_MB * 2 ** 20 + 4096, 7)]).toString('base64'), // under the JSON cap, over the MP3 cap
    };
    return { store, rest, server: srv, port, privateTmp, savedTmpdir, errorLogs, processErrors, repoBefore, corpus, close };
  } catch (err) {
    await close().catch(() => {});
    throw err;
  }
}
