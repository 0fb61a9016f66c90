/**
 * Hostile-input fuzzing of every rest endpoint over real sockets, against the real app wired to real
 * Redis and a real S3-compatible server. Seeded: FUZZ_SEED reproduces a run, FUZZ_RUNS scales it.
 *
 * Scope: everything Express answers must be a 2xx/3xx where the input is valid, else a 4xx JSON
 * `{error, detail}`; never a 5xx, never a stack trace. Requests so malformed that Node's HTTP parser
 * rejects them before Express sees them (bad request line, NUL or bare control characters in the
 * target, conflicting Content-Length/Transfer-Encoding, oversized header block, unknown Expect)
 * get Node's own bodiless 4xx (400/431/417) and the connection is closed; those are checked for
 * being 4xx and for leaving the process healthy, not for a JSON body.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { pino } from 'pino';
import { TRACKS, songhash } from '@msaas/common';
import { buildRest, type RestService } from '../src/bootstrap.ts';
import { createHttpServer } from '../src/httpServer.ts';
import { synthesizeMp3 } from '../../worker/src/synth.ts';
import { deletePrefix, startTestStore, testConfig, uniquePrefix, type TestStore } from '../../test/helpers/env.ts';
import { buildRequest, rawRequest, type RawOutcome } from './helpers/rawHttp.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20261123);
const RUNS = Number(process.env.FUZZ_RUNS ?? 160); // batches
const BATCH = 8; // requests in flight at once
const MAX_MB = 1;
const MARK = 'fuzzmark'; // in every hostile file name: any file carrying it outside the buckets is an escape
const REPO = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));

let store: TestStore;
let rest: RestService;
let server: Server;
let port: number;
let prefix: string;
let privateTmp: string;
const savedTmpdir = process.env.TMPDIR;
const errorLogs: string[] = [];
const processErrors: string[] = [];
const onProcessError = (err: unknown): void => void processErrors.push(String((err as Error)?.stack ?? err));

let pool: Buffer[] = [];
let doneClip: Buffer;
let doneHash: string;
let repoBefore: Set<string>;
let gzipBomb: Buffer;
let hugeB64: string;
let overB64: string;

// ---------- file-tree snapshots ----------
function walk(root: string, skip: (rel: string) => boolean = () => false): string[] {
  const out: string[] = [];
  const visit = (dir: string): void => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const abs = path.join(dir, e.name);
      const rel = path.relative(root, abs);
      if (skip(rel)) continue;
      out.push(rel);
      if (e.isDirectory()) visit(abs);
    }
  };
  visit(root);
  return out;
}
const repoSkip = (rel: string): boolean => /(^|\/)(node_modules|\.git)$/.test(rel);

// ---------- request model ----------
interface Spec {
  cat: string;
  label: string;
  bytes: Buffer;
  /** Node's HTTP parser (not Express) may answer: a bodiless 4xx is fine. */
  mayHitParser?: boolean;
  /** The server may close without a response (an oversized body cut mid-upload). */
  mayClose?: boolean;
  /** Hashes this request may delete (for the "accepted songs are enqueued" check). */
  deletes?: string;
}

const spec = (cat: string, method: string, target: string, headers: [string, string][] = [], body?: Buffer, flags: Partial<Spec> = {}): Spec => ({
  cat,
  label: `${method} ${target.slice(0, 120)}${target.length > 120 ? `…(${target.length})` : ''} ${JSON.stringify(headers).slice(0, 160)} body=${body?.length ?? 0}B`,
  bytes: buildRequest(method, target, headers, body),
  ...flags,
});

// ---------- generators ----------
const hex56 = fc.stringMatching(/^[0-9a-f]{56}$/);
const safeEncode = (s: string): string => {
  try {
    return encodeURIComponent(s);
  } catch {
    return 'x';
  }
};

/** A `:songhash` segment, percent-encoded so the request line stays valid. */
const hashSeg = (): fc.Arbitrary<{ seg: string; hash: string | null }> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constant(null).map(() => ({ seg: doneHash, hash: doneHash })) },
    { weight: 2, arbitrary: fc.nat(7).map((i) => ({ seg: songhash(pool[i % pool.length]!), hash: songhash(pool[i % pool.length]!) })) },
    { weight: 3, arbitrary: hex56.map((h) => ({ seg: h, hash: h })) },
    { weight: 1, arbitrary: hex56.map((h) => ({ seg: h.toUpperCase(), hash: null })) },
    { weight: 1, arbitrary: fc.constantFrom(55, 57, 0, 1, 112).chain((n) => fc.stringMatching(new RegExp(`^[0-9a-f]{${n}}$`))).map((s) => ({ seg: s || '%20', hash: null })) },
    {
      weight: 3,
      arbitrary: fc
        .constantFrom(
          '..', '..%2F..%2F..%2Fetc%2Fpasswd', '%2e%2e%2f%2e%2e%2f', '....%2F%2F', '..%5C..%5Cwindows', '%252e%252e%252f', 'queue%2F..%2F..',
          '%00', `${'a'.repeat(56)}%00`, '%zz', '%', '%E0%A4%A', '%FF%FE', '%C0%AE%C0%AE%2F', `${MARK}%2F..%2F..%2F${MARK}`, '%0d%0aSet-Cookie:x=1',
          '%F0%9F%98%80'.repeat(14), 'null', 'undefined', '__proto__', 'constructor', '*', '-1', '1e309', '%2A',
        )
        .map((seg) => ({ seg, hash: null })),
    },
    { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 80 }).map((s) => ({ seg: safeEncode(s) || 'x', hash: null })) },
    { weight: 1, arbitrary: fc.integer({ min: 200, max: 6000 }).map((n) => ({ seg: 'a'.repeat(n), hash: null })) },
  );

