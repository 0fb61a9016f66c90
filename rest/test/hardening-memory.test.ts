/**
 * Bounded memory, against a real rest process (child process, real Redis under a prefix, the
 * embedded S3-compatible store): compressed-body bombs, zip readers that never read, and the cap
 * on uploads being received at once. Memory is the rest process's own resident set, read from
 * /proc/<pid>/status.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { constants as zlibConstants, createBrotliCompress, gzipSync } from 'node:zlib';
import { unzipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue, TRACKS, createObjectStore, createRedis, loadConfig, makeKeys, queueOptions, storeEndpointFromConfig, type ObjectStore } from '@msaas/common';
import { synthesizeMp3 } from '../../worker/fixtures/synth.ts';
import { storeSeparated } from '../../common/test/test-worker.ts';
import { printLinesOnFailure, startStack, type Stack } from '../../test/helpers/stack.ts';
import { waitFor } from '../../test/helpers/env.ts';
import { rawRequest, type RawOutcome } from './helpers/raw-http.ts';

const MiB = 2 ** 20;
/** A 5-minute song's stem at ~300 kbit/s: four of them make a ~44 MB zip. */
const STEM_BYTES = 11 * MiB;

let stack: Stack;
let restPid: number;
let storePort: number;
let queue: Queue;
let store: ObjectStore;

function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/** Samples the rest process's RSS every 50 ms until stopped; returns the highest value seen. */
function sampleRss(pid: number): { stop(): number } {
  let peak = rssBytes(pid);
  const timer = setInterval(() => (peak = Math.max(peak, rssBytes(pid))), 50);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, rssBytes(pid));
    },
  };
}

/** The rest process's open TCP connections to the object store (socket inodes of its fds matched in /proc/net/tcp*). */
function storeConnections(pid: number): number {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // the fd closed while we listed
    }
  }
  const portHex = storePort.toString(16).toUpperCase().padStart(4, '0');
  let n = 0;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // f[2] remote address:port, f[3] state (01 = ESTABLISHED), f[9] inode
      if (f.length > 9 && f[2]!.endsWith(`:${portHex}`) && f[3] === '01' && inodes.has(f[9]!)) n++;
    }
  }
  return n;
}

