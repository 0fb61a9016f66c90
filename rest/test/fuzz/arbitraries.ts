/**
 * fast-check generators of hostile HTTP requests to every rest endpoint, each a raw byte string
 * (so requests Node's own parser rejects can be sent too) with what the judge may accept of it.
 * Used by ../fuzz-requests.test.ts; the bodies also by ../fuzz-slow-clients.test.ts.
 */
import fc from 'fast-check';
import { gzipSync } from 'node:zlib';
import { TRACKS, songhash } from '@msaas/common';
import { buildRequest } from '../helpers/raw-http.ts';

/** The upload cap (MAX_UPLOAD_MB) the fuzz target runs with; some bodies are built to exceed it. */
export const MAX_MB = 1;
export const MARK = 'fuzzmark'; // in every hostile file name: any file carrying it outside the buckets is an escape

/** What the generators draw from, made by the fuzz target (./target.ts) once it runs. */
export interface Corpus {
  /** Real MP3 clips. */
  pool: Buffer[];
  /** The same kind of clip in every other input format (WAV, FLAC, Ogg Vorbis, Ogg Opus, M4A/AAC), by real encoders. */
  formats: Buffer[];
  /** A song already separated (stems stored, job done): GET/Range/zip paths reach real data. */
  doneHash: string;
  gzipBomb: Buffer;
  /** base64 over the JSON body cap. */
  hugeB64: string;
  /** base64 under the JSON cap, over the MP3 cap. */
  overB64: string;
}

// ---------- request model ----------
export interface Spec {
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

export const spec = (cat: string, method: string, target: string, headers: [string, string][] = [], body?: Buffer, flags: Partial<Spec> = {}): Spec => ({
  cat,
  label: `${method} ${target.slice(0, 120)}${target.length > 120 ? `…(${target.length})` : ''} ${JSON.stringify(headers).slice(0, 160)} body=${body?.length ?? 0}B`,
  bytes: buildRequest(method, target, headers, body),
  ...flags,
});

// ---------- generators that need no corpus ----------
const hex56 = fc.stringMatching(/^[0-9a-f]{56}$/);
const safeEncode = (s: string): string => {
  try {
    return encodeURIComponent(s);
  } catch {
    return 'x';
  }
};


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


export interface Part {
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


export function multipartBody(parts: Part[], boundary: string, eol: string, close: boolean): Buffer {
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


// ---------- generators over the corpus ----------
/** Every generator; `anyRequest` mixes them. Call after the corpus exists (inside a test). */
export function fuzzArbitraries(corpus: Corpus) {
  const { pool, formats, doneHash, gzipBomb, hugeB64, overB64 } = corpus;
  /** Every clip, whatever its format: the hostile variants below are made of each. */
  const clips = [...pool, ...formats];

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

  /**
   * Audio-ish bytes: valid clips of every input format, truncated and corrupted ones (the header's
   * first 256 bytes too), splices of two formats, and things that are no audio we take at all.
   * Labels (file name, Content-Type) are drawn independently, so most are mislabelled.
   */
  const mp3Bytes = (): fc.Arbitrary<Buffer> =>
    fc.oneof(
      { weight: 2, arbitrary: fc.nat(clips.length - 1).map((i) => clips[i]!) },
      { weight: 3, arbitrary: fc.tuple(fc.nat(clips.length - 1), fc.double({ min: 0, max: 1, noNaN: true })).map(([i, f]) => clips[i]!.subarray(0, Math.floor(clips[i]!.length * f))) },
      {
        weight: 3,
        arbitrary: fc.tuple(fc.nat(clips.length - 1), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 64 })).map(([i, flips]) => {
          const b = Buffer.from(clips[i]!);
          for (const [at, v] of flips) b[at % b.length] = v;
          return b;
        }),
      },
      {
        weight: 2,
        arbitrary: fc.tuple(fc.nat(clips.length - 1), fc.array(fc.tuple(fc.nat(255), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 })).map(([i, flips]) => {
          const b = Buffer.from(clips[i]!);
          for (const [at, v] of flips) b[at % b.length] = v;
          return b;
        }),
      },
      {
        weight: 1,
        arbitrary: fc.tuple(fc.nat(clips.length - 1), fc.nat(clips.length - 1), fc.double({ min: 0, max: 1, noNaN: true })).map(([i, j, f]) =>
          Buffer.concat([clips[i]!.subarray(0, Math.floor(clips[i]!.length * f)), clips[j]!.subarray(Math.floor(clips[j]!.length * f))]),
        ),
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
          Buffer.from('RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x02\x00\x44\xac\x00\x00\x10\xb1\x02\x00\x04\x00\x10\x00data\xff\xff\xff\x7f', 'latin1'),
          Buffer.from('FORM\x00\x00\x00\x20AIFFCOMM', 'latin1'),
          Buffer.from('fLaC\x00\x00\x00\x22', 'latin1'),
          Buffer.from('OggS\x00\x02', 'latin1'),
          Buffer.from('\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00', 'latin1'),
          Buffer.from('\x00\x00\x00\x18ftypisom\x00\x00\x00\x00\xff\xff\xff\xffmoov', 'latin1'),
          Buffer.from([0x1a, 0x45, 0xdf, 0xa3]),
          Buffer.from('MThd\x00\x00\x00\x06', 'latin1'),
          Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'),
          Buffer.from('PK\x03\x04', 'latin1'),
          Buffer.from('\x7fELF\x02\x01\x01', 'latin1'),
          Buffer.from('ID3'),
          Buffer.from([0xff, 0xfb, 0x90, 0x64]),
        ),
      },
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

  const anyRequest = (): fc.Arbitrary<Spec> =>
    fc.oneof(
      { weight: 5, arbitrary: separateJson() },
      { weight: 3, arbitrary: separateMultipart() },
      { weight: 5, arbitrary: pathRoutes() },
      { weight: 3, arbitrary: otherEndpoints() },
      { weight: 1, arbitrary: malformed() },
    );

  return { hashSeg, trackSeg, mp3Bytes, callbackValue, mp3Field, plausibleJson, jsonBody, separateJson, separateJsonHostile, part, plausibleParts, separateMultipart, pathRoutes, anyRequest };
}