const trackSeg = (): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...TRACKS, ...TRACKS.map((t) => `${t}.mp3`), 'base.mp3', 'base') },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        'BASS', 'bass.MP3', 'bass.mp3.mp3', 'guitar', 'vocals%00.mp3', '..%2F..%2Fqueue', `..%2F..%2F${MARK}.mp3`, '%2e%2e', 'bass%2F..%2F..',
        '%zz', '.mp3', 'mp3', '', '%20bass', 'bass%0a', '__proto__', 'toString', 'hasOwnProperty',
      ),
    },
    { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }).map(safeEncode) },
    { weight: 1, arbitrary: fc.integer({ min: 100, max: 3000 }).map((n) => 'v'.repeat(n)) },
  ).map((s) => s || 'x');

/** MP3-ish bytes: valid clips, truncated and corrupted ones, and things that are not MP3 at all. */
const mp3Bytes = (): fc.Arbitrary<Buffer> =>
  fc.oneof(
    { weight: 2, arbitrary: fc.nat(pool.length - 1).map((i) => pool[i]!) },
    { weight: 3, arbitrary: fc.tuple(fc.nat(pool.length - 1), fc.double({ min: 0, max: 1, noNaN: true })).map(([i, f]) => pool[i]!.subarray(0, Math.floor(pool[i]!.length * f))) },
    {
      weight: 3,
      arbitrary: fc.tuple(fc.nat(pool.length - 1), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 64 })).map(([i, flips]) => {
        const b = Buffer.from(pool[i]!);
        for (const [at, v] of flips) b[at % b.length] = v;
        return b;
      }),
    },
    {
      weight: 1,
      arbitrary: fc.tuple(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.nat(pool.length - 1), fc.integer({ min: 0, max: 400 })).map(([size, i, cut]) =>
        // an ID3v2 tag with an arbitrary (often absurd) size in front of a real clip's tail
        Buffer.concat([Buffer.from([0x49, 0x44, 0x33, 4, 0, 0x10, ...size]), pool[i]!.subarray(cut)]),
      ),
    },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((r) => Buffer.concat([pool[0]!.subarray(0, 4), Buffer.from(r)])) },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 4096 }).map((u) => Buffer.from(u)) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        Buffer.alloc(0),
        Buffer.from('not audio at all'),
        Buffer.alloc(3000, 0xff),
        Buffer.from('RIFF\x24\x00\x00\x00WAVEfmt ', 'latin1'),
        Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'),
        Buffer.from('PK\x03\x04', 'latin1'),
        Buffer.from('\x7fELF\x02\x01\x01', 'latin1'),
        Buffer.from('ID3'),
        Buffer.from([0xff, 0xfb, 0x90, 0x64]),
      ),
    },
  );

const hookUrl = (): fc.Arbitrary<unknown> =>
  fc.oneof(
    fc.constantFrom(
      'http://localhost:5000', 'http://127.0.0.1:9/', 'http://10.0.0.1/x', 'http://172.16.3.4/', 'http://192.168.1.1/', 'http://169.254.169.254/latest/meta-data/',
      'http://[::1]:80/', 'http://[fc00::1]/', 'http://[::ffff:127.0.0.1]/', 'http://0.0.0.0/', 'http://2130706433/', 'http://0x7f.1/', 'http://internal.example/',
      'http://metadata.example/', 'http://nxdomain.example/', 'https://hooks.example.com/done', 'http://user:pw@hooks.example.com/', 'ftp://hooks.example.com/',
      'file:///etc/passwd', 'javascript:alert(1)', 'gopher://127.0.0.1:6379/_FLUSHALL', 'data:text/plain,hi', '//hooks.example.com', 'http://', '', ' ',
      `http://${'a'.repeat(3000)}.example/`, 'http://hooks.example.com/%00%0d%0a',
    ),
    fc.webUrl(),
    fc.string({ maxLength: 60 }),
    fc.jsonValue({ maxDepth: 1 }),
  );

const callbackValue = (): fc.Arbitrary<unknown> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.record({ url: hookUrl(), data: fc.jsonValue({ maxDepth: 3 }) }, { requiredKeys: ['url'] }) },
    { weight: 1, arbitrary: fc.constantFrom(null, '', 'nope', 42, [], {}, { data: {} }, { url: null }) },
    { weight: 1, arbitrary: fc.integer({ min: 2000, max: 20_000 }).map((d) => ({ url: 'https://hooks.example.com/deep', data: { nested: `@@DEEP${d}@@` } })) },
    { weight: 1, arbitrary: fc.integer({ min: 70, max: 400 }).map((kb) => ({ url: 'https://hooks.example.com/big', data: 'd'.repeat(kb * 1024) })) },
  );

const mp3Field = (): fc.Arbitrary<unknown> =>
  fc.oneof(
    { weight: 6, arbitrary: mp3Bytes().map((b) => b.toString('base64')) },
    { weight: 1, arbitrary: mp3Bytes().map((b) => `data:audio/mpeg;base64,${b.toString('base64')}`) },
    { weight: 1, arbitrary: mp3Bytes().map((b) => b.toString('base64').replace(/.{76}/g, '$&\r\n')) },
    { weight: 1, arbitrary: mp3Bytes().map((b) => b.toString('base64url')) },
    { weight: 2, arbitrary: fc.string({ maxLength: 200 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 100 }) },
    { weight: 1, arbitrary: fc.constantFrom('', '====', 'A', 'AAAAA', '!!!!', '\u0000', 'QUJD\nRA==', 'SUQz', '//uQZAAAAAAAAAAAAAAAAAAAAAAA') },
    { weight: 1, arbitrary: fc.constantFrom('huge', 'over', 'bigtext').map((k) => (k === 'huge' ? hugeB64 : k === 'over' ? overB64 : 'x'.repeat(400_000))) },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  );

