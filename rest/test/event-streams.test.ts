// Event streams with limits, against real rest processes (node rest/src/main.ts) on a redis-server
// of this file's own: the cap per client address / per API key and per process (429), the lifetime
// (the stream ends, the reconnect gets the current state), slots freed by every way a stream ends,
// and the Redis commands one job event costs — counted with MONITOR — independent of the number of
// streams that watch the job.
import http from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeKeys, Queue } from '@msaas/common';
import { TestWorker } from '../../common/test/test-worker.ts';
import { startTestStore, waitFor, type TestStore } from '../../test/helpers/env.ts';
import { ownRedis, type OwnedRedis } from '../../test/helpers/processes.ts';
import { startRestProcess, stopRestProcess, type RestProcess } from './helpers/rest-process.ts';



interface Frame {
  event: string;
  data: string;
}

/** One event stream over its own socket, parsed as it arrives. */
interface Stream {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The body of a refused stream (JSON). */
  body: string;
  frames: Frame[];
  ended: Promise<void>;
  isEnded(): boolean;
  close(): void;
  /** Resolves with the first frame at or after `from` that matches. */
  next(match: (f: Frame) => boolean, from?: number, timeoutMs?: number): Promise<Frame>;
}

/** `localAddress`: a loopback source address of its own (each one is a client of its own for the cap). */
function openStream(port: number, hash: string, headers: Record<string, string> = {}, localAddress?: string): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const where = { host: '127.0.0.1', port, path: `/apiv1/jobs/${hash}/events`, agent: false, headers, ...(localAddress ? { localAddress } : {}) };
    const req = http.get(where, (res) => {
      const frames: Frame[] = [];
      const waiters = new Set<() => void>();
      let buffer = '';
      let body = '';
      let ended = false;
      const endedP = new Promise<void>((r) => res.once('close', () => ((ended = true), r(), waiters.forEach((w) => w()))));
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (res.statusCode !== 200) return void (body += chunk);
        buffer += chunk;
        let idx: number;
        while ((idx = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, idx).split('\n');
          buffer = buffer.slice(idx + 2);
          const event = block.find((l) => l.startsWith('event: '))?.slice(7);
          const data = block.find((l) => l.startsWith('data: '))?.slice(6);
          if (event && data !== undefined) frames.push({ event, data });
        }
        waiters.forEach((w) => w());
      });
      resolve({
        status: res.statusCode!,
        headers: res.headers,
        get body() {
          return body;
        },
        frames,
        ended: endedP,
        isEnded: () => ended,
        close: () => req.destroy(),
        next(match, from = 0, timeoutMs = 10_000) {
          return new Promise((ok, fail) => {
            const check = (): void => {
              const f = frames.slice(from).find(match);
              if (f) return done(() => ok(f));
              if (ended) done(() => fail(new Error(`stream ended without the frame; got ${JSON.stringify(frames)}`)));
            };
            const timer = setTimeout(() => done(() => fail(new Error(`no such frame within ${timeoutMs} ms; got ${JSON.stringify(frames)}`))), timeoutMs);
            const done = (f: () => void): void => {
              clearTimeout(timer);
              waiters.delete(check);
              f();
            };
            waiters.add(check);
            check();
          });
        },
      });
    });
    req.on('error', reject);
  });
}

const jobOf = (f: Frame): { state: string; progress: number; filename: string | null } => JSON.parse(f.data);
const newHash = (): string => randomBytes(28).toString('hex');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const cpuMs = (pid: number): number => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, in clock ticks of 10 ms
};

let redis: OwnedRedis;
let store: TestStore;
let dir: string;
/** Open API, 20 streams per address, long lifetime: the cap and the command count (Redis db 0). */
let open: RestProcess | undefined;
/** API keys, 3 streams per key, 5 per process (db 1). */
let keyed: RestProcess | undefined;
/** Open API, 2 streams per address, 2 s lifetime (db 2). */
let short: RestProcess | undefined;
const queues: Queue[] = [];
const conns: Redis[] = [];

