// loadConfig's refusal of MinIO's default credential inside a Kubernetes pod.
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.ts';

const IN_POD = { KUBERNETES_SERVICE_HOST: '10.96.0.1', MINIO_ENDPOINT: 'minio' };
const OWN_KEYS = { MINIO_ACCESS_KEY: 'msaas-rest', MINIO_SECRET_KEY: 'f00dfeedf00dfeedf00dfeedf00dfeed' };

function refusal(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('loadConfig accepted the configuration');
}

describe('loadConfig in a Kubernetes pod', () => {
  it('refuses the minioadmin default when no key is given, naming the variable', () => {
    expect(refusal({ ...IN_POD })).toMatch(/MINIO_ACCESS_KEY="minioadmin": the MinIO default credential is refused in a Kubernetes pod/);
  });

  it('refuses minioadmin given explicitly as the key or as the secret', () => {
    expect(refusal({ ...IN_POD, ...OWN_KEYS, MINIO_ACCESS_KEY: 'minioadmin' })).toMatch(/MINIO_ACCESS_KEY=/);
    const msg = refusal({ ...IN_POD, ...OWN_KEYS, MINIO_SECRET_KEY: 'minioadmin' });
    expect(msg).toMatch(/MINIO_SECRET_KEY="minioadmin"/);
    expect(msg).not.toMatch(/MINIO_ACCESS_KEY/);
  });

  it('refuses an empty or blank key or secret', () => {
    expect(refusal({ ...IN_POD, ...OWN_KEYS, MINIO_ACCESS_KEY: '' })).toMatch(/MINIO_ACCESS_KEY="": empty is refused/);
    expect(refusal({ ...IN_POD, ...OWN_KEYS, MINIO_SECRET_KEY: '   ' })).toMatch(/MINIO_SECRET_KEY="": empty is refused/);
  });

  it('accepts a service key pair of its own', () => {
    const config = loadConfig({ ...IN_POD, ...OWN_KEYS });
    expect(config.MINIO_ACCESS_KEY).toBe('msaas-rest');
  });

  it('does not ask for MinIO keys from a service without an object store (logs: no MINIO_ENDPOINT)', () => {
    expect(loadConfig({ KUBERNETES_SERVICE_HOST: '10.96.0.1' }).MINIO_ENDPOINT).toBeUndefined();
  });

  it('keeps the minioadmin default outside a cluster (local development)', () => {
    const config = loadConfig({ MINIO_ENDPOINT: '127.0.0.1' });
    expect(config.MINIO_ACCESS_KEY).toBe('minioadmin');
    expect(config.MINIO_SECRET_KEY).toBe('minioadmin');
  });
});

describe('loadConfig and TRUST_PROXY', () => {
  it('refuses a TRUST_PROXY that is neither empty, a hop count nor addresses/CIDRs, naming it', () => {
    expect(refusal({ TRUST_PROXY: '10.0.0.0/8,ingress' })).toMatch(/TRUST_PROXY: "ingress" is not an address or CIDR/);
    expect(refusal({ TRUST_PROXY: '10.0.0.0/33' })).toMatch(/TRUST_PROXY: "10.0.0.0\/33"/);
  });

  it('takes none, a hop count, and a CIDR list', () => {
    for (const value of ['', '1', '10.0.0.0/8, fd00::/8, 192.168.1.7']) expect(loadConfig({ TRUST_PROXY: value }).TRUST_PROXY).toBe(value.trim() || undefined);
  });
});
