import { lookup } from 'node:dns/promises';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/** Addresses a callback may not reach unless CALLBACK_ALLOW_PRIVATE=true (SSRF guard). */
const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) blocked.addSubnet(net, prefix, 'ipv4');
// No rule for IPv4-mapped IPv6 (::ffff:0:0/96): BlockList already checks a mapped address against the
// IPv4 rules above, and such a rule would also match every plain IPv4 address, public ones included.
// Also the prefixes that embed an IPv4 address a gateway would reach on our behalf: IPv4-compatible
// (::/96, which holds :: and ::1 too), NAT64 (64:ff9b::/96, 64:ff9b:1::/48) and 6to4 (2002::/16),
// and the deprecated site-local fec0::/10.
for (const [net, prefix] of [
  ['::', 96], ['64:ff9b::', 96], ['64:ff9b:1::', 48], ['2002::', 16], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8],
] as const) {
  blocked.addSubnet(net, prefix, 'ipv6');
}

export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  return blocked.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

export type CallbackVerdict = { ok: true; url: URL } | { ok: false; malformed: boolean; reason: string };

/** Syntax only: an absolute http(s) URL without credentials. */
export function parseCallbackUrl(raw: string): CallbackVerdict {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, malformed: true, reason: 'callback.url is not an absolute URL' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, malformed: true, reason: 'callback.url must be http or https' };
  if (url.username || url.password) return { ok: false, malformed: true, reason: 'callback.url must not carry credentials' };
  return { ok: true, url };
}

/**
 * Whether the service will call this URL: syntax, then every address the host resolves to must be
 * public unless private targets are allowed. Checked at submit time and again right before the call.
 */
export async function checkCallbackUrl(
  raw: string,
  opts: { allowPrivate: boolean; resolve?: (host: string) => Promise<string[]> },
): Promise<CallbackVerdict> {
  const parsed = parseCallbackUrl(raw);
  if (!parsed.ok || opts.allowPrivate) return parsed;
  const host = parsed.url.hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost' || host.endsWith('.localhost')) return { ok: false, malformed: false, reason: `callback host ${host} is a loopback address` };
  let addresses: string[];
  try {
    addresses = isIP(host) ? [host] : await (opts.resolve ?? defaultResolve)(host);
  } catch {
    return { ok: false, malformed: false, reason: `callback host ${host} does not resolve` };
  }
  const bad = addresses.find(isPrivateAddress);
  if (bad) return { ok: false, malformed: false, reason: `callback host ${host} resolves to a private or reserved address; set CALLBACK_ALLOW_PRIVATE=true to allow` };
  return parsed;
}

async function defaultResolve(host: string): Promise<string[]> {
  const results = await lookup(host, { all: true });
  return results.map((r) => r.address);
}

/**
 * A `lookup` for the callback's connection that applies the same rule to the addresses it is about
 * to connect to, so a name that resolved to a public address when checked and to a private one a
 * moment later (DNS rebinding) is refused at connect time, not only at check time.
 */
export function guardedLookup(opts: { allowPrivate: boolean; resolve?: (host: string) => Promise<string[]> }): LookupFunction {
  const resolve = opts.resolve ?? defaultResolve;
  return (hostname, options, callback) => {
    resolve(hostname).then(
      (addresses) => {
        const bad = opts.allowPrivate ? undefined : addresses.find(isPrivateAddress);
        if (bad || addresses.length === 0) {
          const reason = bad ? `callback host ${hostname} resolves to a private or reserved address at connect time` : `callback host ${hostname} does not resolve`;
          return callback(Object.assign(new Error(reason), { code: bad ? 'ECALLBACKPRIVATE' : 'ENOTFOUND' }), '', 0);
        }
        const all = addresses.map((address) => ({ address, family: isIP(address) }));
        if (options.all) callback(null, all);
        else callback(null, all[0]!.address, all[0]!.family);
      },
      (err: Error) => callback(err, '', 0),
    );
  };
}
