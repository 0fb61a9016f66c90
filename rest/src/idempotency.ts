import { createHash, randomBytes } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import type { Redis } from 'ioredis';
import { IdempotencyKeySchema } from '@msaas/common';
import { apiError, badRequest } from './errors.ts';
import { tenantOf } from './auth.ts';

/**
 * `Idempotency-Key` on POST /apiv1/separate and POST /apiv1/uploads (issue 24 item 4).
 *
 * The key is reserved in Redis before the body is read (`<prefix>idem:<tenant>:<sha256(key)>`, SET NX
 * with a TTL: in flight for PENDING_TTL_SEC, answered for IDEMPOTENCY_TTL_SEC), so two requests with
 * one key never both run: the second waits up to WAIT_MS for the first's answer, then gets 409
 * `idempotency_in_progress` with Retry-After. Once the handler has read the request it states the
 * request's fingerprint (method, path and what identifies the body: the songhash and fields, the
 * upload id, the URL); the first answer is kept with it. A repeat with the same fingerprint gets
 * the kept answer (status and body, header `Idempotent-Replayed: true`); another fingerprint gets
 * 422 `idempotency_key_reused`. Answers a retry could change (409, 422 url_fetch_failed, 429, 5xx)
 * and requests refused before they were read whole (no fingerprint) are not kept: the key is freed
 * for the retry.
 */

const PENDING_TTL_SEC = 900;
const WAIT_MS = 10_000;
const POLL_MS = 100;
const RETRY_AFTER_SEC = 2;
/**
 * Refusals about the request itself, which its repeat would get again: kept and replayed. Others
 * (409 not yet, 422 a URL that did not deliver, 429, 5xx) may go otherwise on a retry: not kept.
 */
const KEPT_REFUSALS = new Set([400, 404, 410, 413]);

interface Pending {
  state: 'pending';
  token: string;
}
interface Answered {
  state: 'done';
  fingerprint: string;
  status: number;
  body: unknown;
}
type Entry = Pending | Answered;

/** The request's own handle on its key (res.locals.idempotency). */
interface Held {
  redisKey: string;
  /** Ours: this request runs and its answer is kept. */
  token: string | null;
  /** A repeat of an answered request: its fingerprint decides between replay and 422. */
  answered: Answered | null;
  fingerprint: string | null;
}

// Sets the answer only while the key is still this request's reservation.
const COMPLETE = `
local key = KEYS[1]
local token = ARGV[1]
local answer = ARGV[2]
local ttl = tonumber(ARGV[3])
local current = redis.call('GET', key)
if not current then return 0 end
local ok, entry = pcall(cjson.decode, current)
if not ok or entry.token ~= token then return 0 end
if answer == '' then redis.call('DEL', key) else redis.call('SET', key, answer, 'EX', ttl) end
return 1
`;

export interface IdempotencyOptions {
  redis: Redis;
  prefix: string;
  ttlSec: number;
}

const HEADER = 'idempotency-key';

const held = (res: Response): Held | undefined => res.locals.idempotency as Held | undefined;

/** The middleware, mounted after the tenant is known and before the body is read. */
export function idempotency(opts: IdempotencyOptions): RequestHandler {
  const { redis, prefix, ttlSec } = opts;
  const finish = (key: string, token: string, answer: Answered | null): Promise<unknown> =>
    redis.eval(COMPLETE, 1, key, token, answer ? JSON.stringify(answer) : '', String(ttlSec)).catch(() => undefined);

  return (req, res, next) => {
    const raw = req.get(HEADER);
    if (raw === undefined) return next();
    const parsed = IdempotencyKeySchema.safeParse(raw);
    if (!parsed.success) return next(badRequest('bad_idempotency_key', 'Idempotency-Key must be 1 to 255 visible ASCII characters'));
    const digest = createHash('sha256').update(parsed.data).digest('hex');
    const redisKey = `${prefix}idem:${tenantOf(res).id}:${digest}`;
    const token = randomBytes(12).toString('hex');

    const reserve = async (): Promise<Held> => {
      const deadline = Date.now() + WAIT_MS;
      for (;;) {
        const pending: Pending = { state: 'pending', token };
        if ((await redis.set(redisKey, JSON.stringify(pending), 'EX', PENDING_TTL_SEC, 'NX')) === 'OK') return { redisKey, token, answered: null, fingerprint: null };
        const current = await redis.get(redisKey);
        const entry = current ? (JSON.parse(current) as Entry) : null;
        if (entry?.state === 'done') return { redisKey, token: null, answered: entry, fingerprint: null };
        if (entry && Date.now() >= deadline) {
          throw apiError('idempotency_in_progress', `a request with this Idempotency-Key is still being answered; retry in ${RETRY_AFTER_SEC} s to get its answer`, {
            headers: { 'Retry-After': String(RETRY_AFTER_SEC) },
          });
        }
        if (entry) await new Promise((r) => setTimeout(r, POLL_MS));
      }
    };

    reserve().then(
      (h) => {
        res.locals.idempotency = h;
        if (h.token) {
          // Keep (or free) the key with whatever this request answers.
          const json = res.json.bind(res);
          let settled = false;
          res.json = (body: unknown) => {
            if (!settled) {
              settled = true;
              const status = res.statusCode;
              const keep = h.fingerprint !== null && (status < 400 || KEPT_REFUSALS.has(status));
              void finish(redisKey, token, keep ? { state: 'done', fingerprint: h.fingerprint!, status, body } : null);
            }
            return json(body);
          };
          res.once('close', () => {
            if (settled) return;
            settled = true;
            void finish(redisKey, token, null);
          });
        }
        next();
      },
      (err: unknown) => next(err),
    );
  };
}

/**
 * Called by the handler once it has read the request, before anything changes: states the
 * request's fingerprint. Returns true when the answer was given here (a replay, or 422 for a key
 * used with another request): the handler stops.
 */
export function answeredBefore(req: Request, res: Response, identity: unknown): boolean {
  const h = held(res);
  if (!h) return false;
  const fingerprint = createHash('sha256').update(JSON.stringify([req.method, req.baseUrl + req.path, identity])).digest('hex');
  h.fingerprint = fingerprint;
  if (!h.answered) return false;
  if (h.answered.fingerprint !== fingerprint) {
    throw apiError('idempotency_key_reused', 'this Idempotency-Key was used for another request within the last 24 hours (another file, upload, URL or fields); use a new key for a new request');
  }
  res.status(h.answered.status).set('Idempotent-Replayed', 'true').json(h.answered.body);
  return true;
}
