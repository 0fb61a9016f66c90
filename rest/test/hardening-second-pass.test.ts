/**
 * Issue 22, items 1 and 2, against real processes: rest as a child process (real Redis under a
 * prefix), the S3-compatible store in a child process of its own (so the test process's timings
 * are not the store's), the rest process's CPU and memory read from /proc/<pid>.
 *
 * 1. The custom mix: a concurrency limit per process and per client, output streamed as it is
 *    encoded, and all work stopped when the client goes away; /healthz stays fast meanwhile.
 * 2. Request bodies: only POST /apiv1/separate reads one; every other /apiv1 route refuses a body
 *    over NO_BODY_MAX_BYTES before reading it (the lab's `GET /apiv1/queue` with `null` still works).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue, createObjectStore, createRedis, loadConfig, makeKeys, queueOptions, storeEndpointFromConfig, type ObjectStore } from '@msaas/common';
import { WAV_HEADER_BYTES, infoTagSamples } from '@msaas/common/audio-encode/index';
import { synthesizeMp3 } from '../../worker/fixtures/synth.ts';
import { storeSeparated } from '../../common/test/test-worker.ts';
import { printLinesOnFailure, startStack, type Stack } from '../../test/helpers/stack.ts';
import { ownStore, type OwnedStore } from '../../test/helpers/processes.ts';
import { freePort } from '../../scripts/local-stack.ts';
import { rawRequest, type RawOutcome } from './helpers/raw-http.ts';
import { decodeStem } from '../src/stem-decode.ts';
import { NO_BODY_MAX_BYTES } from '../src/body-guard.ts';
import { MIX_RETRY_AFTER_SEC } from '../src/mix-limits.ts';

const MiB = 2 ** 20;
const SONG_SEC = 60;
const load = (): string => readFileSync('/proc/loadavg', 'utf8').trim().split(' ').slice(0, 3).join(' ');

// ---- the rest process, seen from /proc ----

function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/** User + system CPU time of `pid`, in ms (clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

/** Samples RSS every 50 ms until stopped; returns the highest value seen. */
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

/**
 * Ms from `since` until the process went idle: the start of the first 500 ms window (sampled every
 * 100 ms) in which it used under 10 % of a core. Null if it did not within `withinMs`.
 */
async function idleAfter(pid: number, since: number, withinMs: number): Promise<{ ms: number | null; cpuAfterLeaving: number }> {
  const start = cpuMs(pid);
  const samples: { t: number; cpu: number }[] = [{ t: Date.now(), cpu: start }];
  while (Date.now() - since < withinMs + 600) {
    await new Promise((r) => setTimeout(r, 100));
    samples.push({ t: Date.now(), cpu: cpuMs(pid) });
    for (let i = 0; i < samples.length; i++) {
      const from = samples[i]!;
      const to = samples.find((s) => s.t - from.t >= 500);
      if (to && to.cpu - from.cpu < 0.1 * (to.t - from.t)) return { ms: Math.max(0, from.t - since), cpuAfterLeaving: cpuMs(pid) - start };
    }
  }
  return { ms: null, cpuAfterLeaving: cpuMs(pid) - start };
}

/** The process's established TCP connections to `port` (its socket inodes matched in /proc/net/tcp*). */
function connectionsTo(pid: number, port: number): number {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // the fd closed while we listed
    }
  }
  const portHex = port.toString(16).toUpperCase().padStart(4, '0');
  let n = 0;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[2]!.endsWith(`:${portHex}`) && f[3] === '01' && inodes.has(f[9]!)) n++;
    }
  }
  return n;
}

/**
 * GET /healthz one after another (50 ms apart) from a small child process of its own — so that
 * this test process's own pauses (its heap is large) are not counted against rest — until stopped;
 * every answer's time and when it was asked. An answer slower than 10 s is a failure.
 */
