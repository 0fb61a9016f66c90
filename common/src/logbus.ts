import os from 'node:os';
import { Writable } from 'node:stream';
import type { Redis } from 'ioredis';
import { pino, multistream, type Logger, type Level } from 'pino';
import type { Keys } from './keys.ts';

/** One log event as it travels on the Redis channel `logging`. */
export interface LogEvent {
  time: string;
  service: string;
  host: string;
  level: Level;
  msg: string;
  job?: string;
}

/**
 * C0 and C1 control characters, DEL, the Unicode line/paragraph separators and the bidirectional
 * overrides: what lets a value forge a log line, move the cursor, clear an operator's terminal or
 * reorder what they read.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** `text` with every unsafe character written as an escape (`\n`, `\x1b`, `\u202e`), so one log line stays one line of plain text. */
export function escapeControl(text: string): string {
  return text.replace(UNSAFE, (c) => NAMED[c] ?? (c.charCodeAt(0) < 0x100 ? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}` : `\\u${c.charCodeAt(0).toString(16)}`));
}

/** `text` without those characters (for values stored and shown again, such as an upload's filename). */
export function stripControl(text: string): string {
  return text.replace(UNSAFE, '');
}

/** The event with its text fields escaped (events on the channel may come from any publisher). */
export function escapeLogEvent(e: LogEvent): LogEvent {
  return {
    time: escapeControl(e.time),
    service: escapeControl(e.service),
    host: escapeControl(e.host),
    level: e.level,
    msg: escapeControl(e.msg),
    ...(e.job !== undefined ? { job: escapeControl(e.job) } : {}),
  };
}

const LEVEL_NAMES: Record<number, Level> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

/** The lab's log-list line: `<host>.<service>.<level>:<message>`. */
export function labLogLine(event: LogEvent): string {
  const e = escapeLogEvent(event);
  return `${e.host}.${e.service}.${e.level}:${e.job ? `[${e.job.slice(0, 12)}] ` : ''}${e.msg}`;
}

/** The logs service's line for an event, escaped: nothing a publisher sends reaches the terminal raw. */
export function formatLogEvent(event: LogEvent): string {
  const e = escapeLogEvent(event);
  const job = e.job ? ` job=${e.job}` : '';
  return `${e.time} ${e.service.padEnd(6)} ${e.host} ${e.level.toUpperCase().padEnd(5)} ${e.msg}${job}`;
}

export function parseLogEvent(raw: string): LogEvent | null {
  try {
    const v = JSON.parse(raw) as Partial<LogEvent>;
    if (typeof v.msg !== 'string' || typeof v.service !== 'string') return null;
    return {
      time: typeof v.time === 'string' ? v.time : new Date().toISOString(),
      service: v.service,
      host: typeof v.host === 'string' ? v.host : 'unknown',
      level: typeof v.level === 'string' && (Object.values(LEVEL_NAMES) as string[]).includes(v.level) ? v.level : 'info',
      msg: v.msg,
      ...(typeof v.job === 'string' ? { job: v.job } : {}),
    };
  } catch {
    return null;
  }
}

/**
 * A pino destination that republishes application events (not per-request access logs) to Redis:
 * PUBLISH on the `logging` channel and LPUSH onto the capped `logging` list. Publishing never
 * blocks or fails the caller; while Redis is down events only reach stdout.
 */
class RedisLogStream extends Writable {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly service: string,
    private readonly listMax: number,
  ) {
    super();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    done();
    if (this.redis.status !== 'ready') return;
    let rec: { level?: number; msg?: string; time?: number; job?: string; req?: unknown; hostname?: string };
    try {
      rec = JSON.parse(chunk.toString('utf8'));
    } catch {
      return;
    }
    if (rec.req !== undefined || typeof rec.msg !== 'string') return;
    const event = escapeLogEvent({
      time: new Date(rec.time ?? Date.now()).toISOString(),
      service: this.service,
      host: rec.hostname ?? os.hostname(),
      level: LEVEL_NAMES[rec.level ?? 30] ?? 'info',
      msg: rec.msg,
      ...(typeof rec.job === 'string' ? { job: rec.job } : {}),
    });
    this.redis
      .multi()
      .publish(this.keys.loggingChannel, JSON.stringify(event))
      .lpush(this.keys.logging, labLogLine(event))
      .ltrim(this.keys.logging, 0, this.listMax - 1)
      .exec()
      .catch(() => undefined);
  }
}

export interface LoggerOptions {
  service: string;
  level: string;
  redis?: Redis;
  keys?: Keys;
  listMax?: number;
  /** Where JSON lines go besides Redis (default stdout). */
  stdout?: NodeJS.WritableStream;
}

export function createLogger(opts: LoggerOptions): Logger {
  const streams: { stream: NodeJS.WritableStream; level: Level }[] = [{ stream: opts.stdout ?? process.stdout, level: 'trace' }];
  if (opts.redis && opts.keys) {
    streams.push({ stream: new RedisLogStream(opts.redis, opts.keys, opts.service, opts.listMax ?? 1000), level: 'info' });
  }
  return pino(
    {
      level: opts.level,
      base: { service: opts.service, hostname: os.hostname() },
      // Messages are escaped where they are made, so no sink (stdout, the channel, the lab's list,
      // a terminal tailing any of them) ever sees a raw control character from a user's value.
      hooks: {
        logMethod(args, method) {
          method.apply(this, args.map((a) => (typeof a === 'string' ? escapeControl(a) : a)) as Parameters<typeof method>);
        },
      },
    },
    multistream(streams),
  );
}
