import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import { Validator } from '@seriousme/openapi-schema-validator';
import fc from 'fast-check';
import type { z } from 'zod';
import { API_ERRORS, ERROR_CODES, LibraryQuerySchema, MixQuerySchema, SeparateJsonSchema, ZipQuerySchema, modelTerms, songhash, type ErrorCode } from '@msaas/common';
import { parseGains } from '../src/routes/mix.ts';
import { libraryQuery } from '../src/routes/library.ts';
import type { RestService } from '../src/bootstrap.ts';
import { ROUTES, errorsOf } from '../src/api-routes.ts';
import { synthesizeMp3 } from '../../worker/fixtures/synth.ts';
import { storeSeparated } from '../../common/test/test-worker.ts';
import { DocumentChecker, fromSupertest } from '../../test/helpers/openapi.ts';
import { restUnderTest, type RestUnderTest } from './helpers/rest-under-test.ts';

let under: RestUnderTest;
let rest: RestService;
let doc: Record<string, unknown>;
let checker: DocumentChecker;

beforeAll(async () => {
  under = await restUnderTest('openapi', { RATE_LIMIT_PER_MIN: '100000', SUBMIT_RATE_LIMIT_PER_MIN: '100000' });
  rest = under.rest;
  doc = (await request(rest.app).get('/openapi.json')).body as Record<string, unknown>;
  checker = new DocumentChecker(doc);
});

afterAll(async () => {
  await under?.close();
});

