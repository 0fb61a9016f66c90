// ADMIN_PORT: a real rest process (node rest/src/main.ts) serves /readyz and /metrics on the admin
// port only, and the API (with /healthz, which the lab and the tests use) on the main port.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRestProcess, stopRestProcess, type RestProcess } from './helpers/rest-process.ts';
import { deletePrefix, REDIS_URL, startTestStore, uniquePrefix, type TestStore } from '../../test/helpers/env.ts';



const get = (port: number, p: string) => fetch(`http://127.0.0.1:${port}${p}`);

let store: TestStore;
let withAdmin: RestProcess | undefined;
let withoutAdmin: RestProcess | undefined;
const prefix = uniquePrefix('admin-port');

beforeAll(async () => {
  store = await startTestStore();
  const env = {
    REDIS_URL,
    REDIS_PREFIX: prefix,
    MINIO_ENDPOINT: store.endpoint.endPoint,
    MINIO_PORT: String(store.endpoint.port),
    MINIO_ACCESS_KEY: store.endpoint.accessKey,
    MINIO_SECRET_KEY: store.endpoint.secretKey,
    MINIO_USE_SSL: 'false',
    LOG_LEVEL: 'warn',
    PORT: '0',
    HOST: '127.0.0.1',
  };
  [withAdmin, withoutAdmin] = await Promise.all([startRestProcess({ ...env, ADMIN_PORT: '0' }, { wantAdmin: true }), startRestProcess(env)]);
}, 90_000);

afterAll(async () => {
  await Promise.all([stopRestProcess(withAdmin), stopRestProcess(withoutAdmin)]);
  await store?.close();
  await deletePrefix(prefix);
});

describe('rest with ADMIN_PORT set', () => {
  it('listens on a second port, apart from the API port', () => {
    expect(withAdmin!.adminPort).toBeGreaterThan(0);
    expect(withAdmin!.adminPort).not.toBe(withAdmin!.port);
  });

  it('answers /metrics and /readyz on the admin port', async () => {
    const metrics = await get(withAdmin!.adminPort!, '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await metrics.text()).toMatch(/^msaas_queue_length /m);
    const ready = await get(withAdmin!.adminPort!, '/readyz');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', checks: { redis: 'ok', objectStore: 'ok' } });
    expect((await get(withAdmin!.adminPort!, '/healthz')).status).toBe(200);
  });

  it('answers 404 for /metrics and /readyz on the API port, and keeps /healthz there', async () => {
    for (const p of ['/metrics', '/readyz']) {
      const r = await get(withAdmin!.port, p);
      expect(r.status, p).toBe(404);
      expect(await r.json()).toMatchObject({ error: 'not_found' });
    }
    const health = await get(withAdmin!.port, '/healthz');
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
  });

  it('serves nothing but the probes and metrics on the admin port', async () => {
    expect((await get(withAdmin!.adminPort!, '/apiv1/queue')).status).toBe(404);
    expect((await get(withAdmin!.adminPort!, '/')).status).toBe(404);
  });
});

describe('rest without ADMIN_PORT (the lab, npm start)', () => {
  it('serves /healthz, /readyz and /metrics on the API port, and opens no other listener', async () => {
    expect(withoutAdmin!.adminPort).toBeNull();
    expect((await get(withoutAdmin!.port, '/healthz')).status).toBe(200);
    expect((await get(withoutAdmin!.port, '/readyz')).status).toBe(200);
    const metrics = await get(withoutAdmin!.port, '/metrics');
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/^msaas_http_requests_total/m);
  });
});
