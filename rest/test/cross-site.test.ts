/**
 * Cross-site request forgery guard, against the real app (real Redis, real s3rver), keys off —
 * where a visitor's browser has nothing a forging page would lack. A state change that a browser
 * marks as coming from a page (Origin, Sec-Fetch-Site: cross-site/same-site) must carry
 * X-Requested-With or a JSON body; the lab's clients (no such headers) are unaffected.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import { songhash } from '@msaas/common';
import { storeSeparated } from '../../common/test/test-worker.ts';
import { synthesizeMp3 } from '../../worker/fixtures/synth.ts';
import { restUnderTest, type RestUnderTest } from './helpers/rest-under-test.ts';

let t: RestUnderTest;
let clip: Buffer;
let hash: string;

const EVIL = { Origin: 'https://evil.example' };
const IMG = { 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Mode': 'no-cors', 'Sec-Fetch-Dest': 'image' };
const SIBLING = { 'Sec-Fetch-Site': 'same-site' };
const PAGE = { Origin: 'http://localhost:5000', 'Sec-Fetch-Site': 'same-origin', 'X-Requested-With': 'XMLHttpRequest' };

beforeAll(async () => {
  t = await restUnderTest('cross-site');
  clip = Buffer.from(await synthesizeMp3({ seconds: 1, seed: 8181 }));
  hash = songhash(clip);
  await storeSeparated(t.rest.deps, hash, clip);
});
afterAll(async () => t?.close());

const stemStored = async (track: 'vocals' | 'bass' | 'drums' | 'other'): Promise<boolean> => (await request(t.rest.app).head(`/apiv1/track/${hash}/${track}.mp3`)).status === 200;

function expectRefused(res: request.Response): void {
  expect(res.status).toBe(403);
  expect(res.body.error).toBe('cross_site');
  expect(res.body.detail).toMatch(/X-Requested-With/);
}

describe('state changes from a web page', () => {
  it('refuses the lab route GET /apiv1/remove/:h/:t from an <img> or link on another site, and leaves the stem', async () => {
    expectRefused(await request(t.rest.app).get(`/apiv1/remove/${hash}/vocals`).set(IMG));
    expectRefused(await request(t.rest.app).get(`/apiv1/remove/${hash}/vocals`).set(SIBLING));
    expectRefused(await request(t.rest.app).get(`/apiv1/remove/${hash}/vocals`).set(EVIL));
    expect((await request(t.rest.app).head(`/apiv1/remove/${hash}/vocals`).set(IMG)).status).toBe(403); // Express runs the GET handler for HEAD
    expect(await stemStored('vocals')).toBe(true);
  });

  it('refuses a form or multipart POST of a job from another site and queues nothing', async () => {
    const other = Buffer.from(await synthesizeMp3({ seconds: 1, seed: 8182 }));
    expectRefused(await request(t.rest.app).post('/apiv1/separate').set(EVIL).attach('file', other, 'x.mp3'));
    expectRefused(await request(t.rest.app).post('/apiv1/separate').set(EVIL).type('form').send({ mp3: other.toString('base64') }));
    expectRefused(await request(t.rest.app).post('/apiv1/separate').set(EVIL).set('Content-Type', 'text/plain').send(JSON.stringify({ mp3: other.toString('base64') })));
    expect(await t.rest.deps.queue.getJob(songhash(other))).toBeNull();
  });

  it('refuses DELETE of a song and of a stem from a page without the header', async () => {
    expectRefused(await request(t.rest.app).delete(`/apiv1/jobs/${hash}`).set(EVIL));
    expectRefused(await request(t.rest.app).delete(`/apiv1/track/${hash}/bass.mp3`).set(SIBLING));
    expectRefused(await request(t.rest.app).delete(`/apiv1/remove/${hash}/bass`).set(EVIL));
    expect(await stemStored('bass')).toBe(true);
    expect((await t.rest.deps.queue.getJob(hash))?.state).toBe('done');
  });

  it('lets our page through: it sends X-Requested-With on its upload and its deletes', async () => {
    const other = Buffer.from(await synthesizeMp3({ seconds: 1, seed: 8183 }));
    const up = await request(t.rest.app).post('/apiv1/separate').set(PAGE).attach('file', other, 'song.mp3');
    expect(up.status, up.text).toBe(200);
    expect(up.body.result).toBe('enqueued');
    const del = await request(t.rest.app).delete(`/apiv1/jobs/${songhash(other)}`).set(PAGE);
    expect(del.status, del.text).toBe(200);
  });

  it('accepts a JSON body from a page (a cross-site JSON POST needs a preflight this API never grants)', async () => {
    const other = Buffer.from(await synthesizeMp3({ seconds: 1, seed: 8184 }));
    const res = await request(t.rest.app).post('/apiv1/separate').set(EVIL).send({ mp3: other.toString('base64') });
    expect(res.status, res.text).toBe(200);
    expect((await request(t.rest.app).delete(`/apiv1/jobs/${songhash(other)}`).set({ ...EVIL, 'X-Requested-With': 'XMLHttpRequest' })).status).toBe(200);
  });

  it('keeps reads open to pages (status, stems) and leaves the lab clients untouched', async () => {
    expect((await request(t.rest.app).get(`/apiv1/jobs/${hash}`).set(EVIL)).status).toBe(200);
    expect((await request(t.rest.app).get(`/apiv1/track/${hash}/drums.mp3`).set(IMG)).status).toBe(200);
    expect((await request(t.rest.app).get('/apiv1/queue').set(IMG)).status).toBe(200);
    // the lab's Python client: no Origin, no Sec-Fetch-*; a typed URL is Sec-Fetch-Site: none
    const typed = await request(t.rest.app).get(`/apiv1/remove/${hash}/drums`).set('Sec-Fetch-Site', 'none');
    expect(typed.status, typed.text).toBe(200);
    const lab = await request(t.rest.app).get(`/apiv1/remove/${hash}/other`);
    expect(lab.status, lab.text).toBe(200);
    expect(lab.body).toMatchObject({ removed: true, reason: 'Track removed' });
    expect(await stemStored('other')).toBe(false);
    const labSubmit = await request(t.rest.app).post('/apiv1/separate').set('Content-Type', 'application/json').send(JSON.stringify({ mp3: clip.toString('base64') }));
    expect(labSubmit.status, labSubmit.text).toBe(200);
  });
});
