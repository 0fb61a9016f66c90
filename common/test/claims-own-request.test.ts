/**
 * The queue's side of issue 22 items 4, 6 and 9 on real Redis: each claim keeps its own request,
 * waits (`pending`) only for runs made for it and is reported once per request with a stable
 * delivery id; a run for a missing format leaves the finished files listed as stored; failed songs
 * hold an active place; a refused submission is refused before its upload is asked for.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { Queue, TRACKS, makeKeys, type Keys } from '../src/index.ts';
import { REDIS_URL, deletePrefix, uniquePrefix } from '../../test/helpers/env.ts';
import { TestWorker } from './test-worker.ts';

let redis: Redis;
let prefix: string;
let keys: Keys;
let queue: Queue;
const h = (n: number): string => n.toString(16).padStart(56, 'c');

beforeAll(() => {
  prefix = uniquePrefix('claims-own');
  redis = new Redis(REDIS_URL);
  keys = makeKeys(prefix);
  queue = new Queue(redis, keys, { retentionSec: 600, failedHoldSec: 1 });
});
afterAll(async () => {
  await deletePrefix(prefix);
  redis.disconnect();
});

async function separate(hash: string, stems: readonly string[] = TRACKS): Promise<string[]> {
  const w = new TestWorker(queue);
  await w.claim(hash);
  await queue.recordStems(w.id, hash, stems as typeof TRACKS);
  return (await w.complete(hash)).sort();
}

describe("a claim's own request", () => {
  it("another tenant's format run makes that format alone, keeps the finished files listed, and reports only its own claim, once", async () => {
    const x = h(1);
    await queue.submit({ hash: x, tenant: 'alice', sizeBytes: 1, callback: { url: 'https://hooks.example.com/a' } });
    expect(await separate(x)).toEqual(['alice']);
    const aliceClaim = await queue.getClaim(x, 'alice');
    expect(aliceClaim).toMatchObject({ pending: false, askFormats: ['mp3'], askStems: [...TRACKS] });
    expect(aliceClaim!.callback?.eventId).toMatch(/^[0-9a-f]{40}$/);
    const aliceEvent = aliceClaim!.callback!.eventId;

    // bob had no claim: the note names nothing of alice's request
    expect(await queue.submit({ hash: x, tenant: 'bob', sizeBytes: 1, format: 'flac' })).toEqual({ result: 'enqueued' });
    expect(await queue.getJob(x)).toMatchObject({ state: 'queued', formats: ['flac'], storedFormats: ['mp3'], stems: [...TRACKS] });
    // a third tenant asking what is finished is served at once, and the running record gets no TTL
    expect(await queue.submit({ hash: x, tenant: 'carol', sizeBytes: 1 })).toEqual({ result: 'done' });
    expect(await redis.ttl(keys.job(x))).toBe(-1);
    expect(await queue.getClaim(x, 'carol')).toMatchObject({ pending: false });

    expect(await separate(x)).toEqual(['bob']);
    expect(await queue.getJob(x)).toMatchObject({ state: 'done', formats: ['mp3', 'flac'], storedFormats: ['mp3', 'flac'] });
    // alice's delivery is untouched; bob's own later request names only what he asked before
    expect((await queue.getClaim(x, 'alice'))!.callback?.eventId).toBe(aliceEvent);
    expect(await queue.submit({ hash: x, tenant: 'bob', sizeBytes: 1, format: 'wav' })).toEqual({ result: 'enqueued', rerunOf: { formats: ['flac'], stems: [...TRACKS] } });
    expect(await separate(x)).toEqual(['bob']);
    expect((await queue.getClaim(x, 'bob'))!.askFormats).toEqual(['flac', 'wav']);
  });

  it('a run for more stems rewrites every format, so nothing stays listed as stored while it runs', async () => {
    const y = h(2);
    await queue.submit({ hash: y, tenant: 'alice', sizeBytes: 1 });
    await separate(y);
    await queue.submit({ hash: y, tenant: 'bob', sizeBytes: 1, stems: ['vocals', 'instrumental'] });
    expect(await queue.getJob(y)).toMatchObject({ formats: ['mp3'], storedFormats: [], stems: [] });
  });

  it('a claim waiting for a run keeps waiting when it asks more; one whose request was made does not', async () => {
    const z = h(3);
    await queue.submit({ hash: z, tenant: 'alice', sizeBytes: 1 });
    await queue.submit({ hash: z, tenant: 'bob', sizeBytes: 1 });
    expect(await queue.getClaim(z, 'bob')).toMatchObject({ pending: true });
    expect(await separate(z)).toEqual(['alice', 'bob']);
    expect(await queue.getClaim(z, 'bob')).toMatchObject({ pending: false, run: { attempts: 1, worker: null } });
    expect((await queue.getClaim(z, 'alice'))!.run!.worker).toMatch(/^test-worker-/);
  });
});

describe('failed songs are charged', () => {
  it('hold an active place until the hold passes or the tenant deletes them; a refusal asks for no upload', async () => {
    const w = new TestWorker(queue);
    const [f1, f2, f3] = [h(10), h(11), h(12)];
    expect(await queue.submit({ hash: f1, tenant: 'dora', sizeBytes: 1, maxActive: 1 })).toEqual({ result: 'enqueued' });
    await w.claim(f1);
    await w.fail(f1, 'bad audio: test');
    expect(await queue.activeCount('dora')).toBe(1);
    // refused before the upload is asked for: nothing would be stored for it
    expect(await queue.submit({ hash: f2, tenant: 'dora', sizeBytes: 1, maxActive: 1, uploaded: false })).toEqual({ result: 'over_active' });
    // the failed song itself may be sent again (it holds its place already)
    expect(await queue.submit({ hash: f1, tenant: 'dora', sizeBytes: 1, maxActive: 1, uploaded: false })).toEqual({ result: 'upload' });
    await new Promise((r) => setTimeout(r, 1100));
    expect(await queue.activeCount('dora')).toBe(0);
    expect(await queue.submit({ hash: f2, tenant: 'dora', sizeBytes: 1, maxActive: 1 })).toEqual({ result: 'enqueued' });
    await w.claim(f2);
    await w.fail(f2, 'bad audio: test');
    expect(await queue.submit({ hash: f3, tenant: 'dora', sizeBytes: 1, maxActive: 1 })).toEqual({ result: 'over_active' });
    expect(await queue.dropClaim(f2, 'dora')).toBe('last');
    expect(await queue.submit({ hash: f3, tenant: 'dora', sizeBytes: 1, maxActive: 1 })).toEqual({ result: 'enqueued' });
  });

  it('the sweep list of failed uploads runs oldest first and stops at the first song already swept', async () => {
    const w = new TestWorker(queue);
    const fs = [h(20), h(21), h(22)];
    for (const f of fs) {
      await queue.submit({ hash: f, tenant: 'erin', sizeBytes: 1 });
      await w.claim(f);
      await w.fail(f, 'bad audio: test');
    }
    const due = await queue.failedUploads(100);
    expect(due.filter((x) => fs.includes(x))).toEqual(fs);
    for (const x of due) expect(await queue.markUploadGone(x, true)).toBe(true);
    expect(await queue.markUploadGone(fs[0]!, true)).toBe(false);
    expect(await queue.failedUploads(100)).toEqual([]);
    // a removal that failed takes its mark back: that song is due again (and only it)
    expect(await queue.markUploadGone(fs[2]!, false)).toBe(true);
    expect(await queue.failedUploads(100)).toEqual([fs[2]]);
  });
});
