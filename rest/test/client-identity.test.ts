/**
 * Client identity: which peer may name the client in X-Forwarded-For (TRUST_PROXY), what the
 * per-address limits count by (validated addresses, IPv6 per /64), and the failed-key limit.
 * The rules as pure functions, then against real rest processes over real sockets from two
 * loopback source addresses: 127.0.0.1 is the trusted proxy, 127.0.0.2 an ordinary client.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import { Redis } from 'ioredis';
import { clientKey, normalizeAddress, parseTrustProxy, resolveClientAddress } from '../src/client-address.ts';
import { startStack, printLinesOnFailure, type Stack } from '../../test/helpers/stack.ts';
import { REDIS_URL } from '../../test/helpers/env.ts';

describe('TRUST_PROXY and the client address (pure)', () => {
  const none = parseTrustProxy(undefined);
  const oneHop = parseTrustProxy('1');
  const ingress = parseTrustProxy('10.0.0.0/8, fd00::/8, 192.168.1.7');

  it('parses none, a hop count and a CIDR list, and refuses anything else', () => {
    expect(parseTrustProxy('').kind).toBe('none');
    expect(parseTrustProxy('0').kind).toBe('none');
    expect(oneHop).toEqual({ kind: 'hops', hops: 1 });
    expect(ingress.kind).toBe('cidrs');
    for (const bad of ['true', 'loopback', '10.0.0.0/33', 'fd00::/129', '10.0.0.0/8/1', '10.0.0.0/x', 'example.com', '1.2.3']) {
      expect(() => parseTrustProxy(bad), bad).toThrow(/TRUST_PROXY/);
    }
  });

  it('trusts no header by default: the socket peer is the client, whatever X-Forwarded-For says', () => {
    expect(resolveClientAddress('10.1.2.3', '6.6.6.6', none)).toBe('10.1.2.3');
    expect(resolveClientAddress('::ffff:127.0.0.1', '6.6.6.6, 7.7.7.7', none)).toBe('127.0.0.1');
  });

  it('walks back one entry per trusted hop, and no further', () => {
    expect(resolveClientAddress('10.0.0.9', '1.1.1.1, 2.2.2.2', oneHop)).toBe('2.2.2.2');
    expect(resolveClientAddress('10.0.0.9', '1.1.1.1, 2.2.2.2', parseTrustProxy('2'))).toBe('1.1.1.1');
    expect(resolveClientAddress('10.0.0.9', '1.1.1.1', parseTrustProxy('5'))).toBe('1.1.1.1');
    expect(resolveClientAddress('10.0.0.9', undefined, oneHop)).toBe('10.0.0.9');
  });

  it('uses the header only from peers in the CIDR list, through every trusted hop', () => {
    expect(resolveClientAddress('10.0.0.9', '2.2.2.2', ingress)).toBe('2.2.2.2');
    expect(resolveClientAddress('8.8.8.8', '2.2.2.2', ingress)).toBe('8.8.8.8'); // not a proxy of ours
    expect(resolveClientAddress('10.0.0.9', '2.2.2.2, 192.168.1.7', ingress)).toBe('2.2.2.2');
    expect(resolveClientAddress('10.0.0.9', '2.2.2.2, 192.168.1.8', ingress)).toBe('192.168.1.8');
    expect(resolveClientAddress('fd00::5', '2001:db8::1', ingress)).toBe('2001:db8::1');
    expect(resolveClientAddress('::ffff:10.0.0.9', '2.2.2.2', ingress)).toBe('2.2.2.2');
  });

  it('never takes a non-address from the header: the last proxy stands for the client instead', () => {
    for (const junk of ['evil', '1.2.3.4:5678', '999.1.1.1', '', ' ', 'unknown', '<script>', '1.2.3.4\r\nX: y', '::ffff:zz']) {
      expect(resolveClientAddress('10.0.0.9', junk, ingress), junk).toBe('10.0.0.9');
      expect(resolveClientAddress('10.0.0.9', `3.3.3.3, ${junk}`, parseTrustProxy('2')), junk).toBe('10.0.0.9');
    }
  });

  it('counts IPv4 per address, IPv6 per /64, IPv4-mapped IPv6 as IPv4', () => {
    expect(clientKey('203.0.113.7')).toBe('203.0.113.7');
    expect(clientKey('2001:db8:1:2::1')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:db8:1:2:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:0db8:0001:0002:0:0:0:1')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:db8:1:3::1')).toBe('2001:db8:1:3::/64');
    expect(clientKey('::1')).toBe('0:0:0:0::/64');
    expect(clientKey(normalizeAddress('::ffff:198.51.100.4'))).toBe('198.51.100.4');
    expect(clientKey(normalizeAddress('::ffff:c633:6404'))).toBe('198.51.100.4');
    expect(clientKey(normalizeAddress('fe80::1%eth0'))).toBe('fe80:0:0:0::/64');
    expect(clientKey(null)).toBe('unknown');
    expect(normalizeAddress('not-an-ip')).toBeNull();
  });
});

/** One GET over a fresh socket from a chosen loopback source address. */
function get(port: number, path: string, opts: { from: string; headers?: Record<string, string> }): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, localAddress: opts.from, agent: false, headers: opts.headers ?? {} }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Fixed one-minute windows: do not start a burst in the last seconds of one. */
async function freshWindow(): Promise<void> {
  const left = 60 - (Math.floor(Date.now() / 1000) % 60);
  if (left < 10) await new Promise((r) => setTimeout(r, left * 1000 + 200));
}

