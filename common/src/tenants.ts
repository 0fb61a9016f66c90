import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * Who a request acts for. Every song a tenant submits is a claim of that tenant; with no keys
 * configured there is one implicit tenant (the lab's behaviour: everybody sees everything).
 */
export interface Tenant {
  /** Stable, safe to log and to use in Redis key names; never the key itself. */
  readonly id: string;
}

/** The tenant of every request when no API key is configured. */
export const IMPLICIT_TENANT: Tenant = { id: 'default' };

const TENANT_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

interface KeyEntry {
  tenant: Tenant;
  digest: Buffer;
}

const digest = (key: string): Buffer => createHash('sha256').update(key).digest();

/** The id of a key given without one: derived from the key's hash, so it is stable and reveals nothing. */
export function derivedTenantId(key: string): string {
  return `key-${digest(key).toString('hex').slice(0, 12)}`;
}

export class TenantConfigError extends Error {
  override name = 'TenantConfigError';
}

/**
 * Parses key entries: `id:key` or a bare `key`, separated by commas or new lines (a keys file has
 * one a line; `#` starts a comment). Ids must be unique; so must keys.
 */
export function parseKeyEntries(text: string, source: string): { id: string; key: string }[] {
  const out: { id: string; key: string }[] = [];
  for (const raw of text.split(/[,\n]/)) {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) continue;
    const colon = line.indexOf(':');
    const id = colon > 0 ? line.slice(0, colon).trim() : null;
    const key = colon > 0 ? line.slice(colon + 1).trim() : line;
    if (!key) throw new TenantConfigError(`${source}: an entry has an empty key`);
    if (id !== null && !TENANT_ID.test(id)) {
      throw new TenantConfigError(`${source}: tenant id "${id.slice(0, 70)}" must be 1–64 letters, digits, '_', '.' or '-'`);
    }
    out.push({ id: id ?? derivedTenantId(key), key });
  }
  return out;
}

/** Resolves presented API keys to tenants, in constant time per configured key. */
export class TenantDirectory {
  private readonly entries: KeyEntry[];

  constructor(entries: { id: string; key: string }[]) {
    const ids = new Set<string>();
    const keys = new Set<string>();
    for (const e of entries) {
      if (ids.has(e.id)) throw new TenantConfigError(`tenant id "${e.id}" is configured twice`);
      if (keys.has(e.key)) throw new TenantConfigError(`a key is configured twice (tenant "${e.id}")`);
      ids.add(e.id);
      keys.add(e.key);
    }
    this.entries = entries.map((e) => ({ tenant: { id: e.id }, digest: digest(e.key) }));
  }

  /** True when keys are configured (every /apiv1 route then needs one). */
  get authRequired(): boolean {
    return this.entries.length > 0;
  }

  get size(): number {
    return this.entries.length;
  }

  /** The tenant holding this key, or null. Every entry is compared, so timing says nothing about which. */
  lookup(key: string): Tenant | null {
    const d = digest(key);
    let found: Tenant | null = null;
    for (const e of this.entries) if (timingSafeEqual(e.digest, d)) found = e.tenant;
    return found;
  }
}

/** `API_KEYS` and the file named by `API_KEYS_FILE`, together. */
export function loadTenantDirectory(config: { API_KEYS?: string | undefined; API_KEYS_FILE?: string | undefined }, readFile: (path: string) => string = (p) => readFileSync(p, 'utf8')): TenantDirectory {
  const entries = config.API_KEYS ? parseKeyEntries(config.API_KEYS, 'API_KEYS') : [];
  if (config.API_KEYS_FILE) {
    let text: string;
    try {
      text = readFile(config.API_KEYS_FILE);
    } catch (err) {
      throw new TenantConfigError(`API_KEYS_FILE=${config.API_KEYS_FILE}: ${(err as Error).message}`);
    }
    entries.push(...parseKeyEntries(text, `API_KEYS_FILE ${config.API_KEYS_FILE}`));
  }
  return new TenantDirectory(entries);
}
