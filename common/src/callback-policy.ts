import { Resolver, lookup } from 'node:dns/promises';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/**
 * Addresses a callback may not reach unless CALLBACK_ALLOW_PRIVATE=true (SSRF guard): every range of
 * the IANA special-purpose registries that is not globally reachable, or is documentation.
 */
const blockedV4 = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24],
  ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) blockedV4.addSubnet(net, prefix, 'ipv4');
// IPv6 ranges refused whole: IPv4-compatible (::/96, which holds :: and ::1 too); the prefixes that
// embed an IPv4 address a gateway would reach on our behalf, NAT64 (64:ff9b::/96, 64:ff9b:1::/48)
// and 6to4 (2002::/16), whatever that address (as the network policy's egress exceptions in k8s/);
// discard-only (100::/64); the IETF protocol assignments (2001::/23: Teredo 2001::/32, whose client
// address is obfuscated, benchmarking, ORCHID, anycast services); documentation (2001:db8::/32,
// 3fff::/20); SRv6 SIDs (5f00::/16); unique-local, link-local, the deprecated site-local, multicast.
const blockedV6 = new BlockList();
for (const [net, prefix] of [
  ['::', 96], ['64:ff9b::', 96], ['64:ff9b:1::', 48], ['100::', 64], ['2001::', 23], ['2001:db8::', 32], ['2002::', 16],
  ['3fff::', 20], ['5f00::', 16], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8],
] as const) blockedV6.addSubnet(net, prefix, 'ipv6');

/** The eight 16-bit groups of an address `isIP` accepted as IPv6 (a dotted IPv4 tail is two groups). */
export function ipv6Groups(address: string): number[] {
  let text = address.split('%')[0]!;
  const tail: number[] = [];
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    tail.push((a << 8) | b, (c << 8) | d);
    text = text.slice(0, dotted.index);
    if (text.endsWith(':') && !text.endsWith('::')) text = text.slice(0, -1);
  }
  const hex = (part: string): number[] => (part === '' ? [] : part.split(':').map((x) => parseInt(x, 16)));
  const gap = text.indexOf('::');
  if (gap < 0) return [...hex(text), ...tail];
  const head = hex(text.slice(0, gap));
  const rest = [...hex(text.slice(gap + 2)), ...tail];
  return [...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest];
}

/**
 * The IPv4 address an IPv6 address is another spelling of: IPv4-mapped (::ffff:0:0/96, the host's
 * own IPv4 stack) and IPv4-translated (::ffff:0:0:0/96, SIIT). Such an address is judged by its IPv4
 * address: a public one stays reachable, a private one is refused as the IPv4 address itself is.
 */
export function embeddedIPv4(address: string): string | null {
  const g = ipv6Groups(address);
  const zero = (from: number, to: number): boolean => g.slice(from, to).every((x) => x === 0);
  const v4 = (hi: number, lo: number): string => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  if (zero(0, 5) && g[5] === 0xffff) return v4(g[6]!, g[7]!);
  if (zero(0, 4) && g[4] === 0xffff && g[5] === 0) return v4(g[6]!, g[7]!);
  return null;
}

export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  if (family === 4) return blockedV4.check(address, 'ipv4');
  const v4 = embeddedIPv4(address);
  return v4 !== null ? blockedV4.check(v4, 'ipv4') : blockedV6.check(address, 'ipv6');
}

export type CallbackVerdict = { ok: true; url: URL } | { ok: false; malformed: boolean; reason: string };
/** What can be decided without DNS; `unresolvedHost` is the name still to resolve (null: nothing to resolve). */
export type CallbackTarget = { ok: true; url: URL; unresolvedHost: string | null } | { ok: false; malformed: boolean; reason: string };

export type Resolve = (host: string) => Promise<string[]>;

export interface CallbackPolicy {
  /** CALLBACK_ALLOW_PRIVATE: any address and any port (local development and tests). */
  allowPrivate: boolean;
  /** CALLBACK_ALLOWED_PORTS: the ports a URL may name, explicitly or by its scheme's default (default 80, 443). */
  allowedPorts?: readonly number[];
  /** How names are resolved (default: DNS through c-ares, off the libuv thread pool). */
  resolve?: Resolve;
  /** DNS_TIMEOUT_MS: how long resolving one name may take (default 2000). */
  dnsTimeoutMs?: number;
}

export const DEFAULT_CALLBACK_PORTS: readonly number[] = [80, 443];
const DEFAULT_DNS_TIMEOUT_MS = 2000;

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

/** The port a URL connects to (its scheme's default when it names none). */
function portOf(url: URL): number {
  return url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
}

/**
 * Everything the policy can decide without DNS: syntax, loopback names and private IP literals, the port.
 * A name left to resolve comes back as `unresolvedHost`.
 */
