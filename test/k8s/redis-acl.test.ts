// The Redis ACL of the manifests, on a real redis-server: redis/base/users.acl rendered by
// redis/base/render-acl.sh (what the StatefulSet's init container runs), loaded with
// redis/base/redis.conf (port, directory and aclfile moved to this test's own). Each service's user
// runs what that service runs — the queue's operations through common's Queue (the Lua scripts run
// as the caller, so their commands and keys are checked too), rate limits, the sweep lock, log
// publishing, job events — and the real rest, worker and logs processes do a whole song with their
// own users. Everything else is refused: FLUSHALL, CONFIG, KEYS, other key prefixes, other channels.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, Queue, TRACKS, makeKeys, scriptSource } from '@msaas/common';
import { freePort, startLocalStack, type LocalStack } from '../../scripts/local-stack.ts';
import { exited } from '../helpers/processes.ts';
import { standinModelPath } from '../helpers/standin-model.ts';
import { clip } from '../reliability/support.ts';
import { repoRoot } from './render.ts';

const BASE = path.join(repoRoot, 'redis/base');
const PASSWORDS = {
  REDIS_REST_PASSWORD: 'test-rest-0123456789abcdef',
  REDIS_WORKER_PASSWORD: 'test-worker-0123456789abcdef',
  REDIS_LOGS_PASSWORD: 'test-logs-0123456789abcdef',
  REDIS_KEDA_PASSWORD: 'test-keda-0123456789abcdef',
};
type User = 'rest' | 'worker' | 'logs' | 'keda';
const passwordOf: Record<User, string> = {
  rest: PASSWORDS.REDIS_REST_PASSWORD,
  worker: PASSWORDS.REDIS_WORKER_PASSWORD,
  logs: PASSWORDS.REDIS_LOGS_PASSWORD,
  keda: PASSWORDS.REDIS_KEDA_PASSWORD,
};
/** Which service runs which queue script (common/src/queue/index.ts callers in rest/src and worker/src). */
type ScriptName = Parameters<typeof scriptSource>[0];
const SCRIPTS_BY_USER: Record<'rest' | 'worker', ScriptName[]> = {
  rest: ['submit-12', 'remove-stem-4', 'drop-claim-11', 'expire-song-5'],
  worker: [
    'start-4', 'progress-3', 'record-stems-3', 'complete-6', 'fail-10', 'release-6', 'reap-9', 'heartbeat-2', 'set-callback-status-3', 'charge-decoded-4',
    // a song split over workers (issue 23)
    'split-8', 'range-start-5', 'range-done-3', 'range-piece-2', 'range-fail-11', 'range-release-7', 'reap-ranges-9',
  ],
};
/** KEDA's redis scaler (pkg/scalers/redis_scaler.go): one EVAL of this on the list. */
const KEDA_SCRIPT = `local listName = KEYS[1]
local listType = redis.call('type', listName).ok
local cmd = { zset = 'zcard', set = 'scard', list = 'llen', hash = 'hlen', none = 'llen' }
return redis.call(cmd[listType], listName)`;

let dir: string;
let port: number;
let server: ChildProcess;
const clients: Redis[] = [];

const urlOf = (user: User) => `redis://${user}:${passwordOf[user]}@127.0.0.1:${port}`;
function connect(user: User | null): Redis {
  const url = user ? urlOf(user) : `redis://127.0.0.1:${port}`;
  const c = new Redis(url, { maxRetriesPerRequest: 0, enableReadyCheck: user !== null, retryStrategy: () => null, lazyConnect: false });
  c.on('error', () => undefined);
  clients.push(c);
  return c;
}
const refused = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
  } catch (err) {
    return (err as Error).message;
  }
  return 'ALLOWED';
};