function queueOn(db: number, prefix: string): Queue {
  const conn = new Redis(`${redis.url}/${db}`);
  conns.push(conn);
  const q = new Queue(conn, makeKeys(prefix));
  queues.push(q);
  return q;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'msaas-streams-'));
  [redis, store] = await Promise.all([ownRedis(dir), startTestStore()]);
  const env = (db: number, more: Record<string, string>): Record<string, string> => ({
    REDIS_URL: `${redis.url}/${db}`,
    REDIS_PREFIX: `streams${db}:`,
    MINIO_ENDPOINT: store.endpoint.endPoint,
    MINIO_PORT: String(store.endpoint.port),
    MINIO_ACCESS_KEY: store.endpoint.accessKey,
    MINIO_SECRET_KEY: store.endpoint.secretKey,
    MINIO_USE_SSL: 'false',
    LOG_LEVEL: 'warn',
    PORT: '0',
    HOST: '127.0.0.1',
    RETENTION_DAYS: '0',
    RATE_LIMIT_PER_MIN: '100000',
    ...more,
  });
  [open, keyed, short] = await Promise.all([
    startRestProcess(env(0, { STREAMS_PER_CLIENT: '20', STREAMS_PER_PROCESS: '1000', STREAM_MAX_LIFETIME_SEC: '600' })),
    startRestProcess(env(1, { API_KEYS: 'alice:alice-key-1,bob:bob-key-2', STREAMS_PER_CLIENT: '3', STREAMS_PER_PROCESS: '5', STREAM_MAX_LIFETIME_SEC: '600' })),
    startRestProcess(env(2, { STREAMS_PER_CLIENT: '2', STREAMS_PER_PROCESS: '100', STREAM_MAX_LIFETIME_SEC: '2' })),
  ]);
  // rest reports listening before its job-event subscription is confirmed: wait for all three.
  const probe = new Redis(redis.url);
  let lastCounts = '';
  try {
    await waitFor(
      async () => {
        const counts = (await probe.call('PUBSUB', 'NUMSUB', 'streams0:job-events', 'streams1:job-events', 'streams2:job-events')) as (string | number)[];
        lastCounts = counts.join(' ');
        return counts.filter((_, i) => i % 2 === 1).every((n) => Number(n) === 1);
      },
      { timeoutMs: 20_000, what: 'the rest processes to subscribe to their job events' },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message} (PUBSUB NUMSUB: ${lastCounts}); clients:\n${String(await probe.call('CLIENT', 'LIST'))}\nrest said:\n${[open, keyed, short].map((r) => r?.output.join('')).join('\n---\n')}`);
  } finally {
    probe.disconnect();
  }
}, 90_000);

afterEach((ctx) => {
  if (ctx.task.result?.state !== 'fail') return;
  for (const [name, r] of [['open', open], ['keyed', keyed], ['short', short]] as const) {
    process.stdout.write(`--- ${name} rest output ---\n${(r?.output ?? []).join('').slice(-4000)}\n`);
  }
});

afterAll(async () => {
  await Promise.all([stopRestProcess(open), stopRestProcess(keyed), stopRestProcess(short)]);
  for (const c of conns) c.disconnect();
  await store?.close();
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the cap on open streams', () => {
  it('admits STREAMS_PER_CLIENT of 1,000 stream attempts from one address and answers the rest 429 too_many_streams with Retry-After', async () => {
    const queue = queueOn(0, 'streams0:');
    const hash = newHash();
    await queue.submit({ hash, sizeBytes: 1 });
    const started = Date.now();
    const streams: Stream[] = [];
    for (let i = 0; i < 1000; i += 50) {
      streams.push(...(await Promise.all(Array.from({ length: 50 }, () => openStream(open!.port, hash)))));
    }
    const tookMs = Date.now() - started;
    const admitted = streams.filter((s) => s.status === 200);
    const refused = streams.filter((s) => s.status !== 200);
    try {
      expect(admitted).toHaveLength(20);
      expect(refused).toHaveLength(980);
      await Promise.all(refused.map((s) => s.ended));
      for (const s of refused) {
        expect(s.status).toBe(429);
        expect(s.headers['content-type']).toMatch(/^application\/json/);
        expect(Number(s.headers['retry-after'])).toBeGreaterThanOrEqual(1);
        expect(Number(s.headers['retry-after'])).toBeLessThanOrEqual(600);
        const body = JSON.parse(s.body) as { error: string; detail: string };
        expect(body.error).toBe('too_many_streams');
        expect(body.detail).toMatch(/at most 20 event streams .* per client address \(STREAMS_PER_CLIENT\)/);
      }
      // The admitted ones are real streams: each got the current state.
      await Promise.all(admitted.map((s) => s.next((f) => f.event === 'job')));
      process.stdout.write(`1,000 stream attempts from one address: ${admitted.length} open, ${refused.length} × 429 in ${tookMs} ms (load ${readFileSync('/proc/loadavg', 'utf8').trim()})\n`);
    } finally {
      for (const s of admitted) s.close();
    }
    // A client that goes away frees its slot: the next 20 are admitted again.
    await Promise.all(admitted.map((s) => s.ended));
    const again = await waitFor(
      async () => {
        const s = await openStream(open!.port, hash);
        if (s.status === 200) return s;
        s.close();
        return null;
      },
      { timeoutMs: 5000, what: 'a slot freed by a client that left' },
    );
    const more = await Promise.all(Array.from({ length: 19 }, () => openStream(open!.port, hash)));
    try {
      expect(more.map((s) => s.status)).toEqual(new Array(19).fill(200));
      expect((await openStream(open!.port, hash)).status).toBe(429);
    } finally {
      for (const s of [again, ...more]) s.close();
    }
  }, 60_000);

  it('counts per API key when the request carries one, and refuses beyond STREAMS_PER_PROCESS naming that limit', async () => {
    const queue = queueOn(1, 'streams1:');
    const hash = newHash();
    await queue.submit({ hash, tenant: 'alice', sizeBytes: 1 });
    await queue.submit({ hash, tenant: 'bob', sizeBytes: 1 });
    const as = (key: string) => ({ 'X-API-Key': key });
    const alice = await Promise.all([0, 1, 2].map(() => openStream(keyed!.port, hash, as('alice-key-1'))));
    const opened: Stream[] = [...alice];
    try {
      expect(alice.map((s) => s.status)).toEqual([200, 200, 200]);
      const fourth = await openStream(keyed!.port, hash, as('alice-key-1'));
      expect(fourth.status).toBe(429);
      await fourth.ended;
      expect(JSON.parse(fourth.body)).toMatchObject({ error: 'too_many_streams', detail: expect.stringMatching(/at most 3 event streams .* per API key \(STREAMS_PER_CLIENT\)/) });
      // Same address, another key: its own allowance, until the process is full (5).
      const bob = await Promise.all([0, 1].map(() => openStream(keyed!.port, hash, as('bob-key-2'))));
      opened.push(...bob);
      expect(bob.map((s) => s.status)).toEqual([200, 200]);
      const sixth = await openStream(keyed!.port, hash, as('bob-key-2'));
      expect(sixth.status).toBe(429);
      await sixth.ended;
      expect(Number(sixth.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(JSON.parse(sixth.body)).toMatchObject({ error: 'too_many_streams', detail: expect.stringMatching(/maximum of 5 open event streams \(STREAMS_PER_PROCESS\)/) });
      // Each tenant's stream carries its own claim (the shared read still reads each tenant's claim).
      const a = jobOf(await alice[0]!.next((f) => f.event === 'job'));
      const b = jobOf(await bob[0]!.next((f) => f.event === 'job'));
      expect(a.state).toBe('queued');
      expect(b.state).toBe('queued');
      // A HEAD holds no slot and is not refused.
      const head = await fetch(`http://127.0.0.1:${keyed!.port}/apiv1/jobs/${hash}/events`, { method: 'HEAD', headers: as('bob-key-2') });
      expect(head.status).toBe(200);
      expect(head.headers.get('content-type')).toMatch(/text\/event-stream/);
    } finally {
      for (const s of opened) s.close();
    }
  }, 30_000);
});

