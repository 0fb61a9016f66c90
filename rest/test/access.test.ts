/**
 * Access control against the real app (real Redis, real s3rver): API keys on every /apiv1 route,
 * open probes, the per-key rate limit, the callback SSRF policy on both sides (rest at submit time,
 * worker at call time), security headers, and generic bodies for internal failures.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { dnsResolver, isPrivateAddress, songhash } from '@msaas/common';
import { buildRest, type RestService } from '../src/bootstrap.ts';
import { fireCallback } from '../../worker/src/callback.ts';
import { markSeparated, storeSeparated } from '../../common/test/test-worker.ts';
import { synthesizeMp3 } from '../../worker/fixtures/synth.ts';
import { deletePrefix, startTestStore, testConfig, uniquePrefix, type TestStore } from '../../test/helpers/env.ts';

const KEY = 'k-4f1c9e2a-access';
const KEY2 = 'k-second-tenant';
const HASH = 'ab'.repeat(28);

/** Fake DNS: the names a hostile client might use to reach inside, plus one public name. */
const fakeDns = async (host: string): Promise<string[]> => {
  const table: Record<string, string[]> = {
    'hooks.example.com': ['93.184.216.34'],
    'internal.test': ['10.0.0.5'],
    'corp.test': ['172.20.1.1'],
    'home.test': ['192.168.1.10'],
    'meta.test': ['169.254.169.254'],
    'loop6.test': ['::1'],
    'ula.test': ['fd00::1234'],
    'mixed.test': ['93.184.216.34', '127.0.0.1'],
  };
  const hit = table[host];
  if (!hit) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  return hit;
};

let store: TestStore;
const services: RestService[] = [];
const prefixes: string[] = [];
let mp3: Buffer;

async function service(overrides: Record<string, string>, resolveHost = fakeDns): Promise<RestService> {
  const prefix = uniquePrefix('access');
  prefixes.push(prefix);
  const rest = await buildRest(testConfig(prefix, overrides), store.endpoint, { resolveHost });
  services.push(rest);
  await redisReady(rest);
  return rest;
}

beforeAll(async () => {
  store = await startTestStore();
  mp3 = Buffer.from(await synthesizeMp3({ seconds: 1, seed: 4242 }));
});

afterAll(async () => {
  for (const s of services) await s.close();
  await store?.close();
  for (const p of prefixes) await deletePrefix(p);
});

function expectJsonError(res: request.Response, status: number, code?: string): void {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(typeof res.body.error).toBe('string');
  expect(typeof res.body.detail).toBe('string');
  if (code) expect(res.body.error).toBe(code);
  expect(res.text).not.toMatch(/\n\s+at |node_modules|\/work\/|\.ts:\d+/);
}

/** Every /apiv1 route, as [method, path, body?]. */
const ROUTES: [string, string, 'json' | 'multipart' | undefined][] = [
  ['GET', '/apiv1/queue', undefined],
  ['GET', '/apiv1/info', undefined],
  ['GET', '/apiv1/cluster', undefined],
  ['POST', '/apiv1/separate', 'json'],
  ['POST', '/apiv1/separate', 'multipart'],
  ['GET', `/apiv1/jobs/${HASH}`, undefined],
  ['DELETE', `/apiv1/jobs/${HASH}`, undefined],
  ['GET', `/apiv1/jobs/${HASH}/events`, undefined],
  ['GET', `/apiv1/jobs/${HASH}/zip`, undefined],
  ['GET', `/apiv1/track/${HASH}/bass.mp3`, undefined],
  ['DELETE', `/apiv1/track/${HASH}/bass.mp3`, undefined],
  ['GET', `/apiv1/remove/${HASH}/vocals`, undefined],
  ['DELETE', `/apiv1/remove/${HASH}/vocals`, undefined],
  ['GET', '/apiv1/no-such-route', undefined],
];

