import { describe, expect, it } from 'vitest';
import { ConfigError, IMPLICIT_TENANT, TenantConfigError, derivedTenantId, loadConfig, loadTenantDirectory, parseKeyEntries } from '../src/index.ts';

describe('tenants from API keys', () => {
  it('reads id:key entries and gives a bare key a stable id from its hash, never the key itself', () => {
    const entries = parseKeyEntries('alice:k-alice-0001, bob:k-bob-0002 ,plainkey-0003', 'API_KEYS');
    expect(entries.map((e) => e.id)).toEqual(['alice', 'bob', derivedTenantId('plainkey-0003')]);
    expect(derivedTenantId('plainkey-0003')).toMatch(/^key-[0-9a-f]{12}$/);
    expect(derivedTenantId('plainkey-0003')).not.toContain('plainkey');
    expect(derivedTenantId('plainkey-0003')).toBe(derivedTenantId('plainkey-0003'));
  });

  it('resolves each key to its tenant and refuses an unknown one', () => {
    const dir = loadTenantDirectory({ API_KEYS: 'alice:k-alice-0001,bob:k-bob-0002' });
    expect(dir.authRequired).toBe(true);
    expect(dir.lookup('k-alice-0001')).toEqual({ id: 'alice' });
    expect(dir.lookup('k-bob-0002')).toEqual({ id: 'bob' });
    expect(dir.lookup('k-bob-000')).toBeNull();
    expect(loadTenantDirectory({}).authRequired).toBe(false);
    expect(IMPLICIT_TENANT.id).toBe('default');
  });

  it('adds the keys file (one entry a line, # comments) to API_KEYS', () => {
    const file = '# studio keys\nstudio-1:k-studio-1 # main\n\nk-anonymous-1\n';
    const dir = loadTenantDirectory({ API_KEYS: 'alice:k-alice-0001', API_KEYS_FILE: '/keys' }, (p) => (p === '/keys' ? file : ''));
    expect(dir.size).toBe(3);
    expect(dir.lookup('k-studio-1')).toEqual({ id: 'studio-1' });
    expect(dir.lookup('k-anonymous-1')).toEqual({ id: derivedTenantId('k-anonymous-1') });
    expect(() => loadTenantDirectory({ API_KEYS_FILE: '/missing' }, () => { throw new Error('ENOENT'); })).toThrow(/API_KEYS_FILE=\/missing: ENOENT/);
  });

  it('refuses duplicate ids, duplicate keys, empty keys and ids outside [A-Za-z0-9_.-]', () => {
    expect(() => loadTenantDirectory({ API_KEYS: 'a:k1,a:k2' })).toThrow(TenantConfigError);
    expect(() => loadTenantDirectory({ API_KEYS: 'a:k1,b:k1' })).toThrow(/configured twice/);
    expect(() => parseKeyEntries('a:', 'API_KEYS')).toThrow(/empty key/);
    expect(() => parseKeyEntries('al ice:k1', 'API_KEYS')).toThrow(/tenant id/);
    expect(() => loadConfig({ API_KEYS: 'bad id:k1' })).toThrow(ConfigError);
  });
});
