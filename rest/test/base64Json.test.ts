/**
 * The raw-bytes JSON parser with a lifted base64 member (rest/src/base64Json.ts) against the
 * reference it replaces: JSON.parse of the whole body, then the string decoding separate.ts used
 * (whitespace removed, a data: URL prefix removed, the base64 checks, Buffer.from). Pure; no I/O.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JsonSyntaxError, decodeBase64String, liftedValue, parseLiftingBase64 } from '../src/base64Json.ts';

type Outcome = { kind: 'bad_json' } | { kind: 'empty' } | { kind: 'bad_base64' } | { kind: 'bytes'; hex: string } | { kind: 'value'; value: unknown };

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/** What the body parser + decodeBase64 of separate.ts made of a body, before this module. */
function reference(body: Buffer): Outcome {
  let text = body.toString('utf8');
  if (text.startsWith('\ufeff')) text = text.slice(1);
  let value: unknown;
  try {
    value = text.length === 0 ? {} : JSON.parse(text);
  } catch {
    return { kind: 'bad_json' };
  }
  const mp3 = value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>).mp3 : undefined;
  if (typeof mp3 !== 'string') return { kind: 'value', value };
  const compact = mp3.replace(/\s+/g, '').replace(/^data:[\w/.+-]+;base64,/, '');
  if (compact.length === 0) return { kind: 'empty' };
  if (compact.length % 4 === 1 || !BASE64_RE.test(compact)) return { kind: 'bad_base64' };
  return { kind: 'bytes', hex: Buffer.from(compact, 'base64').toString('hex') };
}

function lifted(body: Buffer): Outcome {
  let parsed;
  try {
    parsed = parseLiftingBase64(Buffer.from(body), 'mp3');
  } catch (err) {
    if (err instanceof JsonSyntaxError) return { kind: 'bad_json' };
    throw err;
  }
  const { value } = parsed;
  const mp3 = value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>).mp3 : undefined;
  if (typeof mp3 !== 'string') return { kind: 'value', value };
  const v = liftedValue(parsed, mp3);
  if (!v) throw new Error(`top-level mp3 string ${JSON.stringify(mp3.slice(0, 40))} was not lifted`);
  return v.kind === 'bytes' ? { kind: 'bytes', hex: v.bytes.toString('hex') } : v;
}

const b64char = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');
const spaceChar = fc.constantFrom(' ', '\n', '\r', '\t', '\u000b', '\u000c', '\u00a0', '\u1680', '\u2000', '\u200a', '\u2028', '\u2029', '\u202f', '\u205f', '\u3000', '\ufeff', '\u2030', '\u200b', '\u0085');
const oddChar = fc.constantFrom(' ', '\n', '\r', '\t', '\u000b', '\u000c', '\u00a0', '\u1680', '\u2005', '\u2028', '\u202f', '\u3000', '\ufeff', '\u00e9', '\u2030', '\ud83d', '=', ':', ';', ',', '-', '_', '.', '"', '\\', '\u0000', '\u00c2');
const contentString = fc.oneof(
  fc.array(fc.oneof({ weight: 12, arbitrary: b64char }, { weight: 2, arbitrary: oddChar }), { maxLength: 40 }).map((a) => a.join('')),
  fc.tuple(fc.constantFrom('data:audio/mpeg;base64,', 'data:;base64,', 'data:a b;base64,', 'data:x/y;base6', 'data:', 'dat', 'data:x;base64', ' d a t a : audio/mp3 ; base64 , '), fc.uint8Array({ maxLength: 20 }))
    .map(([p, b]) => p + Buffer.from(b).toString('base64')),
  fc.uint8Array({ maxLength: 30 }).map((b) => Buffer.from(b).toString('base64').replace(/=+$/, '')),
  fc.uint8Array({ maxLength: 30 }).map((b) => Buffer.from(b).toString('base64').replace(/(.{8})/g, '$1\n')),
  fc
    .tuple(fc.uint8Array({ minLength: 1, maxLength: 30 }), fc.array(fc.tuple(fc.nat(60), spaceChar), { minLength: 1, maxLength: 6 }))
    .map(([b, spaces]) => {
      let t = Buffer.from(b).toString('base64');
      for (const [at, ch] of spaces) t = t.slice(0, at % (t.length + 1)) + ch + t.slice(at % (t.length + 1));
      return t;
    }),
);