/** Close to what a real client sends, so the later checks (callback policy, enqueue) are reached too. */
const plausibleJson = (): fc.Arbitrary<string> => {
  const plausible = fc
    .record({
      mp3: fc.oneof({ weight: 2, arbitrary: fc.nat(pool.length - 1).map((i) => pool[i]!) }, { weight: 3, arbitrary: mp3Bytes() }),
      callback: fc.option(callbackValue(), { nil: undefined }),
      model: fc.option(fc.constantFrom('htdemucs', 'htdemucs', 'htdemucs', 'HTDEMUCS', 'spleeter'), { nil: undefined }),
    })
    .map(({ mp3, callback, model }) =>
      JSON.stringify({ mp3: mp3.toString('base64'), callback, model }).replace(/"@@DEEP(\d+)@@"/, (_m, d: string) => `${'['.repeat(Number(d))}1${']'.repeat(Number(d))}`),
    );
  return plausible;
};

const jsonBody = (): fc.Arbitrary<string> => {
  const obj = fc
    .record(
      {
        mp3: mp3Field(),
        callback: callbackValue(),
        model: fc.oneof(fc.constant('htdemucs'), fc.string({ maxLength: 30 }), fc.constant('m'.repeat(5000)), fc.jsonValue({ maxDepth: 1 })),
        extra: fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
      },
      { requiredKeys: [] },
    )
    .map(({ extra, ...rest }) => {
      const text = JSON.stringify({ ...(extra ?? {}), ...rest });
      return text.replace(/"@@DEEP(\d+)@@"/, (_m, d: string) => `${'['.repeat(Number(d))}1${']'.repeat(Number(d))}`);
    });
  const plausible = plausibleJson();
  return fc.oneof(
    { weight: 8, arbitrary: plausible },
    { weight: 6, arbitrary: obj },
    { weight: 1, arbitrary: obj.chain((s) => fc.nat(s.length).map((n) => s.slice(0, n))) },
    { weight: 1, arbitrary: fc.string({ maxLength: 300 }) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        'null', 'true', '42', '"str"', '[]', '{}', '{"mp3": null}', '\uFEFF{"mp3":"AAAA"}', `{"__proto__": {"mp3": "${'A'.repeat(8)}"}}`,
        '{"constructor": {"prototype": {"polluted": 1}}}', '{"mp3": "a", "mp3": 5}', '{"mp3": "\\ud800"}', '{"mp3": "\\u0000"}', '{,}', '{"a":1}}', 'NaN', '1e99999',
      ),
    },
    { weight: 1, arbitrary: fc.integer({ min: 1000, max: 300_000 }).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`) },
    { weight: 1, arbitrary: fc.integer({ min: 100, max: 30_000 }).map((n) => JSON.stringify(Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i])))) },
  );
};

const jsonContentType = fc.oneof(
  { weight: 8, arbitrary: fc.constant('application/json') },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'application/json; charset=utf-8', 'application/json; charset=utf-16', 'application/json; charset=latin1', 'application/json; charset=koi8-r',
      'application/vnd.api+json', 'text/plain', 'text/json', 'application/x-www-form-urlencoded', 'application/octet-stream', 'audio/mpeg',
      'multipart/form-data', 'multipart/form-data; boundary=', 'multipart/form-data; boundary=zzz', 'application/json, text/plain', ';;;', 'a/b/c',
      'APPLICATION/JSON', '',
    ),
  },
);

const separateJson = (): fc.Arbitrary<Spec> =>
  fc.oneof(
    plausibleJson().map((text) => spec('separate-json', 'POST', '/apiv1/separate', [['Content-Type', 'application/json']], Buffer.from(text))),
    separateJsonHostile(),
  );

const separateJsonHostile = (): fc.Arbitrary<Spec> =>
  fc
    .record({ text: jsonBody(), ctype: jsonContentType, enc: fc.constantFrom('none', 'none', 'none', 'none', 'none', 'none', 'gzip', 'gzip-bogus', 'br-bogus', 'x-unknown', 'bomb') })
    .map(({ text, ctype, enc }) => {
      const headers: [string, string][] = ctype ? [['Content-Type', ctype]] : [];
      let body: Buffer = Buffer.from(text, 'utf8');
      if (enc === 'gzip') (body = gzipSync(body)), headers.push(['Content-Encoding', 'gzip']);
      else if (enc === 'gzip-bogus') headers.push(['Content-Encoding', 'gzip']);
      else if (enc === 'br-bogus') headers.push(['Content-Encoding', 'br']);
      else if (enc === 'x-unknown') headers.push(['Content-Encoding', 'x-unknown, compress']);
      else if (enc === 'bomb') (body = gzipBomb), headers.push(['Content-Encoding', 'gzip']);
      return spec('separate-json', 'POST', '/apiv1/separate', headers, body, { mayClose: body.length > 1_000_000 });
    });

interface Part {
  name: string;
  filename?: string;
  ctype?: string;
  content: Buffer;
}

const filename = fc.oneof(
  fc.constantFrom(
    'song.mp3', `../../${MARK}-escape.mp3`, `/tmp/${MARK}-abs.mp3`, `..\\..\\${MARK}-win.mp3`, `${MARK}\u0000.mp3`, `${MARK}%00.mp3`, '', '.', '..',
    `${MARK}\r\nX-Injected: 1`, '"quoted".mp3', 'ünïcödé 🎵.mp3', `${'n'.repeat(5000)}.mp3`,
  ),
  fc.string({ unit: 'grapheme', maxLength: 60 }).map((s) => `${MARK}-${s}`),
);

const part = (): fc.Arbitrary<Part> =>
  fc.oneof(
    {
      weight: 3,
      arbitrary: fc.record({
        name: fc.oneof(fc.constant('file'), fc.constant('file'), fc.constantFrom('File', 'mp3', 'upload', 'file[]', ''), fc.string({ maxLength: 12 })),
        filename,
        ctype: fc.constantFrom('audio/mpeg', 'application/octet-stream', 'text/plain', 'text/html', ''),
        content: mp3Bytes(),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        name: fc.oneof(fc.constantFrom('callback', 'model', 'mp3', 'x'), fc.string({ maxLength: 12 })),
        content: fc
          .oneof(
            callbackValue().map((v) => JSON.stringify(v) ?? ''),
            fc.string({ maxLength: 100 }),
            fc.constantFrom('htdemucs', 'spleeter', '{', 'null'),
            fc.constant('f'.repeat(70 * 1024)),
          )
          .map((s) => Buffer.from(s)),
      }),
    },
  );

function multipartBody(parts: Part[], boundary: string, eol: string, close: boolean): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    let head = `--${boundary}${eol}Content-Disposition: form-data; name="${p.name}"`;
    if (p.filename !== undefined) head += `; filename="${p.filename}"`;
    head += eol;
    if (p.ctype) head += `Content-Type: ${p.ctype}${eol}`;
    chunks.push(Buffer.from(`${head}${eol}`, 'utf8'), p.content, Buffer.from(eol));
  }
  if (close) chunks.push(Buffer.from(`--${boundary}--${eol}`));
  return Buffer.concat(chunks);
}

const plausibleParts = (): fc.Arbitrary<Part[]> =>
  fc
    .record({
      content: fc.oneof(fc.nat(pool.length - 1).map((i) => pool[i]!), mp3Bytes()),
      name: filename,
      callback: fc.option(callbackValue().map((v) => JSON.stringify(v) ?? ''), { nil: undefined }),
    })
    .map(({ content, name, callback }) => [
      { name: 'file', filename: name, ctype: 'audio/mpeg', content },
      ...(callback === undefined ? [] : [{ name: 'callback', content: Buffer.from(callback) }]),
    ]);

const separateMultipart = (): fc.Arbitrary<Spec> =>
  fc
    .record({
      parts: fc.oneof({ weight: 2, arbitrary: plausibleParts() }, { weight: 1, arbitrary: fc.array(part(), { minLength: 0, maxLength: 14 }) }),
      boundary: fc.oneof({ weight: 4, arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{1,70}$/) }, { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9'()+_,.:=?-]{1,70}$/) }),
      mangle: fc.constantFrom('none', 'none', 'none', 'none', 'none', 'none', 'none', 'none', 'truncate', 'noclose', 'lf', 'wrongBoundary', 'noBoundaryParam', 'quotedBoundary', 'oversize'),
      cut: fc.double({ min: 0, max: 1, noNaN: true }),
    })
    .map(({ parts, boundary, mangle, cut }) => {
      if (mangle === 'oversize') parts = [{ name: 'file', filename: 'big.mp3', ctype: 'audio/mpeg', content: Buffer.concat([pool[0]!, Buffer.alloc(MAX_MB * 2 ** 20 + 1000, 0x55)]) }];
      let body = multipartBody(parts, boundary, mangle === 'lf' ? '\n' : '\r\n', mangle !== 'noclose');
      if (mangle === 'truncate') body = body.subarray(0, Math.floor(body.length * cut));
      const ctype =
        mangle === 'wrongBoundary' ? `multipart/form-data; boundary=${boundary}x` : mangle === 'noBoundaryParam' ? 'multipart/form-data' : mangle === 'quotedBoundary' ? `multipart/form-data; boundary="${boundary}"` : `multipart/form-data; boundary=${boundary}`;
      return spec('separate-multipart', 'POST', '/apiv1/separate', [['Content-Type', ctype]], body, { mayClose: mangle === 'oversize' });
    });

const pathRoutes = (): fc.Arbitrary<Spec> =>
  fc
    .record({
      route: fc.constantFrom('track', 'remove', 'jobs', 'events', 'zip'),
      method: fc.constantFrom('GET', 'GET', 'GET', 'HEAD', 'DELETE', 'POST', 'PUT', 'PATCH', 'OPTIONS'),
      h: hashSeg(),
      t: trackSeg(),
      range: fc.option(
        fc.oneof(
          fc.constantFrom('bytes=0-10', 'bytes=-5', 'bytes=5-', 'bytes=100000000-', 'bytes=10-5', 'bytes=0-1,3-4', 'bytes=abc', 'items=0-1', 'bytes=', `bytes=${'0-1,'.repeat(1000)}0-1`, 'bytes=-0', 'bytes=0-0'),
          fc.string({ maxLength: 30 }).map((s) => s.replace(/[\r\n\0]/g, '')),
        ),
        { nil: undefined },
      ),
      query: fc.option(fc.string({ maxLength: 40 }).map(safeEncode), { nil: undefined }),
    })
    .map(({ route, method, h, t, range, query }) => {
      const destructive = method === 'DELETE' || route === 'remove';
      // The separated song keeps its stems so GET/Range/zip paths stay exercised; others may be removed.
      const seg = destructive && h.hash === doneHash ? '0'.repeat(56) : h.seg;
      const target =
        route === 'track' ? `/apiv1/track/${seg}/${t}` : route === 'remove' ? `/apiv1/remove/${seg}/${t}` : route === 'jobs' ? `/apiv1/jobs/${seg}` : `/apiv1/jobs/${seg}/${route}`;
      const headers: [string, string][] = range ? [['Range', range]] : [];
      return spec(`path-${route}`, method, `${target}${query ? `?${query}` : ''}`, headers, undefined, destructive && h.hash ? { deletes: h.hash } : {});
    });

const otherEndpoints = (): fc.Arbitrary<Spec> =>
  fc
    .record({
      target: fc.oneof(
        fc.constantFrom(
          '/apiv1/queue', '/apiv1/info', '/apiv1/cluster', '/', '/healthz', '/readyz', '/metrics', '/index.html', '/app.js', '/apiv1', '/apiv1/', '/apiv1/nope',
          '/apiv1/separate', '/%2e%2e/%2e%2e/etc/passwd', '/..%2F..%2Fetc%2Fpasswd', '/static/../../package.json', '/.env', '/.git/config', '/%zz',
          '/apiv1/queue/../info', '//apiv1//queue', '/APIV1/QUEUE', '/apiv1/queue;x=1', '/apiv1/jobs', '/apiv1/track', '/favicon.svg',
        ),
        fc.string({ unit: 'grapheme', maxLength: 50 }).map((s) => `/${safeEncode(s)}`),
        fc.string({ maxLength: 30 }).map((s) => `/apiv1/${safeEncode(s)}`),
      ),
      method: fc.constantFrom('GET', 'GET', 'GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'),
      body: fc.option(fc.oneof(fc.constant('null'), fc.string({ maxLength: 200 }), fc.constant('{"x":'), fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v))), { nil: undefined }),
      ctype: fc.option(fc.constantFrom('application/json', 'text/plain', 'application/json; charset=utf-16', 'multipart/form-data'), { nil: undefined }),
      hdr: fc.option(
        fc.constantFrom<[string, string]>(
          ['Authorization', 'Bearer garbage'], ['X-API-Key', ''], ['X-Forwarded-For', 'not-an-ip, 300.1.1.1'], ['Accept', '*/*;q=abc'], ['If-None-Match', '"x"'],
          ['If-Modified-Since', 'yesterday'], ['Accept-Encoding', 'gzip;q=2, *'], ['Cookie', 'a=b; ; =;'], ['X-HTTP-Method-Override', 'DELETE'], ['Origin', 'null'],
        ),
        { nil: undefined },
      ),
    })
    .map(({ target, method, body, ctype, hdr }) => {
      const headers: [string, string][] = [];
      if (ctype) headers.push(['Content-Type', ctype]);
      if (hdr) headers.push(hdr);
      return spec('endpoints', method, target, headers, body === undefined ? undefined : Buffer.from(body));
    });

/** Requests only Node's parser sees (or that it may reject): checked for 4xx-or-JSON and survival. */
const malformed = (): fc.Arbitrary<Spec> =>
  fc
    .oneof(
      fc.constantFrom(
        'GARBAGE\r\n\r\n',
        'GET / HTTP/9.9\r\nHost: x\r\n\r\n',
        'GET /\u0000 HTTP/1.1\r\nHost: x\r\n\r\n',
        `GET /apiv1/jobs/${'a'.repeat(28)}\u0000${'a'.repeat(27)} HTTP/1.1\r\nHost: x\r\n\r\n`,
        'GET /apiv1/queue HTTP/1.1\nHost: x\n\n',
        'GET /apiv1/queue HTTP/1.1\r\nHost x\r\n\r\n',
        'GET /apiv1/queue HTTP/1.1\r\nBad Header: x\r\n\r\n',
        'GET /apiv1/queue HTTP/1.1\r\nHost: x\r\n folded: y\r\n\r\n',
        'POST /apiv1/separate HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
        'POST /apiv1/separate HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n',
        'POST /apiv1/separate HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n',
        'POST /apiv1/separate HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}',
        'POST /apiv1/separate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
        'POST /apiv1/separate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n',
        'GET /apiv1/queue HTTP/1.1\r\nHost: x\r\nExpect: the-unexpected\r\n\r\n',
        'GET /apiv1/queue HTTP/1.1\r\n\r\n',
        'GET http://evil.example/apiv1/queue HTTP/1.1\r\nHost: evil.example\r\n\r\n',
        'CONNECT 127.0.0.1:6379 HTTP/1.1\r\nHost: 127.0.0.1:6379\r\n\r\n',
        'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
        'FLUSHALL\r\n',
        '\r\n\r\n\r\n',
        'get /apiv1/queue HTTP/1.1\r\nHost: x\r\n\r\n',
        'G\u00c9T / HTTP/1.1\r\nHost: x\r\n\r\n',
        'GET /apiv1/queue HTTP/1.1\r\nHost: x\r\nX: a\u0000b\r\n\r\n',
        'GET /apiv1/queue HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n',
      ).map((s) => ({ text: s, label: JSON.stringify(s).slice(0, 100) })),
      fc.integer({ min: 17_000, max: 40_000 }).map((n) => ({ text: `GET /apiv1/queue HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(n)}\r\n\r\n`, label: `header of ${n} bytes` })),
      fc.integer({ min: 17_000, max: 40_000 }).map((n) => ({ text: `GET /${'p'.repeat(n)} HTTP/1.1\r\nHost: x\r\n\r\n`, label: `target of ${n} bytes` })),
      fc.array(fc.constantFrom(' ', '\t', '\u0000', '\u0001', '\u007f', '"', '<', '>', '\\', '^', '`', '{', '|', '}', 'é', '😀', '\u00ff'), { minLength: 1, maxLength: 8 })
        .chain((bad) => fc.tuple(fc.constant(bad.join('')), hex56))
        .map(([bad, h]) => ({ text: `GET /apiv1/track/${h.slice(0, 20)}${bad}${h.slice(20)}/bass HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, label: `raw chars ${JSON.stringify(bad)} in :songhash` })),
    )
    .map(({ text, label }) => ({ cat: 'malformed', label, bytes: Buffer.from(text, 'utf8'), mayHitParser: true }));

const anyRequest = (): fc.Arbitrary<Spec> =>
  fc.oneof(
    { weight: 5, arbitrary: separateJson() },
    { weight: 3, arbitrary: separateMultipart() },
    { weight: 5, arbitrary: pathRoutes() },
    { weight: 3, arbitrary: otherEndpoints() },
    { weight: 1, arbitrary: malformed() },
  );

// ---------- judging one answer ----------
const STACK_RE = /\n\s+at |node_modules|\/work\/|\.ts:\d+|root:x:0:0/;

interface Tally {
  total: number;
  byCat: Record<string, number>;
  msByCat: Record<string, number>;
  byStatus: Record<string, number>;
  byError: Record<string, number>;
  parser: number;
  accepted: Set<string>;
  deleted: Set<string>;
}

function judge(s: Spec, o: RawOutcome, t: Tally): string | null {
  t.total++;
  t.byCat[s.cat] = (t.byCat[s.cat] ?? 0) + 1;
  t.msByCat[s.cat] = (t.msByCat[s.cat] ?? 0) + o.ms;
  if (s.deletes) t.deleted.add(s.deletes);
  if (o.kind === 'hung') return 'no answer and no close: the server hung';
  if (o.kind === 'closed') {
    t.byStatus.closed = (t.byStatus.closed ?? 0) + 1;
    return s.mayClose || s.mayHitParser ? null : `closed without a response (${o.error ?? 'eof'})`;
  }
  t.byStatus[o.status] = (t.byStatus[o.status] ?? 0) + 1;
  if (o.status >= 500) return `status ${o.status}: ${o.body.toString('utf8').slice(0, 300)}`;
  const text = /json|text|html|javascript|svg/.test(o.headers['content-type'] ?? '') ? o.body.toString('utf8') : '';
  if (STACK_RE.test(text)) return `leaks internals: ${text.slice(0, 300)}`;
  const fromExpress = 'content-security-policy' in o.headers;
  if (!fromExpress) {
    t.parser++;
    if (!s.mayHitParser) return `answered below Express (status ${o.status}) for a request Express should see`;
    return o.status >= 400 && o.status < 500 ? null : `parser answered ${o.status}`;
  }
  if (o.status >= 400) {
    if (!/^application\/json/.test(o.headers['content-type'] ?? '')) return `${o.status} without a JSON content type (${o.headers['content-type']})`;
    if (s.bytes.subarray(0, 5).toString() === 'HEAD ') return null;
    let body: { error?: unknown; detail?: unknown };
    try {
      body = JSON.parse(o.body.toString('utf8'));
    } catch {
      return `${o.status} with a body that is not JSON: ${o.body.toString('utf8').slice(0, 200)}`;
    }
    if (typeof body.error !== 'string' || typeof body.detail !== 'string') return `${o.status} without {error, detail}: ${JSON.stringify(body).slice(0, 200)}`;
    t.byError[body.error] = (t.byError[body.error] ?? 0) + 1;
    if (process.env.FUZZ_DEBUG && s.cat === process.env.FUZZ_DEBUG) console.log(`[debug] ${s.label} -> ${o.status} ${JSON.stringify(body).slice(0, 200)} :: ${s.bytes.subarray(s.bytes.indexOf("\r\n\r\n") + 4).toString("latin1").slice(0, 80)}`);
    return null;
  }
  if (s.cat.startsWith('separate') && o.status === 200) {
    const body = JSON.parse(o.body.toString('utf8')) as { hash?: string; reason?: string };
    if (!/^[0-9a-f]{56}$/.test(body.hash ?? '')) return `200 without a songhash: ${JSON.stringify(body).slice(0, 200)}`;
    t.accepted.add(body.hash!);
  }
  return null;
}

// ---------- setup ----------
beforeAll(async () => {
  process.on('uncaughtException', onProcessError);
  process.on('unhandledRejection', onProcessError);
  repoBefore = new Set(walk(REPO, repoSkip));
  store = await startTestStore();
  privateTmp = mkdtempSync(path.join(os.tmpdir(), 'msaas-fuzz-tmp-'));
  process.env.TMPDIR = privateTmp; // anything the app would spool to os.tmpdir() lands here, where we look
  prefix = uniquePrefix('fuzz');
  const logSink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      errorLogs.push(chunk.toString());
      cb();
    },
  });
  const publicResolver = async (host: string): Promise<string[]> => {
    if (host === 'internal.example') return ['10.1.2.3'];
    if (host === 'metadata.example') return ['169.254.169.254'];
    if (host === 'nxdomain.example') throw new Error('ENOTFOUND');
    return ['93.184.216.34'];
  };
  rest = await buildRest(testConfig(prefix, { MAX_UPLOAD_MB: String(MAX_MB), RATE_LIMIT_PER_MIN: '1000000' }), store.endpoint, {
    resolveHost: publicResolver,
    logger: pino({ level: 'error' }, logSink),
  });
  const redis = rest.deps.queue.redis; // fails fast until connected: a 503 here would be a false finding
  if (redis.status !== 'ready') await new Promise((resolve) => redis.once('ready', resolve));
  server = createHttpServer(rest.app, { idleTimeoutMs: 1500, headersTimeoutMs: 2000, requestTimeoutMs: 6000, checkIntervalMs: 250 });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;

  pool = await Promise.all([1, 2, 3, 4].map(async (seed) => Buffer.from(await synthesizeMp3({ seconds: 1, seed: 900 + seed }))));
  doneClip = Buffer.from(await synthesizeMp3({ seconds: 1, seed: 999 }));
  doneHash = songhash(doneClip);
  for (const t of TRACKS) await rest.deps.store.putStem(doneHash, t, doneClip);
  await rest.deps.queue.setJobFields(doneHash, { state: 'done', progress: 1, stems: TRACKS.join(','), createdAt: new Date().toISOString() });
  gzipBomb = gzipSync(Buffer.alloc(50 * 2 ** 20, 0x20));
  hugeB64 = 'A'.repeat(Math.ceil(1.5 * 2 ** 20));
  overB64 = Buffer.concat([pool[0]!, Buffer.alloc(MAX_MB * 2 ** 20 + 4096, 7)]).toString('base64'); // under the JSON cap, over the MP3 cap
  console.log(`[fuzz] seed ${SEED} (override with FUZZ_SEED), ${RUNS} batches of ${BATCH} requests; rest on 127.0.0.1:${port}`);
});

afterAll(async () => {
  process.off('uncaughtException', onProcessError);
  process.off('unhandledRejection', onProcessError);
  if (savedTmpdir === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmpdir;
  await new Promise<void>((r) => {
    server?.closeAllConnections();
    server ? server.close(() => r()) : r();
  });
  await rest?.close();
  await store?.close();
  if (prefix) await deletePrefix(prefix);
  if (privateTmp) rmSync(privateTmp, { recursive: true, force: true });
});

describe('hostile input', () => {
  const tally: Tally = { total: 0, byCat: {}, msByCat: {}, byStatus: {}, byError: {}, parser: 0, accepted: new Set(), deleted: new Set() };

  it('answers ≥ 1,000 seeded hostile requests over every endpoint with 2xx or a 4xx JSON {error, detail}: no 5xx, no hang, no stack trace', async () => {
    const started = Date.now();
    const failures: string[] = [];
    const details = await fc.check(
      fc.asyncProperty(fc.array(anyRequest(), { minLength: BATCH, maxLength: BATCH }), async (batch) => {
        const outcomes = await Promise.all(batch.map((s) => rawRequest(port, s.bytes, { deadlineMs: 15_000 })));
        const bad = batch.map((s, i) => [s, judge(s, outcomes[i]!, tally)] as const).filter(([, v]) => v !== null);
        for (const [s, v] of bad) failures.push(`[${s.cat}] ${s.label}\n    → ${v}`);
        return bad.length === 0;
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    if (details.failed) {
      throw new Error(`fuzz failed (seed ${SEED}, path ${details.counterexamplePath}):\n${failures.slice(0, 12).join('\n')}${details.errorInstance ? `\n${String(details.errorInstance).slice(0, 500)}` : ''}`);
    }
    const seconds = (Date.now() - started) / 1000;
    console.log(
      `[fuzz] ${tally.total} requests in ${seconds.toFixed(1)} s (seed ${SEED}); by category ${JSON.stringify(tally.byCat)}; ` +
        `by status ${JSON.stringify(tally.byStatus)}; by error ${JSON.stringify(tally.byError)}; summed latency ms by category ${JSON.stringify(tally.msByCat)}; answered by Node's parser: ${tally.parser}; songs accepted: ${tally.accepted.size}`,
    );
    expect(tally.total).toBeGreaterThanOrEqual(1000);
    expect(seconds).toBeLessThan(60);
    for (const cat of ['separate-json', 'separate-multipart', 'path-track', 'path-remove', 'path-jobs', 'path-events', 'path-zip', 'endpoints', 'malformed']) {
      expect(tally.byCat[cat], cat).toBeGreaterThan(10);
    }
  });

  it('kept the process alive and healthy, logged no internal error, kept metric labels bounded', async () => {
    expect(processErrors).toEqual([]);
    expect(errorLogs.filter((l) => /request failed/.test(l))).toEqual([]);
    const health = await rawRequest(port, buildRequest('GET', '/healthz'));
    expect(health.kind === 'response' && health.status).toBe(200);
    const metrics = await rawRequest(port, buildRequest('GET', '/metrics'));
    expect(metrics.kind).toBe('response');
    const series = metrics.kind === 'response' ? metrics.body.toString().split('\n').filter((l) => l.startsWith('msaas_http_requests_total{')) : [];
    console.log(`[fuzz] msaas_http_requests_total has ${series.length} label sets after the run`);
    // one label set per route × method × status, not one per hostile path
    expect(series.length).toBeLessThan(150);
    expect(series.some((l) => l.includes(MARK) || l.includes('%2e%2e') || l.includes('passwd'))).toBe(false);
  });

  it('really enqueued every accepted song, under the test prefix', async () => {
    expect(tally.accepted.size).toBeGreaterThan(10);
    const waiting = new Set(await rest.deps.queue.waiting());
    for (const hash of tally.accepted) {
      if (tally.deleted.has(hash) || hash === doneHash) continue;
      const job = await rest.deps.queue.getJob(hash);
      expect(job?.state, hash).toBe('queued');
      expect(waiting.has(hash), hash).toBe(true);
      expect(await rest.deps.store.hasUpload(hash), hash).toBe(true);
    }
  });

  it('wrote no file outside the queue and output buckets', () => {
    const objectName = /^(queue\/[0-9a-f]{56}\.mp3|output\/[0-9a-f]{56}-(drums|bass|other|vocals)\.mp3)\._S3rver_(object|object\.md5|metadata\.json)$/;
    const stray = walk(store.dir).filter((rel) => !(rel === 'queue' || rel === 'output' || objectName.test(rel)));
    expect(stray).toEqual([]);
    expect(walk(privateTmp)).toEqual([]);
    // Where a service could plausibly spill files (its own folders, var/, the working directory itself).
    // Other engineers write elsewhere in the tree while this runs, so only these are compared.
    // Other test files (run in parallel) create the gitignored artifact folders test-output/, output/, samples/ at the root.
    const otherTestsArtifacts = /^(test-output|bench-output|output|samples)(\/|$)/;
    const watched = (rel: string): boolean => !otherTestsArtifacts.test(rel) && (/^(rest|common|logs|var)(\/|$)/.test(rel) || !rel.includes('/'));
    const added = walk(REPO, repoSkip).filter((rel) => !repoBefore.has(rel) && watched(rel));
    expect(added).toEqual([]);
    const marked = [...walk(REPO, repoSkip), ...readdirSync(savedTmpdir ?? '/tmp'), ...readdirSync('/')].filter((n) => n.includes(MARK));
    expect(marked).toEqual([]);
    expect(statSync(store.dir).isDirectory()).toBe(true);
  });
});

