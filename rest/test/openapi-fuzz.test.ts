import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import fc from 'fast-check';
import { songhash } from '@msaas/common';
import type { RestService } from '../src/bootstrap.ts';
import { synthesizeMp3 } from '../../worker/fixtures/synth.ts';
import { storeSeparated } from '../../common/test/test-worker.ts';
import { DocumentChecker, fromSupertest } from '../../test/helpers/openapi.ts';
import { restUnderTest, type RestUnderTest } from './helpers/rest-under-test.ts';

/**
 * What an OpenAPI testing tool (schemathesis and the like) does to the API from outside, in-process:
 * for every documented operation, requests built from the document — path parameters that match
 * their schema (a separated song's hash among them) or not, documented query parameters with valid
 * and arbitrary values, an undocumented one now and then — and every answer must be a status the
 * document lists for the operation, of a documented type, its JSON body matching the schema; never
 * a 5xx for any of these inputs.
 */
let under: RestUnderTest;
let rest: RestService;
let checker: DocumentChecker;
let hash: string;

beforeAll(async () => {
  under = await restUnderTest('openapi-fuzz', { RATE_LIMIT_PER_MIN: '1000000', SUBMIT_RATE_LIMIT_PER_MIN: '1000000' });
  rest = under.rest;
  checker = new DocumentChecker((await request(rest.app).get('/openapi.json')).body as Record<string, unknown>);
  const mp3 = Buffer.from(await synthesizeMp3({ seconds: 1, seed: 61 }));
  hash = songhash(mp3);
  await storeSeparated(rest.deps, hash, mp3);
});

afterAll(async () => {
  await under?.close();
});

type Json = Record<string, unknown>;
interface Param {
  name: string;
  in: string;
  schema: Json;
}

/** A value for a parameter: one its schema describes (enum, the known hash, digits) or an arbitrary string. */
function valueOf(p: Param): fc.Arbitrary<string> {
  const s = p.schema;
  const valid: fc.Arbitrary<string>[] = [];
  if (Array.isArray(s.enum)) valid.push(fc.constantFrom(...(s.enum as string[])));
  if (p.name === 'songhash') valid.push(fc.constant(hash), fc.stringMatching(/^[0-9a-f]{56}$/));
  if (p.name === 'track' || p.name === 'file') valid.push(fc.constantFrom('vocals', 'bass.mp3', 'base', 'drums.flac', 'instrumental.wav', 'vocals.mp3', 'guitar.mp3'));
  if (p.name === 'seq') valid.push(fc.integer({ min: 0, max: 99999 }).map(String));
  if (typeof s.pattern === 'string' && s.pattern.includes('\\d')) valid.push(fc.oneof(fc.integer({ min: 0, max: 200 }).map(String), fc.double({ min: 0, max: 3, noNaN: true }).map((n) => n.toFixed(2))));
  if (p.name === 'format') valid.push(fc.constantFrom('mp3', 'mp3-320', 'wav', 'flac', 'ogg'));
  const arbitrary = fc.oneof(fc.string({ maxLength: 30 }), fc.string({ unit: 'binary', maxLength: 12 }), fc.constantFrom('', '-1', '1e9', 'NaN', '%', '..', '%2e%2e', 'null'));
  return valid.length ? fc.oneof({ weight: 3, arbitrary: fc.oneof(...valid) }, { weight: 1, arbitrary }) : arbitrary;
}

const operations = (): { path: string; method: string; op: Json }[] => {
  const doc = checker.doc;
  return Object.entries(doc.paths as Record<string, Record<string, Json>>).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ path, method, op })));
};

describe('the API under document-driven requests', () => {
  it('answers every generated request with a documented status and shape, never a 5xx', async () => {
    let sent = 0;
    for (const { path, method, op } of operations()) {
      if (method === 'post' || path === '/apiv1/jobs/{songhash}/events' || path === '/metrics') continue; // bodies: below; the stream of a known song stays open; metrics: text
      const params = ((op.parameters as Param[] | undefined) ?? []).filter((p) => p.in !== 'header');
      const pathParams = params.filter((p) => p.in === 'path');
      const queryParams = params.filter((p) => p.in === 'query');
      const arb = fc.record({
        // A path parameter is never empty (the path would be another route's, or none).
        path: fc.tuple(...pathParams.map((p) => valueOf(p).filter((v) => v.length > 0))),
        query: fc.tuple(...queryParams.map((p) => fc.option(valueOf(p), { nil: undefined }))),
        extra: fc.option(fc.constantFrom('drum', 'limt', 'verbose', 'x'), { nil: undefined, freq: 6 }),
      });
      await fc.assert(
        fc.asyncProperty(arb, async ({ path: values, query, extra }) => {
          let url = path;
          pathParams.forEach((p, i) => (url = url.replace(`{${p.name}}`, encodeURIComponent(values[i]!))));
          const q = new URLSearchParams();
          queryParams.forEach((p, i) => query[i] !== undefined && q.append(p.name, query[i]!));
          if (extra) q.append(extra, '1');
          const full = q.size ? `${url}?${q}` : url;
          const res = await (request(rest.app) as unknown as Record<string, (u: string) => request.Test>)[method]!(full).buffer(true).parse((r, cb) => {
            const chunks: Buffer[] = [];
            r.on('data', (c: Buffer) => chunks.push(c));
            r.on('end', () => {
              const text = Buffer.concat(chunks).toString('utf8');
              let body: unknown = text;
              if (/json/.test(String(r.headers['content-type']))) body = JSON.parse(text);
              cb(null, body);
            });
          });
          sent++;
          expect(res.status, `${method.toUpperCase()} ${full}: ${JSON.stringify(res.body)?.slice(0, 200)}`).toBeLessThan(500);
          checker.check(method.toUpperCase(), full, fromSupertest(res));
        }),
        { numRuns: method === 'delete' ? 15 : 25, seed: 24 },
      );
    }
    expect(sent).toBeGreaterThan(300);
  }, 180_000);

  it('answers generated submit bodies (JSON members of every type, odd multipart fields) as documented, never a 5xx', async () => {
    const member = fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 2 }));
    const body = fc.dictionary(fc.constantFrom('mp3', 'upload', 'url', 'callback', 'model', 'format', 'stems', 'calback', 'file'), member, { maxKeys: 4 });
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        const res = await request(rest.app).post('/apiv1/separate').send(b);
        expect(res.status, `POST ${JSON.stringify(b)}: ${JSON.stringify(res.body)}`).toBeLessThan(500);
        checker.check('POST', '/apiv1/separate', fromSupertest(res));
      }),
      { numRuns: 250, seed: 25 },
    );
    const upload = await request(rest.app).post('/apiv1/uploads').send({ filename: 'x.mp3' });
    checker.check('POST', '/apiv1/uploads', fromSupertest(upload));
    for (const b of [{ name: 1 }, [1], 'text', { filename: 5 }]) {
      const res = await request(rest.app).post('/apiv1/uploads').send(b as object);
      checker.check('POST', '/apiv1/uploads', fromSupertest(res));
    }
  }, 120_000);
});