const KEY = 'k-identity-7c1d';

describe('client identity against real rest processes', () => {
  let open: Stack; // keys off: limits per address
  let keyed: Stack; // keys on: failed attempts per address
  let redis: Redis;
  printLinesOnFailure(() => [...(open?.lines ?? []), ...(keyed?.lines ?? [])]);

  beforeAll(async () => {
    [open, keyed] = await Promise.all([
      startStack({ worker: false, logs: false, env: { TRUST_PROXY: '127.0.0.1', RATE_LIMIT_PER_MIN: '5' } }),
      startStack({ worker: false, logs: false, env: { TRUST_PROXY: '127.0.0.1', API_KEYS: KEY, AUTH_FAIL_LIMIT_PER_MIN: '5', RATE_LIMIT_PER_MIN: '1000' } }),
    ]);
    redis = new Redis(REDIS_URL);
  }, 120_000);

  afterAll(async () => {
    redis?.disconnect();
    await Promise.all([open?.stop(), keyed?.stop()]);
  });

  it('a client that is not the trusted proxy stays limited however it rotates X-Forwarded-For', async () => {
    await freshWindow();
    const statuses: number[] = [];
    for (let i = 0; i < 25; i++) statuses.push(await get(open.port, '/apiv1/info', { from: '127.0.0.2', headers: { 'X-Forwarded-For': `198.51.100.${i + 1}` } }));
    expect(statuses.filter((s) => s === 200)).toHaveLength(5);
    expect(statuses.filter((s) => s === 429)).toHaveLength(20);
  });

  it('behind the trusted proxy each forwarded client has its own allowance, and a repeated one is limited', async () => {
    await freshWindow();
    const rotating: number[] = [];
    for (let i = 0; i < 25; i++) rotating.push(await get(open.port, '/apiv1/info', { from: '127.0.0.1', headers: { 'X-Forwarded-For': `203.0.113.${i + 1}` } }));
    expect(rotating.every((s) => s === 200), rotating.join(',')).toBe(true);
    const same: number[] = [];
    for (let i = 0; i < 8; i++) same.push(await get(open.port, '/apiv1/info', { from: '127.0.0.1', headers: { 'X-Forwarded-For': `6.6.6.6, 192.0.2.77` } }));
    expect(same).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
  });

  it('counts IPv6 clients per /64, so rotating within one allocation does not escape', async () => {
    await freshWindow();
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push(await get(open.port, '/apiv1/info', { from: '127.0.0.1', headers: { 'X-Forwarded-For': `2001:db8:77:1::${(i + 1).toString(16)}` } }));
    expect(statuses.filter((s) => s === 429)).toHaveLength(5);
    expect(await get(open.port, '/apiv1/info', { from: '127.0.0.1', headers: { 'X-Forwarded-For': '2001:db8:77:2::1' } })).toBe(200); // the next /64
  });

  it('never makes a header value an identity: garbage from the trusted proxy counts as the proxy', async () => {
    await freshWindow();
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push(await get(open.port, '/apiv1/info', { from: '127.0.0.1', headers: { 'X-Forwarded-For': `garbage-${i}-${'x'.repeat(50)}` } }));
    expect(statuses.filter((s) => s === 429)).toHaveLength(3);
    const keys = await redis.keys(`${open.prefix}rate:*`);
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) expect(key).toMatch(new RegExp(`^${open.prefix}rate:ip:([0-9.]+|[0-9a-f:]+::/64):\\d+$`));
  });

  it('limits failed API-key attempts per address: after AUTH_FAIL_LIMIT_PER_MIN failures even the right key gets 429, other addresses are unaffected', async () => {
    await freshWindow();
    const from = '127.0.0.3';
    const failures: number[] = [];
    for (let i = 0; i < 8; i++) failures.push(await get(keyed.port, '/apiv1/queue', { from, headers: { 'X-API-Key': `guess-${i}`, 'X-Forwarded-For': `198.51.100.${i}` } }));
    expect(failures).toEqual([401, 401, 401, 401, 401, 429, 429, 429]);
    // a right key from the same address is refused too (else 429 vs 200 would tell a guess was right)
    expect(await get(keyed.port, '/apiv1/queue', { from, headers: { 'X-API-Key': KEY } })).toBe(429);
    // another address, and a forwarded client of the trusted proxy, are not
    expect(await get(keyed.port, '/apiv1/queue', { from: '127.0.0.4', headers: { 'X-API-Key': KEY } })).toBe(200);
    expect(await get(keyed.port, '/apiv1/queue', { from: '127.0.0.1', headers: { 'X-API-Key': KEY, 'X-Forwarded-For': '192.0.2.200' } })).toBe(200);
  });
});