interface Layer {
  route?: { path: string | string[]; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
}

/** Every `METHOD path` the Express app routes (routers mounted at the root, recursively). */
function mountedRoutes(stack: Layer[]): string[] {
  const out: string[] = [];
  for (const layer of stack) {
    if (layer.route) {
      for (const path of [layer.route.path].flat()) for (const m of Object.keys(layer.route.methods)) if (m !== '_all') out.push(`${m.toUpperCase()} ${path}`);
    } else if (layer.handle?.stack) out.push(...mountedRoutes(layer.handle.stack));
  }
  return out;
}

describe('the API document (GET /openapi.json)', () => {
  it('is valid OpenAPI 3.1 by an independent validator (@seriousme/openapi-schema-validator)', async () => {
    expect(doc.openapi).toBe('3.1.0');
    const result = await new Validator().validate(doc as Parameters<Validator["validate"]>[0]);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('documents every route the Express app serves, and no route it does not serve', () => {
    const mounted = new Set(mountedRoutes((rest.app as unknown as { router: { stack: Layer[] } }).router.stack));
    const documented = new Set(ROUTES.filter((r) => !r.middleware).map((r) => `${r.method.toUpperCase()} ${r.path}`));
    const undocumented = [...mounted].filter((r) => !documented.has(r));
    const unserved = [...documented].filter((r) => !mounted.has(r));
    expect(undocumented, 'routes missing from rest/src/api-routes.ts').toEqual([]);
    expect(unserved, 'routes in rest/src/api-routes.ts the app does not mount').toEqual([]);
    expect(mounted.size).toBeGreaterThan(15);
    const paths = doc.paths as Record<string, Record<string, unknown>>;
    for (const r of ROUTES) expect(paths[r.path.replace(/:(\w+)/g, '{$1}')]?.[r.method], `${r.method} ${r.path}`).toBeDefined();
  });

  it('lists every code of the error table with its statuses, and each code under some route', () => {
    const table = doc['x-error-codes'] as Record<string, { status: number[]; meaning: string }>;
    expect(Object.keys(table).sort()).toEqual([...ERROR_CODES].sort());
    for (const code of ERROR_CODES) expect(table[code]!.status[0]).toBe(API_ERRORS[code].status);
    const used = new Set<ErrorCode>(ROUTES.flatMap(errorsOf));
    // `internal` is a fault, never documented as an answer; `not_found` for an unknown path has no route.
    expect(ERROR_CODES.filter((c) => !used.has(c) && c !== 'internal')).toEqual([]);
  });

  it('describes the event stream as text/event-stream and the live stream as chunked audio/mpeg', () => {
    const paths = doc.paths as Record<string, Record<string, { responses: Record<string, { content?: Record<string, unknown> }>; description?: string }>>;
    expect(Object.keys(paths['/apiv1/jobs/{songhash}/events']!.get!.responses['200']!.content!)).toEqual(['text/event-stream']);
    const live = paths['/apiv1/jobs/{songhash}/live/{file}']!.get!;
    expect(Object.keys(live.responses['200']!.content!)).toEqual(['audio/mpeg']);
    expect(live.description).toMatch(/chunked/);
  });

  it('names the bundled weights for an unset MODEL_PATH and the image\'s copy, and the operator\'s terms for other weights', () => {
    expect(modelTerms(undefined)).toMatchObject({ file: 'htdemucs.onnx', bundled: true });
    expect(modelTerms('/models/htdemucs.onnx')).toMatchObject({ file: 'htdemucs.onnx', bundled: true, terms: expect.stringMatching(/personal and research use only/) });
    expect(modelTerms('/srv/weights/licensed-demucs.onnx')).toMatchObject({ file: 'licensed-demucs.onnx', bundled: false, terms: expect.stringMatching(/operator/) });
  });

  it('says which model weights run and their terms, as /apiv1/info does', async () => {
    const info = await request(rest.app).get('/apiv1/info');
    checker.check('GET', '/apiv1/info', fromSupertest(info));
    expect(info.body.weights).toMatchObject({ file: 'htdemucs.onnx', bundled: true, terms: expect.stringMatching(/personal and research use only/) });
    const schema = ((doc.components as Record<string, Record<string, { properties: Record<string, unknown> }>>).schemas.InfoResponse)!;
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(['weights', 'stems', 'inputFormats', 'outputFormats']));
  });
});

describe('the reference page (GET /docs)', () => {
  it('renders every route and the error table from the document, with no script and nothing from another origin', async () => {
    const res = await request(rest.app).get('/docs');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/html/);
    expect(res.headers['content-security-policy']).toMatch(/default-src 'self'/);
    for (const r of ROUTES) expect(res.text).toContain(r.path.replace(/:(\w+)/g, '{$1}'));
    for (const code of ERROR_CODES) expect(res.text).toContain(`id="error-${code}"`);
    expect(res.text).not.toMatch(/<script/i);
    expect(res.text).not.toMatch(/(src|href)="(https?:)?\/\//i);
    expect((await request(rest.app).get('/')).text).toContain('href="/docs"');
    const css = await request(rest.app).get('/docs.css');
    expect(css.status).toBe(200);
    expect(css.headers['content-type']).toMatch(/text\/css/);
  });
});

describe('query schemas and handlers agree', () => {
  it('a mix gain and a library limit/cursor are valid by the document exactly when the route takes them', () => {
    const samples = fc.oneof(
      fc.string({ maxLength: 6 }),
      fc.stringMatching(/^[0-9.]{0,6}$/),
      fc.constantFrom('', '.', '0', '2', '2.0', '2.01', '1.', '.5', '00.5', '10', '1e0', '100', '101', '0100', '0000', '05'),
    );
    fc.assert(
      fc.property(samples, (s) => {
        const byGain = (MixQuerySchema.shape as Record<string, z.ZodType>).vocals!.safeParse(s).success;
        const gainTaken = (() => { try { parseGains({ vocals: s }); return true; } catch { return false; } })();
        expect(byGain, `gain ${JSON.stringify(s)}`).toBe(gainTaken);
        for (const key of ['limit', 'cursor'] as const) {
          const bySchema = LibraryQuerySchema.shape[key].safeParse(s).success;
          const taken = (() => { try { libraryQuery({ [key]: s }); return true; } catch { return false; } })();
          expect(bySchema, `${key} ${JSON.stringify(s)}`).toBe(taken);
        }
      }),
      { numRuns: 3000, seed: 7 },
    );
  });
});

describe('submit fields: the document and the route agree', () => {
  it('a JSON submit is taken exactly when its callback, model, format and stems are valid by the SeparateJson schema', async () => {
    const mp3 = Buffer.from(await synthesizeMp3({ seconds: 1, seed: 45 })).toString('base64');
    const field = {
      callback: fc.constantFrom(undefined, null, '', { url: 'https://example.com/cb' }, { url: 'HTTP://EXAMPLE.COM:8080/x?y=1', data: { a: [1] } }, { url: 'http://localhost:5000' },
        { url: 'ftp://example.com/' }, { url: 'not a url' }, { url: 'https://user:pw@example.com/' }, { url: 'https://' }, { data: 1 }, 'https://example.com/'),
      model: fc.constantFrom(undefined, null, '', 'htdemucs', 'HTDEMUCS', 'spleeter', 3),
      format: fc.constantFrom(undefined, null, '', 'mp3', 'mp3-320', 'wav', 'flac', 'ogg', 'MP3', 1),
      stems: fc.constantFrom(undefined, null, '', 'vocals', 'vocals, instrumental', ' drums ,bass ', 'guitar', 'vocals,', ',', '   ', [], ['vocals'], ['vocals', 'guitar'], [3], 'drums,'.repeat(21) + 'bass'),
    };
    await fc.assert(
      fc.asyncProperty(fc.record(field, { requiredKeys: [] }), async (opts) => {
        const body = { mp3, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) };
        const valid = SeparateJsonSchema.safeParse(body).success;
        const res = await request(rest.app).post('/apiv1/separate').send(body);
        checker.check('POST', '/apiv1/separate', fromSupertest(res));
        expect(res.status === 200, `${JSON.stringify(opts)} → ${res.status} ${JSON.stringify(res.body).slice(0, 200)} (valid by the document: ${valid})`).toBe(valid);
      }),
      { numRuns: 120, seed: 11 },
    );
  }, 120_000);
});

describe('strict parameters', () => {
  it('answers 400 unknown_field for mix?drum=0, naming the typo and the known parameters', async () => {
    const res = await request(rest.app).get(`/apiv1/jobs/${'a'.repeat(56)}/mix?drum=0`);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('unknown_field');
    expect(res.body.detail).toMatch(/`drum`/);
    expect(res.body.detail).toMatch(/it takes drums, bass, other, vocals(, instrumental)?, format$/);
    checker.check('GET', `/apiv1/jobs/${'a'.repeat(56)}/mix`, fromSupertest(res));
  });

  it('refuses unknown query parameters on routes that take none, and misspelt library ones', async () => {
    const q = await request(rest.app).get('/apiv1/queue?verbose=1');
    expect(q.status).toBe(400);
    expect(q.body).toMatchObject({ error: 'unknown_field', detail: expect.stringMatching(/`verbose`.*takes none/) });
    const lib = await request(rest.app).get('/apiv1/jobs?limt=5');
    expect(lib.body).toMatchObject({ error: 'unknown_field', detail: expect.stringMatching(/`limt`.*limit, cursor/) });
  });

  it('keeps every parameter a client of the API uses today (mix gains and format, zip format, library limit and cursor)', async () => {
    const mp3 = Buffer.from(await synthesizeMp3({ seconds: 1, seed: 41 }));
    const h = songhash(mp3);
    await storeSeparated(rest.deps, h, mp3);
    const mix = await request(rest.app).get(`/apiv1/jobs/${h}/mix?drums=0&bass=1&other=0.5&vocals=2&format=wav`);
    expect(mix.status).toBe(200);
    expect((await request(rest.app).get(`/apiv1/jobs/${h}/zip?format=mp3`)).status).toBe(200);
    expect((await request(rest.app).get('/apiv1/jobs?limit=5&cursor=99999999999')).status).toBe(200);
    // a format is taken exactly when the document's enum has it
    for (const format of ['', 'mp3', 'mp3-320', 'wav', 'flac', 'ogg', 'MP3', 'mp3 ']) {
      const documented = MixQuerySchema.shape.format.safeParse(format).success;
      expect(ZipQuerySchema.shape.format.safeParse(format).success).toBe(documented);
      const mixHead = await request(rest.app).head(`/apiv1/jobs/${h}/mix?format=${encodeURIComponent(format)}`);
      expect(mixHead.status === 200, `mix format ${JSON.stringify(format)}: ${mixHead.status}`).toBe(documented);
      const zip = await request(rest.app).get(`/apiv1/jobs/${h}/zip?format=${encodeURIComponent(format)}`);
      expect(zip.status === 400, `zip format ${JSON.stringify(format)}: ${zip.status}`).toBe(!documented);
    }
  });

  it('keeps the lab\'s requests unchanged: JSON {mp3, callback} and GET /apiv1/queue with the body null', async () => {
    const mp3 = Buffer.from(await synthesizeMp3({ seconds: 1, seed: 42 }));
    const sub = await request(rest.app)
      .post('/apiv1/separate')
      .set('Content-type', 'application/json')
      .send(JSON.stringify({ mp3: mp3.toString('base64'), callback: { url: 'http://localhost:5000', data: { mp3: 'x.mp3', data: 'to be returned' } } }));
    expect(sub.status).toBe(200);
    checker.check('POST', '/apiv1/separate', fromSupertest(sub));
    const q = await request(rest.app).get('/apiv1/queue').set('Content-type', 'application/json').send('null');
    expect(q.status).toBe(200);
    checker.check('GET', '/apiv1/queue', fromSupertest(q));
  });

  it('answers 400 unknown_field for a misspelt submit field, JSON or multipart, naming the fields it takes', async () => {
    const mp3 = Buffer.from(await synthesizeMp3({ seconds: 1, seed: 44 }));
    const json = await request(rest.app).post('/apiv1/separate').send({ mp3: mp3.toString('base64'), calback: { url: 'https://example.com/' } });
    expect(json.status).toBe(400);
    expect(json.body).toMatchObject({ error: 'unknown_field', detail: expect.stringMatching(/`calback`.*it takes mp3, callback, model, format, stems, upload, url$/) });
    checker.check('POST', '/apiv1/separate', fromSupertest(json));
    const form = await request(rest.app).post('/apiv1/separate').attach('file', mp3, 'song.mp3').field('fromat', 'flac');
    expect(form.status).toBe(400);
    expect(form.body).toMatchObject({ error: 'unknown_field', detail: expect.stringMatching(/`fromat`.*callback, model, format, stems/) });
  });

  it('names the field "file" when a multipart upload puts its audio in another field', async () => {
    const mp3 = Buffer.from(await synthesizeMp3({ seconds: 1, seed: 43 }));
    const res = await request(rest.app).post('/apiv1/separate').attach('audio', mp3, 'song.mp3');
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('bad_multipart');
    expect(res.body.detail).toMatch(/"audio".*"file"/);
    checker.check('POST', '/apiv1/separate', fromSupertest(res));
  });
});
