/**
 * Clean logs: no user-supplied value reaches a log line with a raw control character. The escape
 * itself, the logger (stdout JSON, the published event, the lab's list) against real Redis, and
 * the real services end to end: a multipart upload whose `filename*` carries %0A and ESC cannot
 * forge a line or clear the terminal in the logs service's output, and the logs service escapes
 * events from any publisher.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { createLogger, escapeControl, formatLogEvent, labLogLine, makeKeys, parseLogEvent, stripControl, type LogEvent } from '@msaas/common';
import { synthesizeMp3 } from '../../worker/fixtures/synth.ts';
import { REDIS_URL, deletePrefix, uniquePrefix, waitFor } from '../../test/helpers/env.ts';
import { printLinesOnFailure, startStack, type Stack } from '../../test/helpers/stack.ts';

// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
const FORGED = '2026-12-03T00:00:00.000Z rest   host INFO  FORGED admin logged in';
const HOSTILE = `song.mp3\n${FORGED}\r\x1b[2J\x1b[1;1H\u202egnp.exe\u0007\u0000`;

describe('the escape', () => {
  it('writes every control, DEL, C1, separator and bidi character as a visible escape', () => {
    expect(escapeControl('a\nb\rc\td')).toBe('a\\nb\\rc\\td');
    expect(escapeControl('\x1b[2J\x00\x7f\x9b')).toBe('\\x1b[2J\\x00\\x7f\\x9b');
    expect(escapeControl('x\u2028y\u202ez\u2066')).toBe('x\\u2028y\\u202ez\\u2066');
    expect(escapeControl('plain ünïcode 🎵 ok')).toBe('plain ünïcode 🎵 ok');
    expect(escapeControl(HOSTILE)).not.toMatch(RAW_CONTROL);
    expect(stripControl(HOSTILE)).toBe(`song.mp3${FORGED}[2J[1;1Hgnp.exe`);
  });

  it('formats events from any publisher as one line of plain text (logs service and the lab list)', () => {
    const event: LogEvent = { time: '2026-12-03T10:00:00.000Z', service: 'rest\x1b]0;pwned\x07', host: 'h\nx', level: 'info', msg: HOSTILE, job: 'ab\ncd' };
    for (const line of [formatLogEvent(event), labLogLine(event)]) {
      expect(line).not.toMatch(RAW_CONTROL);
      expect(line).toContain('\\n2026-12-03T00:00:00.000Z');
    }
    // a level that is not one of ours does not get through as-is either
    expect(parseLogEvent(JSON.stringify({ ...event, level: 'info\x1b[31m' }))?.level).toBe('info');
  });
});

describe('the logger against real Redis', () => {
  const prefix = uniquePrefix('log-escaping');
  const keys = makeKeys(prefix);
  let redis: Redis;
  let sub: Redis;
  beforeAll(async () => {
    redis = new Redis(REDIS_URL);
    sub = new Redis(REDIS_URL);
    await sub.subscribe(keys.loggingChannel);
    if (redis.status !== 'ready') await new Promise((r) => redis.once('ready', r));
  });
  afterAll(async () => {
    sub?.disconnect();
    redis?.disconnect();
    await deletePrefix(prefix);
  });

  it('escapes user values in the message on stdout, on the channel and in the lab list', async () => {
    const out: string[] = [];
    const stdout = new Writable({ write: (chunk: Buffer, _e, done) => (out.push(chunk.toString()), done()) });
    const published: string[] = [];
    sub.on('message', (_ch: string, raw: string) => published.push(raw));
    const logger = createLogger({ service: 'rest', level: 'info', redis, keys, stdout });
    logger.info({ job: 'f'.repeat(56) }, `song enqueued (12 kB, ${HOSTILE})`);
    logger.warn('upload from %s failed', HOSTILE);
    await waitFor(async () => published.length >= 2 && (await redis.llen(keys.logging)) >= 2, { timeoutMs: 5000, what: 'published log events' });

    const lines = out.join('').split('\n').filter(Boolean);
    expect(lines).toHaveLength(2);
    for (const line of lines) expect((JSON.parse(line) as { msg: string }).msg).not.toMatch(RAW_CONTROL);
    for (const raw of published) {
      const event = JSON.parse(raw) as LogEvent;
      expect(event.msg).not.toMatch(RAW_CONTROL);
      expect(event.msg).toContain('\\x1b[2J');
    }
    for (const entry of await redis.lrange(keys.logging, 0, -1)) {
      expect(entry).not.toMatch(RAW_CONTROL);
      expect(entry.startsWith(`${(JSON.parse(published[0]!) as LogEvent).host}.rest.`)).toBe(true);
    }
  });
});

/** A multipart upload whose file name is given only as RFC 5987 `filename*` (percent-encoded UTF-8). */
function uploadWithFilenameStar(port: number, bytes: Buffer, encodedName: string): Promise<{ status: number; body: string }> {
  const boundary = 'xXlogEscapeXx';
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename*=UTF-8''${encodedName}\r\nContent-Type: audio/mpeg\r\n\r\n`),
    bytes,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: '/apiv1/separate', method: 'POST', headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}`, 'Content-Length': body.length } },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('the real services (rest and logs)', () => {
  let stack: Stack;
  printLinesOnFailure(() => stack?.lines);
  beforeAll(async () => {
    stack = await startStack({ worker: false, logs: true });
  }, 120_000);
  afterAll(async () => stack?.stop());

  it('a filename* with %0A and ESC neither forges a line nor reaches the terminal raw; the stored name is stripped', async () => {
    const clip = Buffer.from(await synthesizeMp3({ seconds: 1, seed: 5151 }));
    const name = encodeURIComponent(`evil\n${FORGED}\x1b[2J\x1b[3J.mp3`);
    expect(name).toContain('%0A');
    expect(name).toContain('%1B');
    const res = await uploadWithFilenameStar(stack.port, clip, name);
    expect(res.status, res.body).toBe(200);
    const job = (JSON.parse(res.body) as { job: { filename: string | null } }).job;
    expect(job.filename).toBe(`evil${FORGED}[2J[3J.mp3`);

    const enqueued = await waitFor(async () => stack.lines.find((l) => l.service === 'logs' && l.line.includes('song enqueued')), { timeoutMs: 10_000, what: 'the logs service printing the upload' });
    expect(enqueued.line).toContain('evil2026-12-03T00:00:00.000Z');
    for (const { line } of stack.lines) {
      expect(line).not.toMatch(RAW_CONTROL);
      expect(line.startsWith('2026-12-03T00:00:00.000Z')).toBe(false); // no forged line of its own
    }
  });

  it('the logs service escapes what it prints, whoever published it', async () => {
    const redis = new Redis(REDIS_URL);
    try {
      const event = { time: new Date().toISOString(), service: 'lab', host: 'lab-host', level: 'info', msg: `hello-marker ${HOSTILE}` };
      await redis.publish(`${stack.prefix}logging`, JSON.stringify(event));
      const printed = await waitFor(async () => stack.lines.find((l) => l.service === 'logs' && l.line.includes('hello-marker')), { timeoutMs: 10_000, what: 'the logs service printing the event' });
      expect(printed.line).toContain('\\n2026-12-03T00:00:00.000Z rest');
      expect(printed.line).toContain('\\x1b[2J');
      for (const { line } of stack.lines) expect(line).not.toMatch(RAW_CONTROL);
    } finally {
      redis.disconnect();
    }
  });
});