describe('the lifetime, and slots freed however a stream ends', () => {
  it('ends a stream within STREAM_MAX_LIFETIME_SEC, frees its slot, and the reconnect opens with the current state', async () => {
    const queue = queueOn(2, 'streams2:');
    const hash = newHash();
    await queue.submit({ hash, sizeBytes: 1 });
    const t0 = Date.now();
    const [first, second] = await Promise.all([openStream(short!.port, hash), openStream(short!.port, hash)]);
    try {
      expect([first!.status, second!.status]).toEqual([200, 200]);
      expect(jobOf(await first!.next((f) => f.event === 'job')).state).toBe('queued');
      const third = await openStream(short!.port, hash);
      expect(third.status).toBe(429);
      // Meanwhile the job moves on.
      const worker = new TestWorker(queue);
      await worker.claim(hash);
      await worker.progress(hash, 0.25);
      await Promise.all([first!.ended, second!.ended]);
      const lived = Date.now() - t0;
      expect(lived).toBeGreaterThanOrEqual(1600 - 50); // the lifetime is drawn in [0.8, 1] × 2 s
      expect(lived).toBeLessThan(4000);
      // The reconnect (what EventSource does after retry:) gets a freed slot and the current state at once.
      const [again, andAgain] = await Promise.all([openStream(short!.port, hash), openStream(short!.port, hash)]);
      expect([again.status, andAgain.status]).toEqual([200, 200]);
      expect(jobOf(await again.next((f) => f.event === 'job'))).toMatchObject({ state: 'processing', progress: 0.25 });
      again.close();
      andAgain.close();
    } finally {
      first?.close();
      second?.close();
    }
  }, 30_000);

  it('ends the stream on a terminal state and on a deleted song (gone), freeing the slots', async () => {
    const queue = queueOn(0, 'streams0:');
    const address = '127.0.0.99';
    const [failing, deleted] = [newHash(), newHash()];
    await queue.submit({ hash: failing, sizeBytes: 1 });
    await queue.submit({ hash: deleted, sizeBytes: 1 });
    // A song this client does not claim is a 404 that holds no slot (25 one after another, cap 20).
    for (let i = 0; i < 25; i++) {
      const s = await openStream(open!.port, newHash(), {}, address);
      expect(s.status).toBe(404);
      await s.ended;
    }
    const onFailing = await Promise.all(Array.from({ length: 10 }, () => openStream(open!.port, failing, {}, address)));
    const onDeleted = await Promise.all(Array.from({ length: 10 }, () => openStream(open!.port, deleted, {}, address)));
    const all = [...onFailing, ...onDeleted];
    try {
      expect(all.map((s) => s.status)).toEqual(new Array(20).fill(200));
      expect((await openStream(open!.port, failing, {}, address)).status).toBe(429);
      await Promise.all(all.map((s) => s.next((f) => f.event === 'job')));
      const worker = new TestWorker(queue);
      await worker.claim(failing);
      await worker.fail(failing, 'test');
      const del = await fetch(`http://127.0.0.1:${open!.port}/apiv1/jobs/${deleted}`, { method: 'DELETE', headers: { 'X-Requested-With': 'test' } });
      expect(del.status).toBe(200);
      await Promise.all(onFailing.map((s) => s.next((f) => f.event === 'job' && jobOf(f).state === 'failed')));
      await Promise.all(onDeleted.map((s) => s.next((f) => f.event === 'gone')));
      await Promise.all(all.map((s) => s.ended));
      // All 20 slots are free again; a stream on a finished job sends its last state and ends at once.
      const after = await Promise.all(Array.from({ length: 20 }, () => openStream(open!.port, failing, {}, address)));
      expect(after.map((s) => s.status)).toEqual(new Array(20).fill(200));
      await Promise.all(after.map((s) => s.ended));
      expect(after.every((s) => s.frames.length === 1 && jobOf(s.frames[0]!).state === 'failed')).toBe(true);
    } finally {
      for (const s of all) s.close();
    }
  }, 30_000);

  it('ends every open stream on SIGTERM, and the process exits', async () => {
    const queue = queueOn(2, 'streams2:');
    const hash = newHash();
    await queue.submit({ hash, sizeBytes: 1 });
    const streams = await Promise.all([openStream(short!.port, hash), openStream(short!.port, hash)]);
    expect(streams.map((s) => s.status)).toEqual([200, 200]);
    await Promise.all(streams.map((s) => s.next((f) => f.event === 'job')));
    const t0 = Date.now();
    await stopRestProcess(short);
    await Promise.all(streams.map((s) => s.ended));
    expect(Date.now() - t0).toBeLessThan(1500); // well before the 2 s lifetime or the shutdown grace
  }, 30_000);
});