function renderAcl(env: Record<string, string>, out: string) {
  return spawnSync('sh', [path.join(BASE, 'render-acl.sh'), path.join(BASE, 'users.acl'), out], { encoding: 'utf8', env: { PATH: process.env.PATH, ...env } });
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'msaas-acl-'));
  const aclPath = path.join(dir, 'users.acl');
  const r = renderAcl(PASSWORDS, aclPath);
  if (r.status !== 0) throw new Error(`render-acl.sh failed: ${r.stderr}`);
  port = await freePort();
  const conf = readFileSync(path.join(BASE, 'redis.conf'), 'utf8')
    .replace(/^bind .*$/m, 'bind 127.0.0.1')
    .replace(/^port .*$/m, `port ${port}`)
    .replace(/^dir .*$/m, `dir ${dir}`)
    .replace(/^aclfile .*$/m, `aclfile ${aclPath}`);
  writeFileSync(path.join(dir, 'redis.conf'), conf);
  server = spawn('redis-server', [path.join(dir, 'redis.conf')], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const probe = spawnSync('redis-cli', ['-p', String(port), '--user', 'probe', 'ping'], { encoding: 'utf8', env: { ...process.env, REDISCLI_AUTH: 'probe' } });
    if (probe.stdout.trim() === 'PONG') return;
    if (server.exitCode !== null) throw new Error(`redis-server exited (${server.exitCode})`);
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error('redis-server with the ACL did not answer');
}, 30_000);