/** A JSON string token for `s`, written in one of the ways a client may write it (or broken). */
const token = (s: string): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.constant(JSON.stringify(s)) },
    { weight: 2, arbitrary: fc.constant(JSON.stringify(s).replace(/\//g, '\\/')) },
    { weight: 2, arbitrary: fc.constant(`"${[...s].map((ch, k) => (k % 3 === 1 ? `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}` : JSON.stringify(ch).slice(1, -1))).join('')}"`) },
    { weight: 1, arbitrary: fc.constantFrom('"\\x41"', '"AB\\u12G4"', '"AB\nCD"', '"AB\u0001"', '"\\', '"ABCD', '"\\u00"') },
  );

const body = fc
  .record({
    mp3: contentString.chain(token),
    key: fc.constantFrom('"mp3"', '"mp3"', '"mp3"', '"m\\u0070\\u0033"', '"MP3"', '"mp3 "'),
    shape: fc.constantFrom('plain', 'dup', 'nested', 'array', 'extra', 'number', 'spaces', 'bom', 'trailing', 'top-string'),
    other: fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
  })
  .map(({ mp3, key, shape, other }) => {
    switch (shape) {
      case 'dup':
        return `{${key}:"QUJD",${key}:${mp3},"x":${other}}`;
      case 'nested':
        return `{"a":{"mp3":${mp3}},${key}:"QQ=="}`;
      case 'array':
        return `[${mp3},{"mp3":${mp3}}]`;
      case 'extra':
        return `{"callback":{"url":"http://x/","data":${other}},${key}:${mp3},"model":"htdemucs"}`;
      case 'number':
        return `{${key}:42,"y":${mp3}}`;
      case 'spaces':
        return ` \n{ ${key} \t:\r\n ${mp3} } `;
      case 'bom':
        return `\ufeff{${key}:${mp3}}`;
      case 'trailing':
        return `{${key}:${mp3}},`;
      case 'top-string':
        return mp3;
      default:
        return `{${key}:${mp3}}`;
    }
  });

describe('parseLiftingBase64', () => {
  it('agrees with JSON.parse + the string decoding on generated bodies (outcome, bytes and the rest of the value)', () => {
    fc.assert(
      fc.property(body, (text) => {
        const bytes = Buffer.from(text, 'utf8');
        expect(lifted(bytes)).toEqual(reference(bytes));
      }),
      { numRuns: 5000, seed: 20261203 },
    );
  });

  it('decodes real base64 of random bytes exactly, in every accepted spelling', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.constantFrom('', 'data:audio/mpeg;base64,'), fc.boolean(), (raw, prefix, wrap) => {
        let b64 = Buffer.from(raw).toString('base64');
        if (wrap) b64 = b64.replace(/(.{76})/g, '$1\r\n');
        const out = lifted(Buffer.from(JSON.stringify({ mp3: prefix + b64, model: 'htdemucs' })));
        expect(out).toEqual(raw.length === 0 ? { kind: 'empty' } : { kind: 'bytes', hex: Buffer.from(raw).toString('hex') });
      }),
      { numRuns: 300, seed: 7 },
    );
  });

  it('the body is read in place: the bytes are a view of the body buffer, and the text parsed holds no base64', () => {
    const raw = Buffer.alloc(300_000, 7);
    const bodyBuf = Buffer.from(JSON.stringify({ callback: null, mp3: raw.toString('base64') }));
    const parsed = parseLiftingBase64(bodyBuf, 'mp3');
    const v = liftedValue(parsed, (parsed.value as { mp3: string }).mp3);
    expect(v?.kind).toBe('bytes');
    if (v?.kind !== 'bytes') return;
    expect(v.bytes.equals(raw)).toBe(true);
    expect(v.bytes.buffer).toBe(bodyBuf.buffer);
    expect((parsed.value as { mp3: string }).mp3.length).toBeLessThan(20);
    expect((parsed.value as { callback: unknown }).callback).toBeNull();
  });

  it('the lab null body, an empty body and a BOM-only body parse as body-parser did', () => {
    expect(parseLiftingBase64(Buffer.from('null'), 'mp3').value).toBeNull();
    expect(parseLiftingBase64(Buffer.alloc(0), 'mp3').value).toEqual({});
    expect(parseLiftingBase64(Buffer.from('\ufeff'), 'mp3').value).toEqual({});
    expect(() => parseLiftingBase64(Buffer.from('  '), 'mp3')).toThrow(JsonSyntaxError);
  });

  it('decodeBase64String decodes an already parsed string the same way', () => {
    expect(decodeBase64String(' data:audio/mpeg;base64,QU\nJD ')).toEqual({ kind: 'bytes', bytes: Buffer.from('ABC') });
    expect(decodeBase64String('\u00a0')).toEqual({ kind: 'empty' });
    expect(decodeBase64String('QQ=A')).toEqual({ kind: 'bad_base64' });
    expect(decodeBase64String('Q')).toEqual({ kind: 'bad_base64' });
  });
});
