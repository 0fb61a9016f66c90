/**
 * JSON with one big base64 member (the lab's `{"mp3": "<base64>"}` submissions), parsed from the
 * raw bytes so that a 64 MB MP3 costs its 85 MB of body once, not five times: the member's string
 * is located in the buffer, decoded from it in place, and left out of the text given to
 * `JSON.parse`. The outcome is the same as `JSON.parse` of the whole body followed by
 * `Buffer.from(value.replace(/\s+/g, '').replace(/^data:[\w/.+-]+;base64,/, ''), 'base64')` with
 * the checks separate.ts has always made (empty, `length % 4 === 1`, base64 alphabet with up to two
 * trailing `=`). Pure functions, no I/O.
 */

/** The body is not valid JSON (what `JSON.parse` of it would have thrown for). */
export class JsonSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JsonSyntaxError';
  }
}

/** A lifted member's value: its decoded bytes, or why there are none. */
export type Base64Value = { kind: 'bytes'; bytes: Buffer } | { kind: 'empty' } | { kind: 'bad_base64' };

export interface LiftedJson {
  /** The parsed body; each lifted member's value replaced by a marker string (see `liftedValue`). */
  value: unknown;
  lifted: Base64Value[];
}

const MARKER = '\u0000lifted:';

/** The lifted value a marker string stands for, or null when `s` is no marker of `parsed`. */
export function liftedValue(parsed: LiftedJson, s: string): Base64Value | null {
  if (!s.startsWith(MARKER)) return null;
  return parsed.lifted[Number(s.slice(MARKER.length))] ?? null;
}