function send(app: RestService['app'], [method, path, body]: (typeof ROUTES)[number], headers: Record<string, string> = {}): request.Test {
  let r = request(app)[method.toLowerCase() as 'get' | 'post' | 'delete'](path);
  for (const [k, v] of Object.entries(headers)) r = r.set(k, v);
  if (body === 'json') return r.send({ mp3: Buffer.from('not an mp3').toString('base64') });
  if (body === 'multipart') return r.attach('file', Buffer.from('not an mp3'), 'x.mp3');
  return r;
}

describe('API keys', () => {
  let rest: RestService;
  beforeAll(async () => {
    // Hundreds of deliberate wrong keys from one address: the failed-attempt limit is tested on its own below.
    rest = await service({ API_KEYS: `${KEY}, ${KEY2}`, RATE_LIMIT_PER_MIN: '10000', AUTH_FAIL_LIMIT_PER_MIN: '10000' });
  });

  it.each(ROUTES.map((r) => [`${r[0]} ${r[1]}${r[2] ? ` (${r[2]})` : ''}`, r] as const))('%s answers 401 JSON without a key and with a wrong one', async (_name, route) => {
    const attempts: Record<string, string>[] = [
      {},
      { Authorization: 'Bearer wrong-key' },
      { 'X-API-Key': 'wrong-key' },
      { Authorization: `Basic ${Buffer.from(`user:${KEY}`).toString('base64')}` },
      { Authorization: `Bearer ${KEY}x` },
      { Authorization: `Bearer ${KEY.slice(0, -1)}` },
      { Authorization: 'Bearer ' },
      { Authorization: KEY },
      { 'X-API-Key': 'wrong-key', Authorization: `Bearer ${KEY}` }, // X-API-Key wins when both are sent
    ];
    for (const headers of attempts) {
      const res = await send(rest.app, route, headers);
      expectJsonError(res, 401, 'unauthorized');
      expect(res.headers['www-authenticate']).toBe('Bearer');
    }
  });

  it.each(ROUTES.map((r) => [`${r[0]} ${r[1]}${r[2] ? ` (${r[2]})` : ''}`, r] as const))('%s passes with Authorization: Bearer <key> and with X-API-Key', async (_name, route) => {
    const variants: Record<string, string>[] = [{ Authorization: `Bearer ${KEY}` }, { authorization: `bearer  ${KEY2}` }, { 'X-API-Key': KEY }, { 'x-api-key': ` ${KEY2} ` }];
    for (const headers of variants) {
      const res = await send(rest.app, route, headers);
      expect(res.status, JSON.stringify(headers)).not.toBe(401);
      expect(res.status).not.toBe(429);
      expect(res.status).toBeLessThan(500);
    }
  });

  it('keeps the probes and the page open without a key (the kubelet and the load balancer carry none)', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics', '/']) {
      const res = await request(rest.app).get(path);
      expect(res.status, path).toBe(200);
    }
    const info = await request(rest.app).get('/apiv1/info').set('X-API-Key', KEY);
    expect(info.body.authRequired).toBe(true);
  });
});

/** The API's Redis client fails fast instead of queueing commands before it is connected. */
async function redisReady(rest: RestService): Promise<void> {
  const redis = rest.deps.queue.redis;
  if (redis.status !== 'ready') await new Promise((resolve) => redis.once('ready', resolve));
}

