import type { Request, RequestHandler, Response } from 'express';
import { isIP } from 'node:net';
import { parseTrustProxy, type TrustPolicy } from '@msaas/common';

export { parseTrustProxy, type TrustPolicy };

/** The eight 16-bit groups of an IPv6 address (zone id dropped), or null when it is not one. */
function ipv6Groups(address: string): number[] | null {
  const plain = address.split('%')[0]!;
  if (isIP(plain) !== 6) return null;
  let text = plain;
  const v4 = text.match(/(\d+\.\d+\.\d+\.\d+)$/);
  if (v4) {
    const o = v4[1]!.split('.').map(Number);
    text = `${text.slice(0, -v4[1]!.length)}${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const parse = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

/** The address in its plain form: IPv4-mapped IPv6 (`::ffff:1.2.3.4`) as IPv4; null when it is not an IP address. */
export function normalizeAddress(raw: string | undefined): string | null {
  const text = raw?.trim() ?? '';
  if (isIP(text) === 4) return text;
  const groups = ipv6Groups(text);
  if (!groups) return null;
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return [groups[6]! >> 8, groups[6]! & 255, groups[7]! >> 8, groups[7]! & 255].join('.');
  }
  return text.split('%')[0]!.toLowerCase();
}

/**
 * The client address a request came from: the socket peer, or, through each trusted hop, the entry
 * before it in X-Forwarded-For. The walk stops at the first entry that is not an IP address, so a
 * header value can never become the identity — at worst the last proxy's address is.
 */
export function resolveClientAddress(peer: string | undefined, forwardedFor: string | undefined, policy: TrustPolicy): string | null {
  let current = normalizeAddress(peer);
  if (!current || policy.kind === 'none' || !forwardedFor) return current;
  const chain = forwardedFor.split(',').map((e) => e.trim()).reverse();
  for (let hop = 0; hop < chain.length; hop++) {
    const trusted = policy.kind === 'hops' ? hop < policy.hops : policy.list.check(current, isIP(current) === 6 ? 'ipv6' : 'ipv4');
    if (!trusted) break;
    const next = normalizeAddress(chain[hop]);
    if (!next) break;
    current = next;
  }
  return current;
}

/** The identity limits count by: an IPv4 address, or the /64 an IPv6 address is in (one subscriber's usual allocation). */
export function clientKey(address: string | null): string {
  if (!address) return 'unknown';
  if (isIP(address) === 4) return address;
  const groups = ipv6Groups(address);
  return groups ? `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64` : 'unknown';
}

/**
 * Express's own `trust proxy` setting for the same policy, so `req.ip` agrees with
 * `clientAddressOf` wherever the two can agree (Express does not validate header entries).
 */
export function expressTrustSetting(policy: TrustPolicy): boolean | number | ((addr: string, i: number) => boolean) {
  if (policy.kind === 'none') return false;
  if (policy.kind === 'hops') return policy.hops;
  return (addr) => {
    const a = normalizeAddress(addr);
    return a !== null && policy.list.check(a, isIP(a) === 6 ? 'ipv6' : 'ipv4');
  };
}

/** Resolves the client once per request (`res.locals.clientAddress`, `res.locals.clientKey`). */
export function identifyClient(policy: TrustPolicy): RequestHandler {
  return (req, res, next) => {
    const address = resolveClientAddress(req.socket.remoteAddress, req.get('x-forwarded-for'), policy);
    res.locals.clientAddress = address;
    res.locals.clientKey = clientKey(address);
    next();
  };
}

/** The key per-address limits use for this request (set by `identifyClient`). */
export function clientKeyOf(req: Request, res: Response): string {
  return (res.locals.clientKey as string | undefined) ?? clientKey(normalizeAddress(req.socket.remoteAddress));
}