describe('one Redis read per job event', () => {
  /** Commands the `open` rest process sends on db 0 while `act` runs (MONITOR; the test's own connections excluded). */
  async function commandsDuring(exclude: Set<string>, act: () => Promise<void>): Promise<string[]> {
    const client = new Redis(redis.url);
    const monitor = await client.monitor();
    const seen: string[] = [];
    monitor.on('monitor', (_time: string, args: string[], source: string, database: string) => {
      if (database === '0' && source !== 'lua' && !exclude.has(source)) seen.push(args[0]!.toLowerCase());
    });
    try {
      await act();
      await sleep(100);
    } finally {
      monitor.disconnect();
      client.disconnect();
    }
    return seen;
  }

  it('costs the same Redis commands per job event for 1 stream and for 300 streams watching the job', async () => {
    const queue = queueOn(0, 'streams0:');
    const own = new Set<string>();
    const addrOf = async (c: Redis): Promise<string> => String(await c.call('CLIENT', 'INFO')).match(/addr=(\S+)/)![1]!;
    own.add(await addrOf(queue.redis));
    const events = 10;
    const figures: { streams: number; commands: string[]; cpuMs: number }[] = [];
    // 300 streams need more than one address's 20: streams from 15 loopback addresses.
    for (const count of [1, 300]) {
      const hash = newHash();
      await queue.submit({ hash, sizeBytes: 1 });
      const worker = new TestWorker(queue);
      await worker.claim(hash);
      const streams: Stream[] = [];
      for (let i = 0; i < count; i += 20) {
        const n = Math.min(20, count - i);
        const address = `127.0.0.${2 + i / 20}`;
        streams.push(...(await Promise.all(Array.from({ length: n }, () => openStream(open!.port, hash, {}, address)))));
      }
      try {
        expect(streams.every((s) => s.status === 200)).toBe(true);
        await Promise.all(streams.map((s) => s.next((f) => f.event === 'job' && jobOf(f).state === 'processing')));
        const cpuBefore = cpuMs(open!.child.pid!);
        const commands = await commandsDuring(own, async () => {
          for (let e = 1; e <= events; e++) {
            const fraction = e / 100;
            await worker.progress(hash, fraction);
            // Every stream gets every change before the next one is made.
            await Promise.all(streams.map((s) => s.next((f) => f.event === 'job' && jobOf(f).progress === fraction)));
          }
        });
        figures.push({ streams: count, commands, cpuMs: cpuMs(open!.child.pid!) - cpuBefore });
      } finally {
        for (const s of streams) s.close();
        await Promise.all(streams.map((s) => s.ended));
      }
    }
    const [one, many] = figures as [(typeof figures)[0], (typeof figures)[0]];
    const tally = (c: string[]): Record<string, number> => c.reduce<Record<string, number>>((t, x) => ((t[x] = (t[x] ?? 0) + 1), t), {});
    process.stdout.write(
      `Redis commands for ${events} job events: 1 stream ${one.commands.length} ${JSON.stringify(tally(one.commands))}, rest CPU ${one.cpuMs} ms; ` +
        `300 streams ${many.commands.length} ${JSON.stringify(tally(many.commands))}, rest CPU ${many.cpuMs} ms (load ${readFileSync('/proc/loadavg', 'utf8').trim()})\n`,
    );
    // One transaction per event: MULTI, HGETALL job, LPOS, LLEN, HGETALL claim (one tenant), EXEC.
    expect(one.commands.length).toBe(events * 6);
    expect(many.commands.length).toBe(one.commands.length);
    expect(tally(many.commands)).toEqual({ multi: events, hgetall: 2 * events, lpos: events, llen: events, exec: events });
  }, 60_000);
});