describe('regressions the fuzz found', () => {
  const post = (body: string): Promise<RawOutcome> => rawRequest(port, buildRequest('POST', '/apiv1/separate', [['Content-Type', 'application/json']], Buffer.from(body)));
  const expect400 = (o: RawOutcome, detail: RegExp): void => {
    expect(o.kind === 'response' && o.status).toBe(400);
    if (o.kind === 'response') expect(JSON.parse(o.body.toString()).detail).toMatch(detail);
  };

  it('refuses callback data nested too deeply to serialize with a 400 (was a 500 at enqueue)', async () => {
    const deep = `${'['.repeat(50_000)}1${']'.repeat(50_000)}`;
    expect400(await post(`{"mp3":"${pool[2]!.toString('base64')}","callback":{"url":"https://hooks.example.com/x","data":${deep}}}`), /callback\.data: cannot be serialized/);
  });

  it('refuses callback data over 64 KiB with a 400', async () => {
    expect400(await post(JSON.stringify({ mp3: pool[2]!.toString('base64'), callback: { url: 'https://hooks.example.com/x', data: 'd'.repeat(70_000) } })), /callback\.data: must be at most 64 KiB/);
  });

  it('answers HEAD on an event stream at once instead of holding the socket', async () => {
    const o = await rawRequest(port, buildRequest('HEAD', `/apiv1/jobs/${doneHash}/events`), { deadlineMs: 1000 });
    expect(o.kind === 'response' && o.status).toBe(200);
    expect(o.ms).toBeLessThan(1000);
  });
});