/** GET /healthz every 100 ms; every answer must be a 200 within 2 s. */
function watchHealth(port: number): { stop(): Promise<{ ok: number; failures: string[] }> } {
  let running = true;
  let ok = 0;
  const failures: string[] = [];
  const loop = (async () => {
    while (running) {
      const o = await rawRequest(port, Buffer.from('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), { deadlineMs: 2000 });
      if (o.kind === 'response' && o.status === 200) ok++;
      else failures.push(`${o.kind}${o.kind === 'response' ? ` ${o.status}` : ''} after ${o.ms} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { ok, failures };
    },
  };
}

/** `bytes` zero bytes, brotli-compressed as they stream (never held uncompressed). */
async function brotliOfZeros(bytes: number): Promise<Buffer> {
  const br = createBrotliCompress({ params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 4, [zlibConstants.BROTLI_PARAM_SIZE_HINT]: bytes } });
  const out: Buffer[] = [];
  br.on('data', (c: Buffer) => out.push(c));
  const done = new Promise((r) => br.on('end', r));
  const zeros = Buffer.alloc(MiB);
  for (let sent = 0; sent < bytes; sent += zeros.length) {
    if (!br.write(zeros)) await new Promise((r) => br.once('drain', r));
  }
  br.end();
  await done;
  return Buffer.concat(out);
}

function post(path: string, headers: Record<string, string>, body: Buffer): Buffer {
  const head = [`POST ${path} HTTP/1.1`, 'Host: x', 'Connection: close', `Content-Length: ${body.length}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  return Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`), body]);
}

const json = (o: RawOutcome): { error?: string; detail?: string } => (o.kind === 'response' ? (JSON.parse(o.body.toString('utf8') || '{}') as { error?: string; detail?: string }) : {});

/** An upload that sends its headers and the first bytes of a 1 MB JSON body, then waits for `finish()` (or `abort()`). */
function slowUpload(port: number, mp3Base64: string): { answer: Promise<RawOutcome>; finish(): void; abort(): void } {
  const body = Buffer.from(JSON.stringify({ mp3: mp3Base64 }));
  const socket = net.connect(port, '127.0.0.1');
  const started = Date.now();
  socket.write(`POST /apiv1/separate HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
  socket.write(body.subarray(0, 100));
  const answer = new Promise<RawOutcome>((resolve) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      const all = Buffer.concat(chunks);
      const m = /^HTTP\/1\.1 (\d{3})/.exec(all.toString('latin1'));
      if (!m) return resolve({ kind: 'closed', ms: Date.now() - started });
      const end = all.indexOf('\r\n\r\n');
      const headers: Record<string, string> = {};
      for (const l of all.subarray(0, end).toString('latin1').split('\r\n').slice(1)) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
      resolve({ kind: 'response', status: Number(m[1]), headers, body: all.subarray(end + 4), ms: Date.now() - started });
    });
  });
  return { answer, finish: () => void socket.write(body.subarray(100)), abort: () => void socket.destroy() };
}

beforeAll(async () => {
  stack = await startStack({
    worker: false,
    logs: false,
    env: { MAX_CONCURRENT_UPLOADS: '2', MAX_DURATION_SEC: '100000', SUBMIT_RATE_LIMIT_PER_MIN: '10000', RATE_LIMIT_PER_MIN: '100000', LOG_LEVEL: 'error' },
  });
  restPid = stack.children.get('rest')!.pid!;
  const config = loadConfig({}, Object.fromEntries(Object.entries(stack.env).filter((e): e is [string, string] => e[1] !== undefined)));
  storePort = config.MINIO_PORT;
  queue = new Queue(createRedis(config.REDIS_URL, 'api'), makeKeys(stack.prefix), queueOptions(config));
  store = createObjectStore(storeEndpointFromConfig(config)!, config);
}, 90_000);

afterAll(async () => {
  queue?.redis.disconnect();
  await stack?.stop();
});

printLinesOnFailure(() => stack?.lines);

describe('bounded memory (real rest process)', () => {
  it('100 concurrent compressed-body bombs are refused 415 unsupported_encoding, rest grows < 100 MB and /healthz answers throughout', async () => {
    const br = await brotliOfZeros(500 * 1000 * 1000);
    const gz = gzipSync(Buffer.alloc(20 * MiB));
    const before = rssBytes(restPid);
    const rss = sampleRss(restPid);
    const health = watchHealth(stack.port);
    const outcomes = await Promise.all(
      Array.from({ length: 100 }, (_, i) => {
        const gzip = i % 4 === 3;
        return rawRequest(stack.port, post('/apiv1/separate', { 'Content-Type': 'application/json', 'Content-Encoding': gzip ? 'gzip' : 'br' }, gzip ? gz : br), { deadlineMs: 20_000 });
      }),
    );
    await new Promise((r) => setTimeout(r, 300));
    const peak = rss.stop();
    const { ok, failures } = await health.stop();
    const growthMb = (peak - before) / MiB;
    process.stdout.write(`[bombs] brotli body ${br.length} B (500 MB of zeros), gzip body ${gz.length} B; rest RSS ${(before / MiB).toFixed(0)} → peak ${(peak / MiB).toFixed(0)} MiB (+${growthMb.toFixed(1)}); /healthz ${ok} × 200; load ${readFileSync('/proc/loadavg', 'utf8').trim()}\n`);
    for (const o of outcomes) {
      expect(o.kind).toBe('response');
      if (o.kind !== 'response') continue;
      expect(o.status).toBe(415);
      expect(json(o).error).toBe('unsupported_encoding');
    }
    expect(growthMb).toBeLessThan(100);
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(0);
  }, 60_000);

  it("20 never-reading zip clients on a 5-minute song's stems add < 50 MB to rest, and their store streams are released when they go away", async () => {
    const hash = randomBytes(28).toString('hex');
    await storeSeparated({ queue, store }, hash, randomBytes(STEM_BYTES));
    const request = Buffer.from(`GET /apiv1/jobs/${hash}/zip HTTP/1.1\r\nHost: x\r\n\r\n`);

    // A reader that reads gets the whole zip.
    const whole = await fetch(`http://127.0.0.1:${stack.port}/apiv1/jobs/${hash}/zip`);
    expect(whole.status).toBe(200);
    const entries = unzipSync(new Uint8Array(await whole.arrayBuffer()));
    expect(Object.keys(entries)).toHaveLength(TRACKS.length);
    for (const e of Object.values(entries)) expect(e.length).toBe(STEM_BYTES);

    await new Promise((r) => setTimeout(r, 500));
    const idleStoreConnections = storeConnections(restPid);
    const before = rssBytes(restPid);
    const rss = sampleRss(restPid);
    const clients = Array.from({ length: 20 }, () => {
      const s = net.connect(stack.port, '127.0.0.1');
      s.on('error', () => undefined);
      s.pause(); // never reads
      s.write(request);
      return s;
    });
    // Every client's zip is under way (a store stream open for each) and stalled on its socket.
    await waitFor(async () => storeConnections(restPid) >= 20, { timeoutMs: 15_000, what: '20 store streams open' });
    // 10 s: long enough for a zip written without backpressure to show (it grew ~20 MB/s here, on a loaded machine).
    await new Promise((r) => setTimeout(r, 10_000));
    const peak = rss.stop();
    const stalled = storeConnections(restPid);
    const growthMb = (peak - before) / MiB;
    process.stdout.write(`[zip] 20 stalled clients of a ${((4 * STEM_BYTES) / MiB).toFixed(0)} MiB zip: rest RSS ${(before / MiB).toFixed(0)} → peak ${(peak / MiB).toFixed(0)} MiB (+${growthMb.toFixed(1)}); store connections idle ${idleStoreConnections}, stalled ${stalled}; load ${readFileSync('/proc/loadavg', 'utf8').trim()}\n`);
    expect(growthMb).toBeLessThan(50);
    for (const s of clients) s.destroy();
    await waitFor(async () => storeConnections(restPid) <= idleStoreConnections, { timeoutMs: 5_000, what: 'the store streams released' });
    const after = storeConnections(restPid);
    process.stdout.write(`[zip] store connections after the clients closed: ${after}\n`);
    expect(after).toBeLessThanOrEqual(idleStoreConnections);
  }, 60_000);

  it('a 24 MB MP3 sent as base64 JSON costs rest less than 4x its size at the peak (the body is decoded in place, not copied as strings)', async () => {
    const clip = Buffer.from(await synthesizeMp3({ seconds: 20, seed: 43 }));
    const mp3 = Buffer.concat(Array.from({ length: Math.floor((24 * MiB) / clip.length) }, () => clip));
    const body = Buffer.from(JSON.stringify({ mp3: mp3.toString('base64') }));
    await new Promise((r) => setTimeout(r, 500));
    const before = rssBytes(restPid);
    const rss = sampleRss(restPid);
    const res = await fetch(`http://127.0.0.1:${stack.port}/apiv1/separate`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
    const answer = (await res.json()) as { result?: string; error?: string };
    const peak = rss.stop();
    const growthMb = (peak - before) / MiB;
    process.stdout.write(`[json] ${(mp3.length / MiB).toFixed(1)} MiB MP3 as a ${(body.length / MiB).toFixed(1)} MiB JSON body → ${res.status} ${answer.result ?? answer.error}; rest RSS ${(before / MiB).toFixed(0)} → peak ${(peak / MiB).toFixed(0)} MiB (+${growthMb.toFixed(1)}, ${(growthMb / (mp3.length / MiB)).toFixed(2)}x the MP3); load ${readFileSync('/proc/loadavg', 'utf8').trim()}\n`);
    // Either accepted or refused for its length (MAX_DURATION_SEC): both after the whole body was decoded.
    expect([200, 400]).toContain(res.status);
    if (res.status === 400) expect(answer.error).toBe('too_long');
    expect(growthMb).toBeLessThan((4 * mp3.length) / MiB);
  }, 90_000);

  it('MAX_CONCURRENT_UPLOADS=2: a third upload received at once gets 503 with Retry-After naming the limit; slots free after completion and abort', async () => {
    const mp3 = Buffer.from(await synthesizeMp3({ seconds: 20, seed: 41 })).toString('base64');
    const a = slowUpload(stack.port, mp3);
    const b = slowUpload(stack.port, mp3);
    await new Promise((r) => setTimeout(r, 300));
    const third = await rawRequest(stack.port, post('/apiv1/separate', { 'Content-Type': 'application/json' }, Buffer.from(JSON.stringify({ mp3 }))));
    expect(third.kind).toBe('response');
    if (third.kind !== 'response') return;
    expect(third.status).toBe(503);
    expect(Number(third.headers['retry-after'])).toBeGreaterThan(0);
    expect(json(third).error).toBe('too_many_uploads');
    expect(json(third).detail).toContain('MAX_CONCURRENT_UPLOADS=2');

    // One aborts: its slot frees, and another upload is received.
    a.abort();
    await a.answer;
    await new Promise((r) => setTimeout(r, 200));
    const fourth = await rawRequest(stack.port, post('/apiv1/separate', { 'Content-Type': 'application/json' }, Buffer.from(JSON.stringify({ mp3 }))));
    expect(fourth.kind === 'response' && fourth.status).toBe(200);

    // The other completes: both slots are free again.
    b.finish();
    const bAnswer = await b.answer;
    expect(bAnswer.kind === 'response' && bAnswer.status).toBe(200);
    const c = slowUpload(stack.port, mp3);
    const d = slowUpload(stack.port, mp3);
    c.finish();
    d.finish();
    const [cAnswer, dAnswer] = await Promise.all([c.answer, d.answer]);
    expect(cAnswer.kind === 'response' && cAnswer.status).toBe(200);
    expect(dAnswer.kind === 'response' && dAnswer.status).toBe(200);
  }, 60_000);
});