describe('rate limit', () => {
  const waitForFreshWindow = async (): Promise<void> => {
    // Fixed one-minute windows: do not start a burst in the last seconds of one.
    const left = 60 - (Math.floor(Date.now() / 1000) % 60);
    if (left < 8) await new Promise((r) => setTimeout(r, left * 1000 + 200));
  };

  it('answers 429 JSON with Retry-After after RATE_LIMIT_PER_MIN requests, per key, other keys unaffected', async () => {
    const rest = await service({ API_KEYS: `${KEY},${KEY2}`, RATE_LIMIT_PER_MIN: '5' });
    await redisReady(rest);
    await waitForFreshWindow();
    // Rejected keys cost nothing: a flood of bad keys must not use up a real key's allowance.
    for (let i = 0; i < 10; i++) expect((await request(rest.app).get('/apiv1/queue').set('X-API-Key', `bad-${i}`)).status).toBe(401);
    for (let i = 0; i < 5; i++) {
      const ok = await request(rest.app).get('/apiv1/queue').set('Authorization', `Bearer ${KEY}`);
      expect(ok.status).toBe(200);
      expect(ok.headers['ratelimit-limit']).toBe('5');
      expect(ok.headers['ratelimit-remaining']).toBe(String(4 - i));
    }
    const limited = await request(rest.app).get('/apiv1/queue').set('Authorization', `Bearer ${KEY}`);
    expectJsonError(limited, 429, 'rate_limited');
    const retryAfter = Number(limited.headers['retry-after']);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // the same key through the other header is the same client
    expectJsonError(await request(rest.app).post('/apiv1/separate').set('X-API-Key', KEY).send({}), 429, 'rate_limited');
    // another key has its own allowance
    const other = await request(rest.app).get('/apiv1/queue').set('X-API-Key', KEY2);
    expect(other.status).toBe(200);
    expect(other.headers['ratelimit-remaining']).toBe('4');
    // the probes are never limited
    expect((await request(rest.app).get('/healthz')).status).toBe(200);
  });

  it('limits per client address when no keys are configured', async () => {
    const rest = await service({ RATE_LIMIT_PER_MIN: '3' });
    await redisReady(rest); // the limiter lets requests through while Redis is not connected yet
    await waitForFreshWindow();
    for (let i = 0; i < 3; i++) expect((await request(rest.app).get('/apiv1/info')).status).toBe(200);
    const limited = await request(rest.app).get('/apiv1/info');
    expectJsonError(limited, 429, 'rate_limited');
    expect(limited.headers['retry-after']).toMatch(/^\d+$/);
  });
});

describe('callback address classification', () => {
  it.each([
    ['127.0.0.1', true], ['127.255.255.254', true], ['10.0.0.1', true], ['172.16.0.1', true], ['172.31.255.255', true], ['192.168.1.1', true],
    ['169.254.169.254', true], ['100.64.0.1', true], ['0.0.0.0', true], ['::1', true], ['::', true], ['fc00::1', true], ['fd00:ec2::254', true],
    ['fe80::1', true], ['::ffff:127.0.0.1', true], ['::ffff:10.0.0.1', true], ['::ffff:a9fe:a9fe', true],
    ['93.184.216.34', false], ['8.8.8.8', false], ['1.1.1.1', false], ['172.32.0.1', false], ['192.169.0.1', false], ['2606:4700:4700::1111', false],
    ['::ffff:93.184.216.34', false],
    // prefixes that embed an IPv4 address or are reserved: NAT64, 6to4, IPv4-compatible, site-local
    ['64:ff9b::a00:1', true], ['64:ff9b::808:808', true], ['64:ff9b:1::1', true], ['2002:a00:1::1', true], ['::a00:1', true], ['::808:808', true],
    ['fec0::1', true], ['2001:4860:4860::8888', false], ['2003::1', false],
  ] as const)('%s private: %s', (address, expected) => {
    expect(isPrivateAddress(address)).toBe(expected);
  });
});