const HEALTH_PROBE = `
const net = require('node:net');
const port = Number(process.argv[1]);
let running = true;
process.on('SIGTERM', () => { running = false; });
(async () => {
  while (running) {
    const asked = Date.now();
    const line = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      let got = '';
      let connected = -1;
      let first = -1;
      s.on('connect', () => { connected = Date.now() - asked; });
      const timer = setTimeout(() => { s.destroy(); resolve('fail timeout ' + (Date.now() - asked)); }, 10000);
      s.on('data', (c) => { if (first < 0) first = Date.now() - asked; got += c.toString('latin1'); });
      s.on('error', () => undefined);
      s.on('close', () => { clearTimeout(timer); resolve(/^HTTP\\/1\\.1 200/.test(got) ? 'ok ' + asked + ' ' + (Date.now() - asked) + ' ' + connected + ' ' + first : 'fail ' + JSON.stringify(got.slice(0, 40))); });
      s.write('GET /healthz HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n');
    });
    process.stdout.write(line + '\\n');
    await new Promise((r) => setTimeout(r, 50));
  }
  process.exit(0);
})();
`;

function watchHealth(port: number): { stop(): Promise<{ times: number[]; at: number[]; phases: string[]; failures: string[] }> } {
  const child = spawn(process.execPath, ['-e', HEALTH_PROBE, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const exited = new Promise((r) => child.once('exit', r));
  return {
    async stop() {
      child.kill('SIGTERM');
      await exited;
      const times: number[] = [];
      const at: number[] = [];
      const phases: string[] = [];
      const failures: string[] = [];
      for (const line of out.split('\n').filter(Boolean)) {
        const [kind, a, b, c, d] = line.split(' ');
        if (kind === 'ok') {
          at.push(Number(a));
          times.push(Number(b));
          phases.push(`connected ${c} ms, first byte ${d} ms`);
        } else failures.push(line);
      }
      return { times, at, phases, failures };
    },
  };
}

/** The rest process's event-loop delay since the last scrape (prom-client resets it at each), in ms: [p99, max]. */
async function loopDelay(port: number): Promise<[number, number]> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const value = (name: string): number => Number(new RegExp(`^msaas_rest_nodejs_eventloop_lag_${name}_seconds (\\S+)`, 'm').exec(text)?.[1] ?? NaN) * 1000;
  return [Math.round(value('p99')), Math.round(value('max'))];
}

const percentile = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? NaN;

// ---- clients ----

interface Abandoned {
  /** Status of the answer, if its head arrived before the client left. */
  status: number | null;
  /** Body bytes received before leaving. */
  bytes: number;
  /** Ms from the request to the first body byte, if any came. */
  firstByteMs: number | null;
  error: string | null;
}

/**
 * Sends `request`, reads what comes until `readMs` after the answer's head arrived (at most
 * `giveUpMs` in all: a loaded machine may take a while to answer 100 at once), then destroys the
 * socket: a client that leaves half a second into its download.
 */
function abandon(port: number, request: string, readMs: number, giveUpMs = 10_000): Promise<Abandoned & { leftAt: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = net.connect(port, '127.0.0.1');
    let head: Buffer = Buffer.alloc(0);
    let status: number | null = null;
    let bytes = 0;
    let firstByteMs: number | null = null;
    let error: string | null = null;
    const leave = (): void => {
      clearTimeout(giveUp);
      socket.destroy();
      resolve({ status, bytes, firstByteMs, error, leftAt: Date.now() });
    };
    const giveUp = setTimeout(leave, giveUpMs);
    socket.on('error', (e) => (error = (e as NodeJS.ErrnoException).code ?? e.message));
    socket.on('data', (c: Buffer) => {
      if (status === null) {
        head = Buffer.concat([head, c]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head.toString('latin1'))?.[1] ?? 0);
        bytes = head.length - end - 4;
        setTimeout(leave, readMs);
      } else bytes += c.length;
      if (bytes > 0 && firstByteMs === null) firstByteMs = Date.now() - started;
    });
    socket.write(request);
  });
}

const mixRequest = (hash: string, query: string, forwardedFor?: string): string =>
  `GET /apiv1/jobs/${hash}/mix?${query} HTTP/1.1\r\nHost: x\r\n${forwardedFor ? `X-Forwarded-For: ${forwardedFor}\r\n` : ''}\r\n`;

interface BigBodyOutcome {
  status: number | null;
  error?: string;
  detail?: string;
  /** Body bytes the client had handed to its socket when the answer arrived. */
  sentBeforeAnswer: number;
  ms: number;
}