// Base64 alphabet value per byte, -1 elsewhere.
const SEXTET = new Int8Array(256).fill(-1);
for (let i = 0; i < 64; i++) SEXTET['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.charCodeAt(i)] = i;

/** `[\w/.+-]`, the media type of a `data:` URL prefix. */
const isTypeChar = (c: number): boolean =>
  (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f || c === 0x2f || c === 0x2e || c === 0x2b || c === 0x2d;

/** JavaScript's `\s`, for code units. */
const isJsSpace = (u: number): boolean =>
  (u >= 0x09 && u <= 0x0d) || u === 0x20 || u === 0xa0 || u === 0x1680 || (u >= 0x2000 && u <= 0x200a) || u === 0x2028 || u === 0x2029 || u === 0x202f || u === 0x205f || u === 0x3000 || u === 0xfeff;

/** Length of the UTF-8 encoding of a `\s` character at `i` (non-ASCII ones), else 0. */
function utf8SpaceAt(b: Uint8Array, i: number, end: number): number {
  const b0 = b[i]!;
  if (b0 === 0xc2) return i + 1 < end && b[i + 1] === 0xa0 ? 2 : 0;
  if (i + 2 >= end) return 0;
  const b1 = b[i + 1]!;
  const b2 = b[i + 2]!;
  if (b0 === 0xe1) return b1 === 0x9a && b2 === 0x80 ? 3 : 0;
  if (b0 === 0xe2 && b1 === 0x80) return (b2 >= 0x80 && b2 <= 0x8a) || b2 === 0xa8 || b2 === 0xa9 || b2 === 0xaf ? 3 : 0;
  if (b0 === 0xe2) return b1 === 0x81 && b2 === 0x9f ? 3 : 0;
  if (b0 === 0xe3) return b1 === 0x80 && b2 === 0x80 ? 3 : 0;
  if (b0 === 0xef) return b1 === 0xbb && b2 === 0xbf ? 3 : 0;
  return 0;
}

const hexValue = (c: number): number => (c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 0x37 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1);

const ESCAPES: Record<number, number> = { 0x22: 0x22, 0x5c: 0x5c, 0x2f: 0x2f, 0x62: 0x08, 0x66: 0x0c, 0x6e: 0x0a, 0x72: 0x0d, 0x74: 0x09 };
const DATA_COLON = [0x64, 0x61, 0x74, 0x61, 0x3a]; // "data:"
const BASE64_COMMA = [0x62, 0x61, 0x73, 0x65, 0x36, 0x34, 0x2c]; // "base64,"
/** A character that is neither base64 nor space (non-ASCII, or from an escape). */
const OTHER = -2;

/**
 * Decodes the content of a JSON string token, `buf[start, end)` (between its quotes, escapes still
 * raw), as base64, writing the bytes over the token itself (the output never overtakes the input).
 * Throws JsonSyntaxError where JSON.parse would (a raw control character, a bad escape).
 */
export function decodeBase64Token(buf: Buffer, start: number, end: number): Base64Value {
  let out = start;
  let bad = false;
  // Prefix state: 0 = looking at the first 5 characters, 1 = in the media type, 2 = matching "base64,", 3 = data.
  let mode = 0;
  const head: number[] = [];
  let typeLen = 0;
  let matched = 0;
  let count = 0; // characters of the data part (padding included)
  let pad = 0;
  let acc = 0;
  let bits = 0;

  const data = (c: number): void => {
    count++;
    if (c === 0x3d) {
      if (++pad > 2) bad = true;
      return;
    }
    const v = c >= 0 ? SEXTET[c]! : -1;
    if (v < 0 || pad > 0) {
      bad = true;
      return;
    }
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      buf[out++] = (acc >> bits) & 0xff;
    }
  };
  const feed = (c: number): void => {
    if (bad) return;
    if (mode === 3) return data(c);
    if (mode === 0) {
      head.push(c);
      if (head.length < 5) return;
      if (head.every((h, k) => h === DATA_COLON[k])) mode = 1;
      else {
        mode = 3;
        for (const h of head) data(h);
      }
      return;
    }
    if (mode === 1) {
      if (c >= 0 && isTypeChar(c)) typeLen++;
      else if (c === 0x3b && typeLen > 0) mode = 2;
      else bad = true;
      return;
    }
    if (c !== BASE64_COMMA[matched]) bad = true;
    else if (++matched === BASE64_COMMA.length) mode = 3;
  };

  for (let i = start; i < end; ) {
    const b = buf[i]!;
    if (b < 0x20) throw new JsonSyntaxError(`bad control character in string literal at position ${i}`);
    if (b === 0x5c) {
      const e = buf[i + 1] ?? -1;
      let unit: number;
      if (e === 0x75) {
        const h = [hexValue(buf[i + 2] ?? -1), hexValue(buf[i + 3] ?? -1), hexValue(buf[i + 4] ?? -1), hexValue(buf[i + 5] ?? -1)];
        if (i + 5 >= end || h.some((x) => x < 0)) throw new JsonSyntaxError(`bad Unicode escape in string literal at position ${i}`);
        unit = (h[0]! << 12) | (h[1]! << 8) | (h[2]! << 4) | h[3]!;
        i += 6;
      } else {
        const mapped = ESCAPES[e];
        if (mapped === undefined || i + 1 >= end) throw new JsonSyntaxError(`bad escaped character in string literal at position ${i}`);
        unit = mapped;
        i += 2;
      }
      if (!isJsSpace(unit)) feed(unit < 0x80 ? unit : OTHER);
      continue;
    }
    if (b < 0x80) {
      if (b !== 0x20) feed(b);
      i++;
      continue;
    }
    const space = utf8SpaceAt(buf, i, end);
    if (space > 0) {
      i += space;
      continue;
    }
    feed(OTHER);
    i++;
  }

  if (!bad && mode === 0) {
    mode = 3;
    for (const h of head) data(h);
  }
  if (bad || mode !== 3) return { kind: 'bad_base64' };
  if (count === 0) return { kind: 'empty' };
  if (count % 4 === 1) return { kind: 'bad_base64' };
  return { kind: 'bytes', bytes: buf.subarray(start, out) };
}

/** Index of the quote closing the string whose content starts at `from`, or -1. */
function closingQuote(buf: Buffer, from: number): number {
  for (let k = buf.indexOf(0x22, from); k >= 0; k = buf.indexOf(0x22, k + 1)) {
    let slashes = 0;
    while (k - 1 - slashes >= from && buf[k - 1 - slashes] === 0x5c) slashes++;
    if (slashes % 2 === 0) return k;
  }
  return -1;
}

/** Whether the string token `buf[s, e)` (quotes included) is the key `key`, escapes and all. */
function isKey(buf: Buffer, s: number, e: number, key: string): boolean {
  if (e - s > key.length * 6 + 2) return false;
  try {
    return JSON.parse(buf.toString('utf8', s, e)) === key;
  } catch {
    return false;
  }
}

/**
 * Parses a UTF-8 JSON body (a leading BOM skipped, an empty body = `{}`, as body-parser does),
 * lifting every string value of the top-level member `key` out of the text: each is decoded as
 * base64 in place and stands in the parsed value as a marker (`liftedValue`). `buf` is consumed.
 */
export function parseLiftingBase64(buf: Buffer, key: string): LiftedJson {
  let from = buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? 3 : 0;
  if (from === buf.length) return { value: {}, lifted: [] };
  const spans: Array<{ start: number; end: number }> = [];
  let depth = 0;
  let topIsObject = false;
  let expectKey = false;
  let afterColon = false;
  let keyMatches = false;
  for (let i = from; i < buf.length; ) {
    const c = buf[i]!;
    if (c === 0x22) {
      const close = closingQuote(buf, i + 1);
      if (close < 0) break; // unterminated: JSON.parse of the rest says so
      if (depth === 1 && topIsObject) {
        if (expectKey) {
          keyMatches = isKey(buf, i, close + 1, key);
          expectKey = false;
        } else if (afterColon && keyMatches) {
          spans.push({ start: i + 1, end: close });
        }
        afterColon = false;
      }
      i = close + 1;
      continue;
    }
    if (c === 0x7b || c === 0x5b) {
      depth++;
      if (depth === 1) {
        topIsObject = c === 0x7b;
        expectKey = topIsObject;
      }
      afterColon = false;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    } else if (depth === 1 && topIsObject) {
      if (c === 0x2c) {
        expectKey = true;
        afterColon = false;
      } else if (c === 0x3a) afterColon = true;
      else if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) afterColon = false;
    }
    i++;
  }

  const lifted = spans.map((s) => decodeBase64Token(buf, s.start, s.end));
  const parts: Buffer[] = [];
  spans.forEach((s, n) => {
    parts.push(buf.subarray(from, s.start), Buffer.from(JSON.stringify(`${MARKER}${n}`).slice(1, -1)));
    from = s.end;
  });
  parts.push(buf.subarray(from));
  const text = (parts.length === 1 ? parts[0]! : Buffer.concat(parts)).toString('utf8');
  try {
    return { value: JSON.parse(text) as unknown, lifted };
  } catch (err) {
    throw new JsonSyntaxError((err as Error).message);
  }
}

/** The same decoding for a value that is already a string (a body another parser read). */
export function decodeBase64String(s: string): Base64Value {
  const token = Buffer.from(JSON.stringify(s), 'utf8');
  return decodeBase64Token(token, 1, token.length - 1);
}