describe('callback SSRF policy at submit time', () => {
  let strict: RestService;
  let permissive: RestService;
  beforeAll(async () => {
    strict = await service({});
    permissive = await service({ CALLBACK_ALLOW_PRIVATE: 'true' });
  });

  async function submit(rest: RestService, url: unknown): Promise<request.Response> {
    const res = await request(rest.app).post('/apiv1/separate').send({ mp3: mp3.toString('base64'), callback: { url, data: { id: 1 } } });
    if (res.status === 200) await request(rest.app).delete(`/apiv1/jobs/${songhash(mp3)}`); // next submission is a fresh job
    return res;
  }

  const PRIVATE = [
    'http://localhost:5000',
    'http://app.localhost/',
    'http://127.0.0.1:5000/',
    'http://127.1/',
    'http://2130706433/', // 127.0.0.1 as one number
    'http://0x7f.0.0.1/',
    'http://0.0.0.0/',
    'http://10.0.0.1/',
    'http://172.16.0.1/',
    'http://172.31.255.254/',
    'http://192.168.0.1/',
    'http://169.254.169.254/latest/meta-data/iam/security-credentials/',
    'http://100.64.0.1/',
    'http://[::1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://[::ffff:a9fe:a9fe]/', // 169.254.169.254, IPv4-mapped
    'http://[fc00::1]/',
    'http://[fd12:3456::1]/',
    'http://[fe80::1]/',
    'https://internal.test/hook',
    'https://corp.test/hook',
    'https://home.test/hook',
    'https://meta.test/latest/meta-data/',
    'https://loop6.test/',
    'https://ula.test/',
    'https://mixed.test/', // one private address among public ones is enough to refuse
    'https://nxdomain.test/', // does not resolve
  ];

  it.each(PRIVATE)('accepts the job but records the callback %s as skipped', async (url) => {
    const res = await submit(strict, url);
    expect(res.status).toBe(200);
    expect(res.body.reason).toBe('Song enqueued for separation');
    expect(res.body.job.callback.status).toMatch(/^skipped: /);
  });

  it.each(['ftp://hooks.example.com/', 'file:///etc/passwd', 'gopher://127.0.0.1:6379/_FLUSHALL', 'javascript:alert(1)', 'data:text/plain,x', 'http://user:pw@hooks.example.com/', 'http://user@hooks.example.com/', '//hooks.example.com/', 'not a url', 42, null])(
    'refuses the malformed callback %s with 400 bad_callback / bad_request',
    async (url) => {
      const res = await submit(strict, url);
      expect(res.status).toBe(400);
      expect(['bad_callback', 'bad_request']).toContain(res.body.error);
    },
  );

  it('keeps a public callback', async () => {
    const res = await submit(strict, 'https://hooks.example.com/done');
    expect(res.status).toBe(200);
    expect(res.body.job.callback, JSON.stringify(res.body)).toEqual({ url: 'https://hooks.example.com/done', status: null });
  });

  it('keeps private callbacks when CALLBACK_ALLOW_PRIVATE=true, still refusing credentials and other schemes', async () => {
    for (const url of ['http://localhost:5000', 'http://10.0.0.1/', 'http://169.254.169.254/', 'http://[::1]/', 'https://internal.test/hook']) {
      const res = await submit(permissive, url);
      expect(res.status, url).toBe(200);
      expect(res.body.job.callback, url).toEqual({ url, status: null });
    }
    expect((await submit(permissive, 'http://user:pw@10.0.0.1/')).status).toBe(400);
    expect((await submit(permissive, 'ftp://10.0.0.1/')).status).toBe(400);
  });
});

describe('callback ports', () => {
  const submitWith = async (rest: RestService, url: string): Promise<request.Response> => {
    const res = await request(rest.app).post('/apiv1/separate').send({ mp3: mp3.toString('base64'), callback: { url, data: {} } });
    if (res.status === 200) await request(rest.app).delete(`/apiv1/jobs/${songhash(mp3)}`);
    return res;
  };

  it('keeps callbacks to ports 80 and 443 (named or by scheme) and skips others, naming the allowed ports', async () => {
    const rest = await service({});
    for (const url of ['https://hooks.example.com/x', 'http://hooks.example.com/x', 'http://hooks.example.com:443/x', 'https://hooks.example.com:80/x', 'http://93.184.216.34:80/']) {
      const res = await submitWith(rest, url);
      expect(res.body.job.callback, url).toEqual({ url, status: null });
    }
    for (const url of ['https://hooks.example.com:8443/x', 'http://hooks.example.com:6379/', 'http://93.184.216.34:22/', 'http://hooks.example.com:1/']) {
      const res = await submitWith(rest, url);
      expect(res.status, url).toBe(200);
      expect(res.body.job.callback.status, url).toMatch(/^skipped: callback port \d+ is not allowed \(CALLBACK_ALLOWED_PORTS: 80, 443\)$/);
    }
  });

  it('follows CALLBACK_ALLOWED_PORTS, and CALLBACK_ALLOW_PRIVATE=true (development) lifts the port rule too', async () => {
    const custom = await service({ CALLBACK_ALLOWED_PORTS: '8443, 9000' });
    expect((await submitWith(custom, 'https://hooks.example.com:8443/x')).body.job.callback.status).toBeNull();
    expect((await submitWith(custom, 'https://hooks.example.com/x')).body.job.callback.status).toBe('skipped: callback port 443 is not allowed (CALLBACK_ALLOWED_PORTS: 8443, 9000)');
    const dev = await service({ CALLBACK_ALLOW_PRIVATE: 'true' });
    expect((await submitWith(dev, 'http://hooks.example.com:6379/')).body.job.callback.status).toBeNull();
  });

  it('checks the port again at call time, before any lookup or connection', async () => {
    let lookups = 0;
    const counting = async (): Promise<string[]> => (lookups++, ['93.184.216.34']);
    const status = await fireCallback({ url: 'http://hooks.example.com:6379/', data: {} }, { allowPrivate: false, timeoutMs: 1000, retries: 0, resolve: counting });
    expect(status).toBe('skipped: callback port 6379 is not allowed (CALLBACK_ALLOWED_PORTS: 80, 443)');
    expect(lookups).toBe(0);
    const custom = await fireCallback({ url: 'http://hooks.example.com:80/', data: {} }, { allowPrivate: false, allowedPorts: [8080], timeoutMs: 1000, retries: 0, resolve: counting });
    expect(custom).toBe('skipped: callback port 80 is not allowed (CALLBACK_ALLOWED_PORTS: 8080)');
  });
});

