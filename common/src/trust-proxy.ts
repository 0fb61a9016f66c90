import { BlockList, isIP } from 'node:net';

/**
 * Which peers may tell us the client's address in `X-Forwarded-For` (TRUST_PROXY):
 * none (the socket peer is the client), the nearest `hops` proxies, or peers in a list of
 * addresses and CIDRs.
 */
export type TrustPolicy = { kind: 'none' } | { kind: 'hops'; hops: number } | { kind: 'cidrs'; list: BlockList; text: string };

/** '' or unset → none; an integer → that many hops; else comma-separated addresses or CIDRs. Throws on anything else. */
export function parseTrustProxy(value: string | undefined): TrustPolicy {
  const text = value?.trim() ?? '';
  if (text === '' || text === '0') return { kind: 'none' };
  if (/^\d+$/.test(text)) return { kind: 'hops', hops: Number(text) };
  const list = new BlockList();
  for (const entry of text.split(',').map((e) => e.trim()).filter(Boolean)) {
    const [address, prefixText, extra] = entry.split('/');
    const family = isIP(address ?? '');
    const prefix = prefixText === undefined ? (family === 6 ? 128 : 32) : Number(prefixText);
    if (family === 0 || extra !== undefined || !/^\d+$/.test(prefixText ?? '0') || prefix > (family === 6 ? 128 : 32)) {
      throw new Error(`TRUST_PROXY: "${entry}" is not an address or CIDR (use '' for none, a hop count, or e.g. 10.0.0.0/8,fd00::/8)`);
    }
    list.addSubnet(address!, prefix, family === 6 ? 'ipv6' : 'ipv4');
  }
  return { kind: 'cidrs', list, text };
}
