import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import request from 'supertest';
import { buildRest, type RestService } from '../src/bootstrap.ts';
import { synthesizeMp3 } from '../../worker/fixtures/synth.ts';
import { startTestStore, testConfig, uniquePrefix, type TestStore } from '../../test/helpers/env.ts';
import { ownRedis, type OwnedRedis } from '../../test/helpers/processes.ts';

/** Redis at maxmemory (noeviction): writes fail with OOM, and that must stay one request's failure. */
describe('a Redis out of memory', () => {
  let redis: OwnedRedis;
  let admin: Redis;
  let store: TestStore;
  let rest: RestService;
  let dir: string;
  let mp3: Buffer;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'msaas-oom-'));
    redis = await ownRedis(dir);
    admin = new Redis(redis.url);
    store = await startTestStore();
    rest = await buildRest(testConfig(uniquePrefix('oom'), { REDIS_URL: redis.url }), store.endpoint, { resolveHost: async () => ['93.184.216.34'] });
    mp3 = Buffer.from(await synthesizeMp3({ seconds: 1, seed: 91 }));
  }, 60_000);
  afterAll(async () => {
    await rest?.close();
    admin?.disconnect();
    await redis?.stop();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 503 storage_full with Retry-After, keeps the shared connection, and works again once memory frees', async () => {
    const used = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))![1]);
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    await admin.config('SET', 'maxmemory', String(used + 256 * 1024));
    const filler = 'x'.repeat(16 * 1024);
    for (let i = 0; ; i++) {
      const ok = await admin.set(`filler:${i}`, filler).then(
        () => true,
        () => false,
      );
      if (!ok) break;
    }
    let reconnects = 0;
    rest.deps.queue.redis.on('reconnecting', () => reconnects++);

    const full = await request(rest.app).post('/apiv1/separate').send({ mp3: mp3.toString('base64') });
    expect(full.status).toBe(503);
    expect(full.body.error).toBe('storage_full');
    expect(full.body.detail).toMatch(/out of memory/);
    expect(full.headers['retry-after']).toBe('60');
    // reads still work on the same connection meanwhile
    expect((await request(rest.app).get('/apiv1/queue')).status).toBe(200);
    expect((await request(rest.app).get('/readyz')).status).toBe(200);

    await admin.config('SET', 'maxmemory', '0');
    const ok = await request(rest.app).post('/apiv1/separate').send({ mp3: mp3.toString('base64') });
    expect(ok.status).toBe(200);
    expect(ok.body.result).toBe('enqueued');
    expect(reconnects).toBe(0);
  });
});