afterAll(async () => {
  for (const c of clients) c.disconnect();
  if (server && server.exitCode === null) {
    const done = exited(server);
    server.kill('SIGTERM');
    await done;
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('render-acl.sh', () => {
  it('writes each password only as its SHA-256, and drops the comments', () => {
    const acl = readFileSync(path.join(dir, 'users.acl'), 'utf8');
    for (const pw of Object.values(PASSWORDS)) expect(acl).not.toContain(pw);
    expect(acl).not.toMatch(/\{\{|^#/m);
    expect(acl.trim().split('\n').map((l) => l.split(' ')[1])).toEqual(['default', 'probe', 'rest', 'worker', 'logs', 'keda']);
    expect(acl).toMatch(/^user rest on #[0-9a-f]{64} /m);
  });

  it('refuses a missing, short or URL-unsafe password, naming it, and writes no file', () => {
    const out = path.join(dir, 'refused.acl');
    const cases: [Record<string, string>, RegExp][] = [
      [{ ...PASSWORDS, REDIS_LOGS_PASSWORD: '' }, /REDIS_LOGS_PASSWORD is not set/],
      [{ ...PASSWORDS, REDIS_KEDA_PASSWORD: 'short' }, /REDIS_KEDA_PASSWORD is shorter than 16/],
      [{ ...PASSWORDS, REDIS_REST_PASSWORD: 'abc/def+ghi=jklmnopqrs' }, /REDIS_REST_PASSWORD has characters that are not URL-safe/],
    ];
    for (const [env, message] of cases) {
      const r = renderAcl(env, out);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(message);
      expect(spawnSync('test', ['-e', out]).status, 'no ACL file left behind').not.toBe(0);
    }
  });
});

describe('redis.conf and the default user', () => {
  it('keeps protected mode on and loads the ACL file', () => {
    const conf = readFileSync(path.join(BASE, 'redis.conf'), 'utf8');
    expect(conf).toMatch(/^protected-mode yes$/m);
    expect(conf).not.toMatch(/^protected-mode no/m);
    expect(conf).toMatch(/^aclfile \/run\/redis-acl\/users\.acl$/m);
    expect(conf).not.toMatch(/^requirepass/m);
  });

  it('an unauthenticated connection can run nothing (the default user is off)', async () => {
    const anon = connect(null);
    expect(await refused(anon.ping())).toMatch(/NOAUTH/);
    expect(await refused(anon.get('toWorker'))).toMatch(/NOAUTH/);
    expect(await refused(anon.call('AUTH', 'default', 'anything'))).toMatch(/WRONGPASS/);
  });

  it('a wrong password is refused', async () => {
    const c = connect(null);
    expect(await refused(c.call('AUTH', 'rest', 'wrong-password-0000'))).toMatch(/WRONGPASS/);
    expect(await refused(c.get('job:x'))).toMatch(/NOAUTH/);
  });

  it('the probe user may PING (the readiness command of the manifest) and nothing else', async () => {
    const sts = readFileSync(path.join(BASE, 'statefulset.yaml'), 'utf8');
    const cmd = /"sh", "-c", "(REDISCLI_AUTH=probe redis-cli --user probe ping \| grep -q PONG)"/.exec(sts)![1]!;
    const r = spawnSync('sh', ['-c', cmd.replace('redis-cli', `redis-cli -h 127.0.0.1 -p ${port}`)], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const probe = new Redis(`redis://probe:x@127.0.0.1:${port}`, { enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined);
    clients.push(probe);
    expect(await probe.ping()).toBe('PONG');
    expect(await refused(probe.get('toWorker'))).toMatch(/NOPERM/);
    expect(await refused(probe.call('INFO'))).toMatch(/NOPERM/);
  });
});

describe('each user can run what its service runs', () => {
  it("the commands of every queue script are granted to the user that runs it (scan of common/src/queue/lua)", () => {
    const acl = readFileSync(path.join(dir, 'users.acl'), 'utf8');
    const granted = (user: string) => new Set([...acl.split('\n').find((l) => l.startsWith(`user ${user} `))!.matchAll(/\+([a-z|]+)/g)].map((m) => m[1]!));
    for (const [user, scripts] of Object.entries(SCRIPTS_BY_USER)) {
      const has = granted(user);
      for (const s of scripts) {
        const used = new Set([...scriptSource(s).lua.matchAll(/redis\.p?call\('([A-Za-z]+)'/g)].map((m) => m[1]!.toLowerCase()));
        expect([...used].filter((c) => !has.has(c)), `${user} runs ${s}`).toEqual([]);
      }
      expect(has.has('eval') && has.has('evalsha'), user).toBe(true);
    }
  });

  it("rest and worker run a song's whole life through common's Queue, each as its own user", async () => {
    const keys = makeKeys('');
    const rest = new Queue(connect('rest'), keys, { retentionSec: 3600 });
    const worker = new Queue(connect('worker'), keys, { retentionSec: 3600 });
    const blocking = connect('worker');
    const events = connect('rest');
    const seen: string[] = [];
    events.on('message', (_ch: string, hash: string) => seen.push(hash));
    await events.subscribe(keys.events);

    const hash = 'a'.repeat(64);
    expect((await rest.submit({ hash, tenant: 'acme', sizeBytes: 1000, audioSec: 10, filename: 'song.mp3', maxActive: 5, maxAudioSecPerDay: 3600 })).result).toBe('enqueued');
    expect(await rest.length()).toBe(1);
    expect(await rest.waiting('acme')).toEqual([hash]);
    expect(await rest.position(hash)).toBe(0);
    expect(await rest.activeCount('acme')).toBe(1);
    expect(await rest.usageSec('acme')).toBeCloseTo(10);

    await worker.heartbeat('w1', 30);
    const claimed = await worker.claim(blocking, 'w1', 1);
    expect(claimed?.hash).toBe(hash);
    expect(await worker.held('w1')).toEqual([hash]);
    expect(await worker.progress('w1', hash, 0.5)).toBe(true);
    expect((await worker.chargeDecoded('w1', hash, 12, { maxAudioSecPerDay: 3600 })).outcome).toBe('charged');
    expect(await rest.usageSec('acme')).toBeCloseTo(12);
    expect(await worker.getClaimedJob(hash, 'acme')).not.toBeNull();
    expect(await worker.recordStems('w1', hash, TRACKS)).toBe('owned');
    const done = await worker.complete('w1', hash, 12.5);
    expect(done.outcome).toBe('done');
    expect(await worker.setCallbackStatus(hash, 'acme', 'delivered', (await rest.getJob(hash))!.finishedAt!)).toBe(true);
    await worker.clearHeartbeat('w1');

    expect((await rest.getClaimedJob(hash, 'acme'))?.job.state).toBe('done');
    expect(await rest.getClaim(hash, 'acme')).not.toBeNull();
    expect((await rest.library('acme', { limit: 10 })).map((c) => c.job.hash)).toEqual([hash]);
    expect(await rest.removeStem(hash, 'acme', TRACKS[0]!)).toBe('last');
    expect(await rest.dueForExpiry(10, Date.now() + 7200_000)).toEqual([hash]);
    await rest.retryExpiry(hash, Date.now() + 7200_000);
    expect(await rest.expireSong(hash, Date.now() + 7200_000)).toBe(true);

    // A second song: failed, handed back, reaped after its worker's heartbeat is gone, deleted.
    const other = 'b'.repeat(64);
    expect((await rest.submit({ hash: other, tenant: 'acme', sizeBytes: 1000 })).result).toBe('enqueued');
    await worker.heartbeat('w2', 30);
    await worker.claim(blocking, 'w2', 1);
    expect(await worker.fail('w2', other, 'decode failed', { retryable: true, maxAttempts: 3 })).toBe('retry');
    await worker.claim(blocking, 'w2', 1);
    expect(await worker.release('w2', other)).toBe(true);
    await worker.claim(blocking, 'w2', 1);
    await worker.clearHeartbeat('w2');
    expect((await worker.reap(3)).requeued).toBe(1);
    expect(await worker.dead()).toEqual([]);
    expect(await rest.dropClaim(other, 'acme')).toBe('last');
    expect(await rest.length()).toBe(0);

    // A third song, split over workers (issue 23): split, ranges claimed, watched, failed, handed
    // back, reaped and done, the last one's worker stitching; deleted while a range waits.
    const long = 'c'.repeat(64);
    expect((await rest.submit({ hash: long, tenant: 'acme', sizeBytes: 1000, audioSec: 300 })).result).toBe('enqueued');
    await worker.heartbeat('w3', 30);
    await worker.claim(blocking, 'w3', 1);
    expect(await worker.split('w3', long, { chunks: [0, 4], stride: 257_985, estimatedFrames: 300 * 44_100, encodeUnits: 0 })).toBe('split');
    const r0 = (await worker.claim(blocking, 'w3', 1))!.range!;
    expect(await worker.runState('w3', r0.item)).toBe('owned');
    expect(await worker.failRange('w3', r0, 'store refused', { retryable: true, maxAttempts: 3 })).toBe('retry');
    const r1 = (await worker.claim(blocking, 'w3', 1))!.range!;
    expect(await worker.release('w3', r1.item)).toBe(true);
    await worker.claim(blocking, 'w3', 1);
    await worker.claim(blocking, 'w3', 1);
    await worker.clearHeartbeat('w3');
    expect((await worker.reap(3)).ranges.requeued).toBe(2);
    await worker.heartbeat('w4', 30);
    const a = (await worker.claim(blocking, 'w4', 1))!.range!;
    const b = (await worker.claim(blocking, 'w4', 1))!.range!;
    expect((await worker.rangeDone('w4', a)).outcome).toBe('done');
    expect(await worker.rangePiece(a, 4 * 257_985, null)).toBe('owned');
    expect((await worker.rangeDone('w4', b)).outcome).toBe('stitch');
    expect(await worker.recordStems('w4', long, TRACKS)).toBe('owned');
    expect((await worker.complete('w4', long, 30)).outcome).toBe('done');
    const cut = 'd'.repeat(64);
    expect((await rest.submit({ hash: cut, tenant: 'acme', sizeBytes: 1000, audioSec: 300 })).result).toBe('enqueued');
    await worker.claim(blocking, 'w4', 1);
    expect(await worker.split('w4', cut, { chunks: [0, 4], stride: 257_985, estimatedFrames: 300 * 44_100, encodeUnits: 0 })).toBe('split');
    expect(await rest.dropClaim(cut, 'acme')).toBe('last');
    expect(await rest.length()).toBe(0);
    await worker.clearHeartbeat('w4');

    await new Promise((r) => setTimeout(r, 100));
    expect(seen).toContain(hash);
    expect(seen).toContain(other);
    expect(seen).toContain(long);
  });

  it('rest can keep its rate-limit windows, the retention sweep lock and the log list; the worker its logs', async () => {
    const keys = makeKeys('');
    const rest = connect('rest');
    const reply = await rest.multi().incr(keys.rate('authfail:1.2.3.4', 1)).expire(keys.rate('authfail:1.2.3.4', 1), 120).exec();
    expect(reply?.map(([err]) => err)).toEqual([null, null]);
    expect(await rest.get(keys.rate('authfail:1.2.3.4', 1))).toBe('1');
    expect(await rest.set(keys.sweepLock, 'token', 'PX', 1000, 'NX')).toBe('OK');
    expect(await rest.del(keys.sweepLock)).toBe(1);
    for (const user of ['rest', 'worker'] as const) {
      const c = user === 'rest' ? rest : connect('worker');
      const r = await c.multi().publish(keys.loggingChannel, '{}').lpush(keys.logging, `host.${user}.info:hello`).ltrim(keys.logging, 0, 999).exec();
      expect(r?.map(([err]) => err), user).toEqual([null, null, null]);
    }
    expect(await rest.lrange(keys.logging, 0, 1)).toEqual(['host.worker.info:hello', 'host.rest.info:hello']);
  });

  it('logs can subscribe to the log channel; KEDA can measure toWorker with its script', async () => {
    const logs = connect('logs');
    expect(await logs.subscribe('logging')).toBe(1);
    const keda = connect('keda');
    await connect('worker').del('toWorker');
    await connect('rest').lpush('toWorker', 'x', 'y');
    expect(await keda.eval(KEDA_SCRIPT, 1, 'toWorker')).toBe(2);
    expect(await keda.llen('toWorker')).toBe(2);
    await connect('worker').del('toWorker');
  });
});

describe('each user is refused everything else', () => {
  const DANGEROUS: [string, ...string[]][] = [
    ['FLUSHALL'], ['FLUSHDB'], ['CONFIG', 'GET', '*'], ['CONFIG', 'SET', 'protected-mode', 'no'], ['KEYS', '*'], ['SCAN', '0'],
    ['SCRIPT', 'FLUSH'], ['DEBUG', 'SLEEP', '0'], ['ACL', 'LIST'], ['CLIENT', 'LIST'], ['SHUTDOWN', 'NOSAVE'], ['MODULE', 'LIST'],
    ['SAVE'], ['BGREWRITEAOF'], ['REPLICAOF', 'NO', 'ONE'], ['MIGRATE', '127.0.0.1', '1', 'k', '0', '1'], ['SWAPDB', '0', '1'], ['SELECT', '1'],
  ];

  it.each(['rest', 'worker', 'logs', 'keda'] as const)('%s: FLUSHALL, CONFIG, KEYS, SCRIPT, DEBUG, ACL, CLIENT, SHUTDOWN and the like → NOPERM', async (user) => {
    const c = connect(user);
    for (const [cmd, ...args] of DANGEROUS) expect(await refused(c.call(cmd, ...args)), `${user} ${cmd}`).toMatch(cmd === 'DEBUG' ? /NOPERM|DEBUG command not allowed/ : /NOPERM/);
  });

  it('keys outside a user\'s patterns are refused, directly and from inside a script', async () => {
    const [rest, worker, logs, keda] = [connect('rest'), connect('worker'), connect('logs'), connect('keda')];
    expect(await refused(rest.set('test:other:key', '1'))).toMatch(/NOPERM/);
    expect(await refused(rest.get('session:1'))).toMatch(/NOPERM/);
    expect(await refused(rest.lpush('processing:w1', 'x'))).toMatch(/NOPERM/); // a worker's list
    expect(await refused(rest.eval("return redis.call('set', 'elsewhere', '1')", 0))).toMatch(/can't access/);
    expect(await refused(worker.get(makeKeys('').rate('k', 1)))).toMatch(/NOPERM/);
    expect(await refused(worker.zadd('library:acme', 1, 'x'))).toMatch(/NOPERM/);
    expect(await refused(logs.get('job:x'))).toMatch(/NOPERM/);
    expect(await refused(logs.lrange('logging', 0, -1))).toMatch(/NOPERM/);
    expect(await refused(keda.llen('dead'))).toMatch(/NOPERM/);
    expect(await refused(keda.eval(KEDA_SCRIPT, 1, 'job:x'))).toMatch(/NOPERM|can't access/);
    expect(await refused(keda.lpush('toWorker', 'x'))).toMatch(/NOPERM/);
  });

  it('channels and commands outside a user\'s list are refused', async () => {
    expect(await refused(connect('logs').subscribe('job-events'))).toMatch(/NOPERM/);
    expect(await refused(connect('logs').call('PUBLISH', 'logging', 'x'))).toMatch(/NOPERM/);
    expect(await refused(connect('worker').subscribe('logging'))).toMatch(/NOPERM/);
    expect(await refused(connect('rest').call('PSUBSCRIBE', '*'))).toMatch(/NOPERM/);
    expect(await refused(connect('rest').call('PUBLISH', 'other', 'x'))).toMatch(/NOPERM/);
    expect(await refused(connect('rest').call('BLMOVE', 'toWorker', 'dead', 'RIGHT', 'LEFT', '0.01'))).toMatch(/NOPERM/);
  });
});

describe('the real services with their own users', () => {
  let stack: LocalStack | undefined;
  let logs: ChildProcess | undefined;
  const lines: string[] = [];
  const storeDir = mkdtempSync(path.join(os.tmpdir(), 'msaas-acl-store-'));

  afterAll(async () => {
    await stack?.stop();
    if (logs && logs.exitCode === null) {
      const done = exited(logs);
      logs.kill('SIGTERM');
      await done;
    }
    rmSync(storeDir, { recursive: true, force: true });
  }, 60_000);

  it('rest, worker and logs separate a song and log it, refused nothing (real processes)', async () => {
    const mp3 = await clip(4);
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      REDIS_URL: urlOf('rest'),
      LOG_LEVEL: 'info',
      HEARTBEAT_TTL_SEC: '5',
      REAP_INTERVAL_SEC: '1',
      WORKER_ID: 'acl-test',
      RATE_LIMIT_PER_MIN: '100000',
    };
    const onLine = (service: string, line: string) => lines.push(`[${service}] ${line}`);
    stack = await startLocalStack({ env, port: 0, worker: false, logs: false, storeDir, onLine });
    await stack.addWorker({ REDIS_URL: urlOf('worker'), MODEL_PATH: standinModelPath() });
    logs = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'logs/src/main.ts')], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, REDIS_URL: urlOf('logs') },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    logs.stdout!.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean).map((l) => `[logs] ${l}`)));
    logs.stderr!.on('data', (d: Buffer) => lines.push(`[logs] ${d.toString()}`));
    await new Promise<void>((resolve, reject) => {
      logs!.on('message', (m: { type?: string }) => m.type === 'ready' && resolve());
      logs!.once('exit', (code) => reject(new Error(`logs exited ${code}: ${lines.join('\n')}`)));
    });

    const api = new ApiClient({ baseUrl: stack.url });
    expect((await api.ready()).status).toBe('ready');
    const submitted = await api.submit(mp3);
    const job = await api.follow(submitted.hash, { until: (j) => j.state === 'done' || j.state === 'failed', intervalMs: 100, timeoutMs: 90_000 });
    expect(job.state, lines.slice(-30).join('\n')).toBe('done');
    expect((await api.stem(submitted.hash, 'vocals')).bytes.length).toBeGreaterThan(0);
    await api.queue();
    expect(await api.deleteSong(submitted.hash)).toMatchObject({ hash: submitted.hash, removed: true });
    // logs printed the worker's events, which came over the channel as the worker user published them
    for (let i = 0; i < 50 && !lines.some((l) => l.startsWith('[logs]') && l.includes('worker') && l.includes(submitted.hash)); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(lines.some((l) => l.startsWith('[logs]') && l.includes('worker') && l.includes(submitted.hash)), lines.slice(-30).join('\n')).toBe(true);
    expect(lines.filter((l) => /NOPERM|NOAUTH|WRONGPASS|no permissions/i.test(l))).toEqual([]);
    // both services' lab-style log lines reached the list (LPUSH as their own users)
    const list = await connect('rest').lrange('logging', 0, -1);
    expect(list.some((l) => l.includes('.rest.'))).toBe(true);
    expect(list.some((l) => l.includes('.worker.'))).toBe(true);
  }, 150_000);
});