/**
 * A request carrying a `bytes`-long JSON body with an `mp3` member (Content-Length, or chunked),
 * written 1 MiB at a time as the socket takes it; stops sending as soon as an answer arrives.
 */
function bigBody(port: number, line: string, bytes: number, chunked: boolean): Promise<BigBodyOutcome> {
  const started = Date.now();
  const prefix = Buffer.from('{"mp3":"');
  const filler = Buffer.alloc(MiB, 'A');
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let answer: Buffer = Buffer.alloc(0);
    let sent = 0;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      socket.destroy();
      const end = answer.indexOf('\r\n\r\n');
      const status = end < 0 ? null : Number(/^HTTP\/1\.1 (\d{3})/.exec(answer.toString('latin1'))?.[1] ?? 0);
      let body: { error?: string; detail?: string } = {};
      try {
        body = JSON.parse(answer.subarray(end + 4).toString('utf8')) as typeof body;
      } catch {
        // not (all) there
      }
      resolve({ status, ...body, sentBeforeAnswer: sent, ms: Date.now() - started });
    };
    socket.on('error', () => finish());
    socket.on('close', () => finish());
    socket.on('data', (c: Buffer) => {
      answer = Buffer.concat([answer, c]);
      const end = answer.indexOf('\r\n\r\n');
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(answer.toString('latin1', 0, Math.max(0, end)));
      if (end >= 0 && length && answer.length - end - 4 >= Number(length[1])) finish();
    });
    socket.on('connect', async () => {
      const headers = [line, 'Host: x', 'Content-Type: application/json', chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${bytes}`];
      socket.write(`${headers.join('\r\n')}\r\n\r\n`);
      while (!done && sent < bytes) {
        const n = Math.min(MiB, bytes - sent);
        const piece = sent === 0 ? Buffer.concat([prefix, filler.subarray(prefix.length, n)]) : filler.subarray(0, n);
        const framed = chunked ? [Buffer.from(`${n.toString(16)}\r\n`), piece, Buffer.from('\r\n')] : [piece];
        let ok = true;
        for (const b of framed) ok = socket.write(b) && ok;
        sent += n;
        if (!ok) await new Promise((r) => { socket.once('drain', r); socket.once('close', r); });
      }
      if (!done && chunked) socket.write('0\r\n\r\n');
    });
  });
}

const jsonOf = (o: RawOutcome): { error?: string; detail?: string; queue?: unknown } =>
  o.kind === 'response' ? (JSON.parse(o.body.toString('utf8') || '{}') as { error?: string; detail?: string }) : {};

// ---- the stack ----

interface Rig {
  stack: Stack;
  store: OwnedStore;
  restPid: number;
  queue: Queue;
  objects: ObjectStore;
  dir: string;
}

async function startRig(env: Record<string, string>): Promise<Rig> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'msaas-h2-'));
  const store = await ownStore(dir);
  const stack = await startStack({
    worker: false,
    logs: false,
    env: { ...store.env, RATE_LIMIT_PER_MIN: '100000', SUBMIT_RATE_LIMIT_PER_MIN: '10000', LOG_LEVEL: 'fatal', ...env },
  });
  const config = loadConfig({}, Object.fromEntries(Object.entries(stack.env).filter((e): e is [string, string] => e[1] !== undefined)));
  const queue = new Queue(createRedis(config.REDIS_URL, 'api'), makeKeys(stack.prefix), queueOptions(config));
  const objects = createObjectStore(storeEndpointFromConfig(config)!, config);
  return { stack, store, restPid: stack.children.get('rest')!.pid!, queue, objects, dir };
}

async function stopRig(rig: Rig | undefined): Promise<void> {
  if (!rig) return;
  rig.queue.redis.disconnect();
  await rig.stack.stop();
  await rig.store.kill();
  rmSync(rig.dir, { recursive: true, force: true });
}

let song: Uint8Array;
/** A 60 s song's stem (an MP3 with its Info tag): all four stems of the test songs. */
async function stemBytes(): Promise<Uint8Array> {
  song ??= await synthesizeMp3({ seconds: SONG_SEC, seed: 22 });
  return song;
}

async function separatedSong(rig: Rig): Promise<string> {
  const hash = randomBytes(28).toString('hex');
  await storeSeparated({ queue: rig.queue, store: rig.objects }, hash, await stemBytes());
  return hash;
}

describe('the custom mix, at the shipped limits (MAX_CONCURRENT_MIXES=4, MIXES_PER_CLIENT=2), clients told apart by X-Forwarded-For', () => {
  let rig: Rig;
  // As in the cluster: the kubelet's probes and Prometheus on a listener of their own (ADMIN_PORT).
  let adminPort: number;
  beforeAll(async () => {
    adminPort = await freePort();
    rig = await startRig({ TRUST_PROXY: '127.0.0.1', ADMIN_PORT: String(adminPort) });
  }, 120_000);
  afterAll(() => stopRig(rig), 60_000);
  printLinesOnFailure(() => rig?.stack.lines);

  it('streams: the first bytes of a 60 s MP3 mix come long before the last, and the whole decodes gapless to the song\'s length; a WAV mix is exactly its Content-Length', async () => {
    const hash = await separatedSong(rig);
    const expected = infoTagSamples(await stemBytes())!;
    const started = Date.now();
    const res = await fetch(`http://127.0.0.1:${rig.stack.port}/apiv1/jobs/${hash}/mix?vocals=0.5&drums=1.5`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('audio/mpeg');
    const reader = res.body!.getReader();
    const parts: Uint8Array[] = [];
    let firstMs = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (parts.length === 0) firstMs = Date.now() - started;
      parts.push(value);
    }
    const totalMs = Date.now() - started;
    const mp3 = Buffer.concat(parts);
    expect(infoTagSamples(mp3)).toBe(expected);
    let decoded = 0;
    for await (const [l] of decodeStem(Readable.from([mp3]), 'mp3')) decoded += l.length;
    process.stdout.write(`[mix stream] ${SONG_SEC} s MP3 mix: first bytes after ${firstMs} ms, last after ${totalMs} ms, ${(mp3.length / MiB).toFixed(2)} MiB in ${parts.length} reads; decodes to ${decoded} samples (song ${expected}); load ${load()}\n`);
    expect(decoded).toBe(expected);
    expect(firstMs).toBeLessThan(totalMs / 4);

    const wav = await fetch(`http://127.0.0.1:${rig.stack.port}/apiv1/jobs/${hash}/mix?format=wav`);
    const wavBytes = Buffer.from(await wav.arrayBuffer());
    expect(Number(wav.headers.get('content-length'))).toBe(WAV_HEADER_BYTES + expected * 6);
    expect(wavBytes.length).toBe(WAV_HEADER_BYTES + expected * 6);
  }, 120_000);

  it('100 MP3 mixes from 100 clients abandoned after 0.5 s: 4 run at a time and the rest get 503; rest is idle within 2 s of the clients leaving, its store streams closed, and /healthz answers within 200 ms at p95 throughout (200 ms over a burst of 100 trivial requests on a loaded box), each within 300 ms more, and on the admin port every answer within the bound', async () => {
    const hash = await separatedSong(rig);
    await new Promise((r) => setTimeout(r, 500));
    const idleStore = connectionsTo(rig.restPid, rig.store.port);
    const rssBefore = rssBytes(rig.restPid);
    const rss = sampleRss(rig.restPid);
    const cpuBefore = cpuMs(rig.restPid);
    // The same box without the burst: /healthz for 2 s first (the machine is shared; its own delays show here).
    const health = watchHealth(rig.stack.port);
    const probe = watchHealth(adminPort);
    await loopDelay(adminPort);
    await new Promise((r) => setTimeout(r, 2000));
    const baselineLoop = await loopDelay(adminPort);
    // The control: 100 requests at once that cost nothing (GET /apiv1/info) — what accepting a burst costs this process on this box.
    const control = Date.now();
    await Promise.all(Array.from({ length: 100 }, (_, i) => abandon(rig.stack.port, `GET /apiv1/info HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 198.51.100.${i + 1}\r\n\r\n`, 500)));
    await new Promise((r) => setTimeout(r, 1000));
    const controlLoop = await loopDelay(adminPort);
    const burst = Date.now();
    const outcomes = await Promise.all(Array.from({ length: 100 }, (_, i) => abandon(rig.stack.port, mixRequest(hash, 'vocals=0', `198.51.100.${i + 1}`), 500)));
    const left = Math.max(...outcomes.map((o) => o.leftAt));
    const idle = await idleAfter(rig.restPid, left, 2000);
    const storeAfter = connectionsTo(rig.restPid, rig.store.port);
    await new Promise((r) => setTimeout(r, 300));
    const burstLoop = await loopDelay(adminPort);
    const all = await health.stop();
    const kubelet = await probe.stop();
    const kubeletBurst = kubelet.times.filter((_, i) => kubelet.at[i]! >= burst);
    const before = all.times.filter((_, i) => all.at[i]! < control);
    const inControl = all.times.filter((_, i) => all.at[i]! >= control && all.at[i]! < burst);
    const times = all.times.filter((_, i) => all.at[i]! >= burst);
    const failures = all.failures;
    const slow = all.times.map((ms, i) => ({ ms, t: all.at[i]! - burst, phases: all.phases[i]! })).filter((h) => h.ms > 200);
    const peak = rss.stop();
    const byStatus = new Map<number | null, number>();
    for (const o of outcomes) byStatus.set(o.status, (byStatus.get(o.status) ?? 0) + 1);
    const streaming = outcomes.filter((o) => o.status === 200);
    process.stdout.write(
      `[mix abandon, limits 4/2] statuses ${JSON.stringify([...byStatus])}; admitted mixes got ${streaming.map((o) => `${o.bytes} B (first after ${o.firstByteMs} ms)`).join(', ')}; ` +
        `rest idle ${idle.ms} ms after the clients left (CPU ${cpuMs(rig.restPid) - cpuBefore} ms in all, ${idle.cpuAfterLeaving} ms after leaving); store connections idle ${idleStore}, after ${storeAfter}; ` +
        `RSS ${(rssBefore / MiB).toFixed(0)} → peak ${(peak / MiB).toFixed(0)} MiB; /healthz before the burst ${before.length} answers, max ${Math.max(...before)} ms; during a control burst of 100 GET /apiv1/info ${inControl.length} answers, max ${Math.max(...inControl)} ms (event-loop delay p99/max ${controlLoop.join('/')} ms); during and after it ${times.length} answers, max ${Math.max(...times)} ms, p95 ${percentile(times, 0.95)} ms; ` +
        `over 200 ms: ${slow.map((h) => `${h.ms} ms at ${h.t} ms (${h.phases})`).join(', ') || 'none'}; event-loop delay p99/max before ${baselineLoop.join('/')} ms, during ${burstLoop.join('/')} ms; ` +
        `the admin port's /healthz (the kubelet's probe) during and after the burst ${kubeletBurst.length} answers, max ${Math.max(...kubeletBurst)} ms, p95 ${percentile(kubeletBurst, 0.95)} ms; load ${load()}\n`,
    );
    // At most 4 at once: the first 4 run; a request that arrives after one of them has left may run too.
    expect(byStatus.get(200) ?? 0).toBeGreaterThanOrEqual(4);
    expect(byStatus.get(503) ?? 0).toBeGreaterThanOrEqual(80);
    expect((byStatus.get(200) ?? 0) + (byStatus.get(503) ?? 0)).toBe(100);
    for (const o of streaming) expect(o.bytes).toBeGreaterThan(0);
    expect(idle.ms).not.toBeNull();
    expect(idle.ms!).toBeLessThanOrEqual(2000);
    expect(storeAfter).toBeLessThanOrEqual(idleStore);
    expect(failures).toEqual([]);
    expect(kubelet.failures).toEqual([]);
    // 200 ms, or on a box so loaded that 100 trivial requests at once already cost more, within 200 ms
    // of that — for 95 % of the answers. The slowest answer is a probe that arrives with the burst's
    // connections: rest (libuv) accepts one pending connection per event-loop iteration, so it waits
    // its place in that queue (the probe's phases are printed above: connected at once, first byte
    // late). With the mixes on the request thread every iteration carried their blocks and that
    // probe took 0.7–1.1 s; with them on mix threads it takes what the burst's accepts cost, 57–363 ms
    // in 4 runs at load 4–10 (docs/security.md item 1) — bounded here at 300 ms over the p95 bound.
    const bound = Math.max(200, Math.max(...inControl) + 200);
    expect(percentile(times, 0.95)).toBeLessThanOrEqual(bound);
    expect(Math.max(...times)).toBeLessThanOrEqual(bound + 300);
    expect(burstLoop[1]).toBeLessThanOrEqual(bound);
    // The kubelet's probe has a listener of its own, so it queues behind no burst: every answer within the bound.
    expect(Math.max(...kubeletBurst)).toBeLessThanOrEqual(bound);
  }, 120_000);

  it('a client over MIXES_PER_CLIENT gets 429, the process over MAX_CONCURRENT_MIXES 503, both with Retry-After and the limit named; slots free when clients leave', async () => {
    const hash = await separatedSong(rig);
    // Clients that do not read: their mixes stall on backpressure, holding their slots.
    const hold = (client: string): net.Socket => {
      const s = net.connect(rig.stack.port, '127.0.0.1');
      s.on('error', () => undefined);
      s.pause();
      s.write(mixRequest(hash, 'format=flac', client));
      return s;
    };
    /** A refused mix answers JSON at once, and rawRequest reads it to the end. */
    const ask = (client: string): Promise<RawOutcome> => rawRequest(rig.stack.port, Buffer.from(mixRequest(hash, 'format=wav', client).replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n')), { deadlineMs: 5000 });
    const a = [hold('203.0.113.1'), hold('203.0.113.1')];
    await new Promise((r) => setTimeout(r, 500));
    const third = await ask('203.0.113.1');
    expect(third.kind).toBe('response');
    if (third.kind !== 'response') return;
    expect(third.status).toBe(429);
    expect(third.headers['retry-after']).toBe(String(MIX_RETRY_AFTER_SEC));
    expect(jsonOf(third).error).toBe('too_many_mixes');
    expect(jsonOf(third).detail).toContain('MIXES_PER_CLIENT=2');

    const b = [hold('203.0.113.2'), hold('203.0.113.3')];
    await new Promise((r) => setTimeout(r, 500));
    const fifth = await ask('203.0.113.4');
    expect(fifth.kind === 'response' && fifth.status).toBe(503);
    expect(jsonOf(fifth).detail).toContain('MAX_CONCURRENT_MIXES=4');

    for (const s of [...a, ...b]) s.destroy();
    await new Promise((r) => setTimeout(r, 500));
    const again = await abandon(rig.stack.port, mixRequest(hash, 'format=wav', '203.0.113.1'), 500);
    expect(again.status).toBe(200);
    expect(again.bytes).toBeGreaterThan(0);
  }, 60_000);
});