describe('slow and stalled bodies', () => {
  it('ends trickling and stalled requests with a 4xx or a server timeout, without a hang, while serving others', async () => {
    const clip = pool[0]!.toString('base64');
    const json = Buffer.from(JSON.stringify({ mp3: clip }));
    const mp = multipartBody([{ name: 'file', filename: 'slow.mp3', ctype: 'audio/mpeg', content: pool[1]! }], 'slowb', '\r\n', true);
    const started = Date.now();
    const slow = [
      // body announced, a few pieces sent, then silence
      rawRequest(port, buildRequest('POST', '/apiv1/separate', [['Content-Type', 'application/json']], json), { deadlineMs: 20_000, trickle: { pieces: 40, pauseMs: 100, stopAfter: 5 } }),
      rawRequest(port, buildRequest('POST', '/apiv1/separate', [['Content-Type', 'multipart/form-data; boundary=slowb']], mp), { deadlineMs: 20_000, trickle: { pieces: 40, pauseMs: 100, stopAfter: 5 } }),
      // headers that never finish (slowloris)
      rawRequest(port, Buffer.from('GET /apiv1/queue HTTP/1.1\r\nHost: x\r\nX-Slow: '), { deadlineMs: 20_000, trickle: { pieces: 1, pauseMs: 100 } }),
      // a body that keeps trickling, one piece every 400 ms: under the idle limit, over the request limit
      rawRequest(port, buildRequest('POST', '/apiv1/separate', [['Content-Type', 'application/json']], json), { deadlineMs: 20_000, trickle: { pieces: 200, pauseMs: 400 } }),
      // chunked body that stops before its last chunk
      rawRequest(port, Buffer.from('POST /apiv1/separate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"mp3'), { deadlineMs: 20_000 }),
    ];
    // The server keeps answering others meanwhile.
    const probes: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = Date.now();
      const r = await rawRequest(port, buildRequest('GET', '/healthz'));
      expect(r.kind === 'response' && r.status).toBe(200);
      probes.push(Date.now() - t0);
      await new Promise((r) => setTimeout(r, 200));
    }
    const outcomes = await Promise.all(slow);
    const summary = outcomes.map((o) => (o.kind === 'response' ? `${o.status} after ${o.ms} ms` : `${o.kind} after ${o.ms} ms`));
    console.log(`[fuzz] slow bodies: ${summary.join('; ')}; /healthz meanwhile ${Math.max(...probes)} ms max`);
    for (const o of outcomes) {
      expect(o.kind).not.toBe('hung');
      if (o.kind === 'response') {
        expect(o.status).toBeGreaterThanOrEqual(400);
        expect(o.status).toBeLessThan(500);
      }
    }
    expect(Date.now() - started).toBeLessThan(15_000);
    const open = await new Promise<number>((r) => server.getConnections((_e, n) => r(n)));
    expect(open).toBe(0);
    expect(processErrors).toEqual([]);
  });
});