/** A DNS server on a loopback UDP port: silent, or answering every A question with `answer`. */
async function localDns(answer: string | null): Promise<{ server: string; queries: () => number; close(): Promise<void> }> {
  const socket = dgram.createSocket('udp4');
  let queries = 0;
  socket.on('message', (msg, from) => {
    queries++;
    if (answer === null) return; // never replies
    let end = 12;
    while (msg[end] !== 0) end += msg[end]! + 1;
    const question = msg.subarray(12, end + 5);
    const isA = msg.readUInt16BE(end + 1) === 1;
    const header = Buffer.alloc(12);
    msg.copy(header, 0, 0, 2); // id
    header.writeUInt16BE(0x8180, 2); // response, recursion desired + available, NOERROR
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(isA ? 1 : 0, 6);
    const record = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, ...answer.split('.').map(Number)]);
    socket.send(Buffer.concat([header, question, ...(isA ? [record] : [])]), from.port, from.address);
  });
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  return { server: `127.0.0.1:${socket.address().port}`, queries: () => queries, close: () => new Promise((r) => socket.close(() => r())) };
}

describe('callback DNS: a deadline, and only for submissions that keep the callback', () => {
  it('resolves through c-ares against the configured servers (no getaddrinfo on the libuv pool)', async () => {
    const dns = await localDns('93.184.216.34');
    try {
      expect(await dnsResolver({ timeoutMs: 1000, servers: [dns.server] })('hooks.dns-test.example')).toEqual(['93.184.216.34']);
      expect(dns.queries()).toBeGreaterThanOrEqual(2); // A and AAAA
    } finally {
      await dns.close();
    }
  });

  it('gives up on a DNS server that never answers within the deadline', async () => {
    const dns = await localDns(null);
    try {
      const t0 = Date.now();
      await expect(dnsResolver({ timeoutMs: 300, servers: [dns.server] })('slow.dns-test.example')).rejects.toMatchObject({ code: 'ETIMEOUT' });
      expect(Date.now() - t0).toBeLessThan(2000);
      expect(dns.queries()).toBeGreaterThanOrEqual(1);
    } finally {
      await dns.close();
    }
  });

  it('answers a submission whose callback host never resolves within DNS_TIMEOUT_MS, the callback skipped saying why', async () => {
    const never = (): Promise<string[]> => new Promise(() => undefined);
    const rest = await service({ DNS_TIMEOUT_MS: '300' }, never);
    const t0 = Date.now();
    const res = await request(rest.app).post('/apiv1/separate').send({ mp3: mp3.toString('base64'), callback: { url: 'https://slow.test/hook', data: {} } });
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(res.status).toBe(200);
    expect(res.body.result).toBe('enqueued');
    expect(res.body.job.callback.status).toBe('skipped: callback host slow.test did not resolve within 300 ms (DNS_TIMEOUT_MS)');
    const t1 = Date.now();
    const status = await fireCallback({ url: 'https://slow.test/hook', data: {} }, { allowPrivate: false, dnsTimeoutMs: 300, timeoutMs: 1000, retries: 0, resolve: never });
    expect(status).toBe('skipped: callback host slow.test did not resolve within 300 ms (DNS_TIMEOUT_MS)');
    expect(Date.now() - t1).toBeLessThan(2000);
  });

  it('does not resolve for bad requests, duplicates of a claimed song, separated songs or refused quotas', async () => {
    const asked: string[] = [];
    const counting = async (host: string): Promise<string[]> => (asked.push(host), ['93.184.216.34']);
    const rest = await service({ API_KEYS: KEY, MAX_ACTIVE_JOBS_PER_KEY: '1' }, counting);
    const post = (body: object): request.Test => request(rest.app).post('/apiv1/separate').set('X-API-Key', KEY).send(body);
    const cb = (n: number) => ({ url: `https://h${n}.example.com/hook`, data: {} });
    const clip = (seed: number) => synthesizeMp3({ seconds: 1, seed }).then((b) => Buffer.from(b).toString('base64'));

    expect((await post({ mp3: Buffer.from('not audio').toString('base64'), callback: cb(0) })).status).toBe(400);
    expect((await post({ mp3: await clip(31), callback: cb(1), model: 'no-such-model' })).status).toBe(400);
    // separated already (stored before anything is queued: the test worker takes the next queued song)
    const separated = Buffer.from(await synthesizeMp3({ seconds: 1, seed: 34 }));
    await storeSeparated(rest.deps, songhash(separated), separated);
    const done = await post({ mp3: separated.toString('base64'), callback: cb(5) });
    expect(done.body.result).toBe('done');
    expect(done.body.job.callback.status).toBe('not sent: the song was already separated when it was submitted');
    expect(asked).toEqual([]);

    const first = await clip(32);
    expect((await post({ mp3: first, callback: cb(2) })).body.result).toBe('enqueued');
    expect(asked).toEqual(['h2.example.com']);
    expect((await post({ mp3: first, callback: cb(3) })).body.result).toBe('queued'); // the tenant's own claim: callback ignored
    const refused = await post({ mp3: await clip(33), callback: cb(4) });
    expect(refused.status).toBe(429); // MAX_ACTIVE_JOBS_PER_KEY=1
    expect(asked).toEqual(['h2.example.com']);

    const freed = await request(rest.app).delete(`/apiv1/jobs/${songhash(Buffer.from(first, 'base64'))}`).set('X-API-Key', KEY); // frees the quota
    expect(freed.status, freed.text).toBe(200);
    const again = await post({ mp3: await clip(33), callback: cb(6) });
    expect(again.body.result, again.text).toBe('enqueued');
    expect(asked).toEqual(['h2.example.com', 'h6.example.com']);
  });
});