describe('the custom mix with the limits raised to 100: the work stops when the clients go', () => {
  let rig: Rig;
  beforeAll(async () => {
    rig = await startRig({ MAX_CONCURRENT_MIXES: '100', MIXES_PER_CLIENT: '100' });
  }, 120_000);
  afterAll(() => stopRig(rig), 60_000);
  printLinesOnFailure(() => rig?.stack.lines);

  it('100 MP3 mixes of a 60 s song abandoned after 0.5 s: rest is idle within 2 s of the clients leaving and its store streams are closed', async () => {
    const hash = await separatedSong(rig);
    await new Promise((r) => setTimeout(r, 500));
    const idleStore = connectionsTo(rig.restPid, rig.store.port);
    const rssBefore = rssBytes(rig.restPid);
    const rss = sampleRss(rig.restPid);
    const cpuBefore = cpuMs(rig.restPid);
    const health = watchHealth(rig.stack.port);
    const outcomes = await Promise.all(Array.from({ length: 100 }, () => abandon(rig.stack.port, mixRequest(hash, 'vocals=0'), 500, 60_000)));
    const left = Math.max(...outcomes.map((o) => o.leftAt));
    const idle = await idleAfter(rig.restPid, left, 2000);
    const storeAfter = connectionsTo(rig.restPid, rig.store.port);
    const { times, failures } = await health.stop();
    const peak = rss.stop();
    const answered = outcomes.filter((o) => o.status === 200).length;
    const statuses = new Map<number | null, number>();
    for (const o of outcomes) statuses.set(o.status, (statuses.get(o.status) ?? 0) + 1);
    const heads = outcomes.map((o) => o.leftAt - 500).sort((a, b) => a - b);
    process.stdout.write(
      `[mix abandon, limits 100/100] statuses ${JSON.stringify([...statuses])}, ${answered} answered 200, ${outcomes.filter((o) => o.bytes > 0).length} with audio bytes (${(outcomes.reduce((a, o) => a + o.bytes, 0) / MiB).toFixed(1)} MiB in all) before leaving, the heads arriving over ${heads[heads.length - 1]! - heads[0]!} ms; rest idle ${idle.ms} ms after the clients left (CPU ${cpuMs(rig.restPid) - cpuBefore} ms in all, ${idle.cpuAfterLeaving} ms after leaving); ` +
        `store connections idle ${idleStore}, after ${storeAfter}; RSS ${(rssBefore / MiB).toFixed(0)} → peak ${(peak / MiB).toFixed(0)} MiB (+${((peak - rssBefore) / MiB).toFixed(1)}); ` +
        `/healthz ${times.length} answers, max ${Math.max(...times)} ms, p95 ${percentile(times, 0.95)} ms, failures ${failures.length}; load ${load()}\n`,
    );
    // (on a loaded box a few may fail in setup — a store request timing out — which is no mix left running either)
    expect(outcomes.filter((o) => o.status === 200 && o.bytes > 0).length).toBeGreaterThanOrEqual(90);
    expect(idle.ms).not.toBeNull();
    expect(idle.ms!).toBeLessThanOrEqual(2000);
    expect(storeAfter).toBeLessThanOrEqual(idleStore);
  }, 180_000);
});

