import { describe, expect, it } from 'vitest';
import { checkCallbackUrl, embeddedIPv4, ipv6Groups, isPrivateAddress } from '@msaas/common';

/**
 * The SSRF guard's address ranges (issue 22 item 10): one case per range, an address inside it and,
 * where the range borders public space, one just outside it.
 */
describe('IPv6 spellings of an IPv4 address are judged by that IPv4 address', () => {
  it('parses the groups of every IPv6 spelling, a dotted IPv4 tail included', () => {
    expect(ipv6Groups('::')).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(ipv6Groups('::1')).toEqual([0, 0, 0, 0, 0, 0, 0, 1]);
    expect(ipv6Groups('::ffff:127.0.0.1')).toEqual([0, 0, 0, 0, 0, 0xffff, 0x7f00, 1]);
    expect(ipv6Groups('::ffff:0:10.0.0.1')).toEqual([0, 0, 0, 0, 0xffff, 0, 0x0a00, 1]);
    expect(ipv6Groups('2001:db8:1:2:3:4:5:6')).toEqual([0x2001, 0xdb8, 1, 2, 3, 4, 5, 6]);
    expect(ipv6Groups('fe80::1%eth0')).toEqual([0xfe80, 0, 0, 0, 0, 0, 0, 1]);
    expect(ipv6Groups('1::')).toEqual([1, 0, 0, 0, 0, 0, 0, 0]);
  });

  it.each([
    // IPv4-mapped ::ffff:0:0/96, in both spellings
    ['::ffff:127.0.0.1', '127.0.0.1', true],
    ['::ffff:7f00:1', '127.0.0.1', true],
    ['::ffff:a9fe:a9fe', '169.254.169.254', true],
    ['::ffff:8.8.8.8', '8.8.8.8', false],
    // IPv4-translated ::ffff:0:0:0/96 (SIIT): passed the guard before
    ['::ffff:0:127.0.0.1', '127.0.0.1', true],
    ['::ffff:0:7f00:1', '127.0.0.1', true],
    ['::ffff:0:a00:1', '10.0.0.1', true],
    ['::ffff:0:a9fe:a9fe', '169.254.169.254', true],
    ['::ffff:0:c0a8:101', '192.168.1.1', true],
    ['::ffff:0:808:808', '8.8.8.8', false],
  ] as const)('%s stands for %s (private: %s)', (address, v4, isPrivate) => {
    expect(embeddedIPv4(address)).toBe(v4);
    expect(isPrivateAddress(address)).toBe(isPrivate);
  });

  it('an address outside both prefixes has no IPv4 meaning', () => {
    for (const a of ['::1', '2606:4700::1111', '::fffe:0:7f00:1', '0:0:0:1:ffff:0:7f00:1', '64:ff9b::7f00:1']) expect(embeddedIPv4(a), a).toBeNull();
  });
});