describe('callback SSRF policy at call time (worker)', () => {
  let server: http.Server;
  let port: number;
  const hits: { path: string; body: string }[] = [];
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        hits.push({ path: req.url ?? '', body });
        if (req.url === '/redirect') res.writeHead(302, { Location: `http://127.0.0.1:${port}/internal` }).end();
        else if (req.url === '/slow') return; // never answers
        else if (req.url === '/flaky' && hits.filter((h) => h.path === '/flaky').length === 1) res.writeHead(503).end();
        else res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const opts = { timeoutMs: 2000, retries: 0 };

  it('does not call a loopback listener unless private targets are allowed', async () => {
    hits.length = 0;
    const status = await fireCallback({ url: `http://127.0.0.1:${port}/hook`, data: { x: 1 } }, { ...opts, allowPrivate: false, allowedPorts: [port] });
    expect(status).toMatch(/^skipped: .*private or reserved address/);
    expect(hits).toEqual([]);
    const allowed = await fireCallback({ url: `http://127.0.0.1:${port}/hook`, data: { x: 1 } }, { ...opts, allowPrivate: true });
    expect(allowed).toBe('delivered: HTTP 200');
    expect(hits).toEqual([{ path: '/hook', body: '{"x":1}' }]);
  });

  it('re-resolves at call time: a name that was public at submit and now points inside is skipped (DNS rebinding)', async () => {
    hits.length = 0;
    let answer = ['93.184.216.34'];
    const rebinding = async (): Promise<string[]> => answer;
    const rest = await service({ CALLBACK_ALLOWED_PORTS: String(port) }, rebinding);
    const res = await request(rest.app).post('/apiv1/separate').send({ mp3: mp3.toString('base64'), callback: { url: `http://rebind.test:${port}/hook`, data: {} } });
    expect(res.body.job.callback.status, JSON.stringify(res.body.job.callback)).toBeNull(); // accepted at submit time
    answer = ['127.0.0.1'];
    const status = await fireCallback({ url: `http://rebind.test:${port}/hook`, data: {} }, { ...opts, allowPrivate: false, allowedPorts: [port], resolve: rebinding });
    expect(status).toMatch(/^skipped: callback host rebind\.test resolves to a private or reserved address/);
    expect(status, 'no internal DNS oracle').not.toContain('127.0.0.1');
    for (const meta of [['169.254.169.254'], ['::1'], ['10.0.0.5']]) {
      answer = meta;
      expect(await fireCallback({ url: `http://rebind.test:${port}/hook`, data: {} }, { ...opts, allowPrivate: false, allowedPorts: [port], resolve: rebinding })).toMatch(/^skipped: /);
    }
    expect(hits).toEqual([]);
  });

  it('refuses at connect time a name that turns private between the check and the connect', async () => {
    hits.length = 0;
    let calls = 0;
    const flipping = async (): Promise<string[]> => (calls++ === 0 ? ['93.184.216.34'] : ['127.0.0.1']);
    const status = await fireCallback({ url: `http://flip.test:${port}/hook`, data: {} }, { ...opts, allowPrivate: false, allowedPorts: [port], resolve: flipping });
    expect(status).toMatch(/^failed: callback host flip\.test resolves to a private or reserved address at connect time/);
    expect(status).not.toContain('127.0.0.1');
    expect(calls).toBe(2); // checked, then resolved again for the connection, which was refused
    expect(hits).toEqual([]);
  });

  it('connects to the addresses the policy resolved; retries a 5xx; gives up on a silent endpoint after the timeout', async () => {
    hits.length = 0;
    const toLoopback = async (): Promise<string[]> => ['127.0.0.1'];
    const named = await fireCallback({ url: `http://hook.test:${port}/named`, data: { y: 2 } }, { ...opts, allowPrivate: true, resolve: toLoopback });
    expect(named).toBe('delivered: HTTP 200');
    expect(hits).toEqual([{ path: '/named', body: '{"y":2}' }]);
    const flaky = await fireCallback({ url: `http://127.0.0.1:${port}/flaky`, data: {} }, { ...opts, retries: 2, allowPrivate: true });
    expect(flaky).toBe('delivered: HTTP 200 after 2 tries');
    const t0 = Date.now();
    const slow = await fireCallback({ url: `http://127.0.0.1:${port}/slow`, data: {} }, { timeoutMs: 300, retries: 1, allowPrivate: true });
    expect(slow).toBe('failed: timed out after 300 ms (2 tries)');
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('refuses credentials and non-http schemes even when private targets are allowed, and never follows a redirect', async () => {
    hits.length = 0;
    expect(await fireCallback({ url: `http://u:p@127.0.0.1:${port}/`, data: {} }, { ...opts, allowPrivate: true })).toMatch(/^skipped: .*credentials/);
    expect(await fireCallback({ url: 'file:///etc/passwd', data: {} }, { ...opts, allowPrivate: true })).toMatch(/^skipped: .*http or https/);
    expect(hits).toEqual([]);
    expect(await fireCallback({ url: `http://127.0.0.1:${port}/redirect`, data: {} }, { ...opts, allowPrivate: true })).toBe('delivered: HTTP 302');
    expect(hits.map((h) => h.path)).toEqual(['/redirect']); // /internal never reached
  });
});

describe('headers and failure bodies', () => {
  it('sets helmet headers on pages, API answers, errors and streams; hides the framework', async () => {
    const rest = await service({ API_KEYS: KEY });
    const clip = Buffer.from(await synthesizeMp3({ seconds: 1, seed: 4243 }));
    expect((await request(rest.app).post('/apiv1/separate').set('X-API-Key', KEY).send({ mp3: clip.toString('base64') })).status).toBe(200);
    await markSeparated(rest.deps.queue, songhash(clip));
    await rest.deps.store.putStem(songhash(clip), 'bass', clip);
    const answers = [
      await request(rest.app).get('/'),
      await request(rest.app).get('/healthz'),
      await request(rest.app).get('/apiv1/info').set('X-API-Key', KEY),
      await request(rest.app).get('/apiv1/info'), // 401
      await request(rest.app).get(`/apiv1/track/${songhash(clip)}/bass.mp3`).set('X-API-Key', KEY),
    ];
    for (const res of answers) {
      const h = res.headers;
      expect(h['content-security-policy']).toMatch(/default-src 'self'/);
      expect(h['content-security-policy']).toMatch(/script-src 'self'/);
      expect(h['content-security-policy']).toMatch(/frame-ancestors 'self'/);
      expect(h['content-security-policy']).toMatch(/object-src 'none'/);
      expect(h['x-content-type-options']).toBe('nosniff');
      expect(h['x-frame-options']).toBe('SAMEORIGIN');
      expect(h['strict-transport-security']).toMatch(/max-age=\d+/);
      expect(h['referrer-policy']).toBe('no-referrer');
      expect(h['cross-origin-opener-policy']).toBe('same-origin');
      expect(h['cross-origin-resource-policy']).toBe('same-origin');
      expect(h['x-dns-prefetch-control']).toBe('off');
      expect(h['x-permitted-cross-domain-policies']).toBe('none');
      expect(h['x-powered-by']).toBeUndefined();
    }
    expect(answers[4]!.status).toBe(200);
    expect(answers[4]!.headers['content-type']).toBe('audio/mpeg');
  });

  it('answers an unexpected internal error with a generic 500 JSON, no message, no stack', async () => {
    const rest = await service({});
    const secret = 'SECRET-DETAIL at /work/main/rest/src/x.ts:12:34';
    rest.deps.queue.getClaimedJob = async () => {
      throw new TypeError(secret);
    };
    const res = await request(rest.app).get(`/apiv1/jobs/${HASH}`);
    expectJsonError(res, 500, 'internal');
    expect(res.body).toEqual({ error: 'internal', detail: 'internal error' });
    expect(res.text).not.toContain('SECRET');
  });

  it('answers 503 JSON, no stack, when the object store is gone', async () => {
    const own = await startTestStore();
    const prefix = uniquePrefix('access-s3');
    prefixes.push(prefix);
    const rest = await buildRest(testConfig(prefix), own.endpoint, { resolveHost: fakeDns });
    services.push(rest);
    await own.close();
    const res = await request(rest.app).post('/apiv1/separate').send({ mp3: mp3.toString('base64') });
    expectJsonError(res, 503, 'unavailable');
    expect(res.headers['retry-after']).toBe('5');
    const ready = await request(rest.app).get('/readyz');
    expectJsonError(ready, 503, 'not_ready');
  });

  it('answers 503 JSON, no stack, when Redis is gone', async () => {
    const rest = await service({});
    rest.deps.queue.redis.disconnect();
    for (const path of ['/apiv1/queue', `/apiv1/jobs/${HASH}`]) {
      const res = await request(rest.app).get(path);
      expectJsonError(res, 503, 'unavailable');
    }
    const submit = await request(rest.app).post('/apiv1/separate').send({ mp3: mp3.toString('base64') });
    expectJsonError(submit, 503, 'unavailable');
  });
});