describe('request bodies on routes that take none', () => {
  let rig: Rig;
  let hash: string;
  beforeAll(async () => {
    rig = await startRig({});
    hash = randomBytes(28).toString('hex');
  }, 120_000);
  afterAll(() => stopRig(rig), 60_000);
  printLinesOnFailure(() => rig?.stack.lines);

  it('12 GET requests carrying 85 MiB JSON bodies (an mp3 member; 6 by Content-Length, 6 chunked) are refused 413 before their bodies are read; rest RSS grows < 20 MiB, and as little for 400 MiB bodies', async () => {
    const lines = ['GET /apiv1/info HTTP/1.1', 'GET /apiv1/queue HTTP/1.1', `GET /apiv1/jobs/${hash} HTTP/1.1`, 'GET /apiv1/jobs HTTP/1.1', `GET /apiv1/jobs/${hash}/mix HTTP/1.1`, `DELETE /apiv1/jobs/${hash} HTTP/1.1`];
    const burst = (bytes: number): Promise<BigBodyOutcome[]> => Promise.all(Array.from({ length: 12 }, (_, i) => bigBody(rig.stack.port, lines[i % lines.length]!, bytes, i >= 6)));
    const measure = async (bytes: number): Promise<{ outcomes: BigBodyOutcome[]; before: number; peak: number }> => {
      await new Promise((r) => setTimeout(r, 1500));
      const before = rssBytes(rig.restPid);
      const rss = sampleRss(rig.restPid);
      const outcomes = await burst(bytes);
      await new Promise((r) => setTimeout(r, 500));
      return { outcomes, before, peak: rss.stop() };
    };
    // A burst of 12 connections sending at full speed costs a fixed amount, whatever the bodies' size:
    // libuv reads up to 32 × 64 KiB from a readable socket before JavaScript can refuse (~24 MiB of
    // buffers, garbage at once), and the heap grows to hold them once. Two bursts of 8 MiB bodies pay
    // it (one was not always enough: the collector may shrink the heap between bursts, and the next
    // burst grew it again by up to 20.5 MiB); the big bodies must need nothing beyond the highest peak so far.
    const first = await measure(8 * MiB);
    const second = await measure(8 * MiB);
    const big = await measure(85 * MiB);
    const huge = await measure(400 * MiB);
    const beyond = (m: { before: number; peak: number }, earlier: { peak: number }[]): number => (m.peak - Math.max(m.before, ...earlier.map((e) => e.peak))) / MiB;
    const mb = (x: number): string => (x / MiB).toFixed(1);
    process.stdout.write(
      `[bodies] 12 × 85 MiB to routes without a body: statuses ${big.outcomes.map((o) => o.status).join(',')}; answered after ${big.outcomes.map((o) => `${o.ms} ms/${(o.sentBeforeAnswer / MiB).toFixed(0)} MiB sent`).join(', ')}; ` +
        `rest RSS: bursts of 12 × 8 MiB ${mb(first.before)} → ${mb(first.peak)} MiB (+${mb(first.peak - first.before)}) and ${mb(second.before)} → ${mb(second.peak)} (+${mb(second.peak - second.before)}), 12 × 85 MiB ${mb(big.before)} → ${mb(big.peak)} (+${mb(big.peak - big.before)}; ${beyond(big, [first, second]).toFixed(1)} beyond the peak so far), 12 × 400 MiB ${mb(huge.before)} → ${mb(huge.peak)} (+${mb(huge.peak - huge.before)}; ${beyond(huge, [first, second, big]).toFixed(1)} beyond); load ${load()}\n`,
    );
    for (const o of [...first.outcomes, ...second.outcomes, ...big.outcomes, ...huge.outcomes]) {
      expect(o.status).toBe(413);
      expect(o.error).toBe('payload_too_large');
      expect(o.detail).toContain(`${NO_BODY_MAX_BYTES} bytes`);
      // answered while the client was still sending: long before its body went out
      expect(o.sentBeforeAnswer).toBeLessThan(40 * MiB);
    }
    expect(beyond(big, [first, second])).toBeLessThan(20);
    expect(beyond(huge, [first, second, big])).toBeLessThan(20);
    // rest still answers
    const info = await rawRequest(rig.stack.port, Buffer.from('GET /apiv1/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    expect(info.kind === 'response' && info.status).toBe(200);
  }, 180_000);

  it("the lab's GET /apiv1/queue with the JSON body null still answers; bodies up to NO_BODY_MAX_BYTES are ignored, one byte more is refused (by length or chunked)", async () => {
    const req = (line: string, headers: string[], body: string): Promise<RawOutcome> =>
      rawRequest(rig.stack.port, Buffer.from(`${line}\r\nHost: x\r\nConnection: close\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n${body}`));
    const lab = await req('GET /apiv1/queue HTTP/1.1', ['Content-Type: application/json', 'Content-Length: 4'], 'null');
    expect(lab.kind === 'response' && lab.status).toBe(200);
    expect(jsonOf(lab).queue).toEqual([]);
    const small = 'x'.repeat(NO_BODY_MAX_BYTES);
    expect(await req('GET /apiv1/info HTTP/1.1', [`Content-Length: ${small.length}`], small)).toMatchObject({ kind: 'response', status: 200 });
    expect(await req('GET /apiv1/info HTTP/1.1', [`Content-Length: ${small.length + 1}`], `${small}x`)).toMatchObject({ kind: 'response', status: 413 });
    const chunk = (s: string): string => `${s.length.toString(16)}\r\n${s}\r\n`;
    expect(await req('GET /apiv1/queue HTTP/1.1', ['Content-Type: application/json', 'Transfer-Encoding: chunked'], `${chunk('nu')}${chunk('ll')}0\r\n\r\n`)).toMatchObject({ kind: 'response', status: 200 });
    expect(await req('GET /apiv1/info HTTP/1.1', ['Transfer-Encoding: chunked'], `${chunk(small)}${chunk('x')}0\r\n\r\n`)).toMatchObject({ kind: 'response', status: 413 });
    // and the route that takes a body still does (a bad one is refused for what it is, not its size)
    const submit = await req('POST /apiv1/separate HTTP/1.1', ['Content-Type: application/json', 'Content-Length: 13'], '{"mp3": "!!"}');
    expect(submit.kind === 'response' && submit.status).toBe(400);
    expect(jsonOf(submit).error).toBe('bad_base64');
  }, 60_000);
});