describe('every reserved range is refused, public neighbours are not', () => {
  it.each([
    // IPv6, refused whole
    ['::/96 IPv4-compatible', '::7f00:1', true],
    ['::/96 IPv4-compatible (public v4 inside)', '::808:808', true],
    ['NAT64 64:ff9b::/96 (private v4 inside)', '64:ff9b::a00:1', true],
    ['NAT64 64:ff9b::/96 (loopback inside)', '64:ff9b::127.0.0.1', true],
    ['NAT64 64:ff9b::/96 (public v4 inside)', '64:ff9b::808:808', true],
    ['local-use NAT64 64:ff9b:1::/48', '64:ff9b:1::a00:1', true],
    ['6to4 2002::/16 (private v4 inside)', '2002:a00:1::1', true],
    ['6to4 2002::/16 (metadata address inside)', '2002:a9fe:a9fe::1', true],
    ['discard-only 100::/64', '100::1', true],
    ['Teredo 2001::/32', '2001:0:4136:e378:8000:63bf:3fff:fdd2', true],
    ['Teredo 2001::/32 (start)', '2001::1', true],
    ['benchmarking 2001:2::/48', '2001:2::1', true],
    ['ORCHIDv2 2001:20::/28', '2001:20::1', true],
    ['IETF protocol assignments 2001::/23 (end)', '2001:1ff:ffff::1', true],
    ['documentation 2001:db8::/32', '2001:db8::1', true],
    ['documentation 3fff::/20', '3fff:fff::1', true],
    ['SRv6 SIDs 5f00::/16', '5f00::1', true],
    ['unique-local fc00::/7', 'fd12:3456::1', true],
    ['link-local fe80::/10', 'fe80::1', true],
    ['site-local fec0::/10', 'fec0::1', true],
    ['multicast ff00::/8', 'ff02::1', true],
    ['loopback ::1', '::1', true],
    ['unspecified ::', '::', true],
    ['public, just past 2001::/23', '2001:200::1', false],
    ['public Google DNS', '2001:4860:4860::8888', false],
    ['public Cloudflare', '2606:4700:4700::1111', false],
    ['public, just past 2002::/16', '2003::1', false],
    ['public, just past 3fff::/20', '3fff:1000::1', false],
    // IPv4
    ['this network 0.0.0.0/8', '0.1.2.3', true],
    ['private 10/8', '10.1.2.3', true],
    ['shared 100.64/10', '100.127.255.254', true],
    ['loopback 127/8', '127.0.0.2', true],
    ['link-local 169.254/16', '169.254.169.254', true],
    ['private 172.16/12', '172.31.0.1', true],
    ['IETF 192.0.0/24', '192.0.0.8', true],
    ['TEST-NET-1 192.0.2/24', '192.0.2.1', true],
    ['6to4 relay anycast 192.88.99/24', '192.88.99.1', true],
    ['private 192.168/16', '192.168.0.1', true],
    ['benchmarking 198.18/15', '198.19.255.1', true],
    ['TEST-NET-2 198.51.100/24', '198.51.100.7', true],
    ['TEST-NET-3 203.0.113/24', '203.0.113.9', true],
    ['multicast 224/4', '239.255.255.250', true],
    ['reserved 240/4 and broadcast', '255.255.255.255', true],
    ['public, just past 100.64/10', '100.128.0.1', false],
    ['public, just past 172.16/12', '172.32.0.1', false],
    ['public, just past 198.18/15', '198.20.0.1', false],
    ['public, beside TEST-NET-3', '203.0.114.1', false],
    ['public', '93.184.216.34', false],
  ] as const)('%s: %s private = %s', (_range, address, isPrivate) => {
    expect(isPrivateAddress(address)).toBe(isPrivate);
  });

  it('a callback URL naming an IPv4-translated loopback or a Teredo address is refused before any DNS', async () => {
    const resolve = (): Promise<string[]> => Promise.reject(new Error('no DNS expected'));
    for (const url of ['http://[::ffff:0:127.0.0.1]/hook', 'http://[::ffff:0:a9fe:a9fe]/latest/meta-data', 'http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/']) {
      const verdict = await checkCallbackUrl(url, { allowPrivate: false, resolve });
      expect(verdict.ok, url).toBe(false);
      if (!verdict.ok) expect(verdict.reason, url).toMatch(/private or reserved address/);
    }
  });

  it('a name resolving to an IPv4-translated private address is refused', async () => {
    const verdict = await checkCallbackUrl('https://hooks.example.com/x', { allowPrivate: false, resolve: () => Promise.resolve(['93.184.216.34', '::ffff:0:a00:1']) });
    expect(verdict).toMatchObject({ ok: false, reason: expect.stringMatching(/private or reserved/) });
    const ok = await checkCallbackUrl('https://hooks.example.com/x', { allowPrivate: false, resolve: () => Promise.resolve(['93.184.216.34', '2606:4700::1111']) });
    expect(ok.ok).toBe(true);
  });
});