export function checkCallbackTarget(raw: string, policy: CallbackPolicy): CallbackTarget {
  const parsed = parseCallbackUrl(raw);
  if (!parsed.ok) return parsed;
  if (policy.allowPrivate) return { ...parsed, unresolvedHost: null };
  // The address first (the lab's http://localhost:5000 is refused as loopback, its clearest reason), then the port.
  const host = parsed.url.hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost' || host.endsWith('.localhost')) return { ok: false, malformed: false, reason: `callback host ${host} is a loopback address` };
  if (isIP(host) && isPrivateAddress(host)) return { ok: false, malformed: false, reason: privateReason(host) };
  const ports = policy.allowedPorts ?? DEFAULT_CALLBACK_PORTS;
  const port = portOf(parsed.url);
  if (!ports.includes(port)) {
    return { ok: false, malformed: false, reason: `callback port ${port} is not allowed (CALLBACK_ALLOWED_PORTS: ${ports.join(', ')})` };
  }
  return { ...parsed, unresolvedHost: isIP(host) ? null : host };
}

const privateReason = (host: string): string => `callback host ${host} resolves to a private or reserved address; set CALLBACK_ALLOW_PRIVATE=true to allow`;

/** The DNS half of the check: every address the name resolves to, within the deadline, must be public. */
export async function checkCallbackHost(url: URL, host: string, policy: CallbackPolicy): Promise<CallbackVerdict> {
  const timeoutMs = policy.dnsTimeoutMs ?? DEFAULT_DNS_TIMEOUT_MS;
  let addresses: string[];
  try {
    addresses = await withDeadline(policy.resolve ?? dnsResolver({ timeoutMs }), timeoutMs)(host);
  } catch (err) {
    if ((err as { code?: string }).code === 'ETIMEOUT') return { ok: false, malformed: false, reason: `callback host ${host} did not resolve within ${timeoutMs} ms (DNS_TIMEOUT_MS)` };
    return { ok: false, malformed: false, reason: `callback host ${host} does not resolve` };
  }
  if (addresses.length === 0) return { ok: false, malformed: false, reason: `callback host ${host} does not resolve` };
  if (addresses.some(isPrivateAddress)) return { ok: false, malformed: false, reason: privateReason(host) };
  return { ok: true, url };
}

/**
 * Whether the service will call this URL: syntax, an allowed port, then every address the host
 * resolves to must be public unless private targets are allowed. Checked at submit time and
 * again right before the call.
 */
export async function checkCallbackUrl(raw: string, policy: CallbackPolicy): Promise<CallbackVerdict> {
  const target = checkCallbackTarget(raw, policy);
  if (!target.ok) return target;
  return target.unresolvedHost ? checkCallbackHost(target.url, target.unresolvedHost, policy) : { ok: true, url: target.url };
}

/** `resolve`, failing with code ETIMEOUT when it has not answered within `timeoutMs`. */
export function withDeadline(resolve: Resolve, timeoutMs: number): Resolve {
  return (host) => {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error(`DNS lookup of ${host} timed out after ${timeoutMs} ms`), { code: 'ETIMEOUT' })), timeoutMs);
    });
    return Promise.race([resolve(host), deadline]).finally(() => clearTimeout(timer));
  };
}

const resolvers = new Map<string, Resolver>();

/**
 * A/AAAA lookups through c-ares (`dns.promises.Resolver`): network I/O on the event loop, not a
 * getaddrinfo call holding one of libuv's four pool threads (which static files, the store's and
 * Redis's own lookups share). One try per server, `timeoutMs` each. Reads no /etc/hosts and applies
 * no search domains: a callback host is a public, fully qualified name.
 */
export function dnsResolver(opts: { timeoutMs: number; servers?: string[] }): Resolve {
  const id = `${opts.timeoutMs}|${opts.servers?.join(',') ?? ''}`;
  let resolver = resolvers.get(id);
  if (!resolver) {
    resolver = new Resolver({ timeout: opts.timeoutMs, tries: 1 });
    if (opts.servers) resolver.setServers(opts.servers);
    resolvers.set(id, resolver);
  }
  const r = resolver;
  return async (host) => {
    const [v4, v6] = await Promise.allSettled([r.resolve4(host), r.resolve6(host)]);
    const addresses = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
    if (addresses.length > 0) return addresses;
    const errors = [v4, v6].map((x) => (x.status === 'rejected' ? (x.reason as { code?: string }) : null));
    const timedOut = errors.some((e) => e?.code === 'ETIMEOUT' || e?.code === 'ECANCELLED');
    throw Object.assign(new Error(`DNS lookup of ${host} ${timedOut ? 'timed out' : 'found no address'}`), { code: timedOut ? 'ETIMEOUT' : 'ENOTFOUND' });
  };
}

/** The system's resolver (getaddrinfo: /etc/hosts, search domains), for when private targets are allowed anyway. */
async function systemLookup(host: string): Promise<string[]> {
  const results = await lookup(host, { all: true });
  return results.map((r) => r.address);
}

/**
 * A `lookup` for the callback's connection that applies the same rule to the addresses it is about
 * to connect to, so a name that resolved to a public address when checked and to a private one a
 * moment later (DNS rebinding) is refused at connect time, not only at check time.
 */
export function guardedLookup(policy: CallbackPolicy): LookupFunction {
  const timeoutMs = policy.dnsTimeoutMs ?? DEFAULT_DNS_TIMEOUT_MS;
  const resolve = withDeadline(policy.resolve ?? (policy.allowPrivate ? systemLookup : dnsResolver({ timeoutMs })), timeoutMs);
  return (hostname, options, callback) => {
    resolve(hostname).then(
      (addresses) => {
        const bad = policy.allowPrivate ? undefined : addresses.find(isPrivateAddress);
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
