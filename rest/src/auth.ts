import type { RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import type { Response } from 'express';
import { IMPLICIT_TENANT, type Keys, type Tenant, type TenantDirectory } from '@msaas/common';
import { apiError } from './errors.ts';
import { clientKeyOf } from './client-address.ts';

function presentedKey(header: string | undefined, xApiKey: string | undefined): string | null {
  if (xApiKey) return xApiKey.trim();
  const m = header?.match(/^Bearer\s+(.+)$/i);
  return m ? m[1]!.trim() : null;
}

/** The tenant a request acts for (set by `requireApiKey`; the implicit tenant when keys are off). */
export function tenantOf(res: Response): Tenant {
  return (res.locals.tenant as Tenant | undefined) ?? IMPLICIT_TENANT;
}

export interface AuthFailLimit {
  redis: Redis;
  keys: Keys;
  /** Failed key attempts per client address (IPv6: per /64) per minute (AUTH_FAIL_LIMIT_PER_MIN). */
  perMinute: number;
}

const windowOf = (nowSec: number): number => Math.floor(nowSec / 60);
const retryAfterOf = (nowSec: number): string => String(60 - (nowSec % 60));

/**
 * When API keys are configured, every /apiv1 route needs one (Bearer or X-API-Key); the key names
 * the tenant. Failed attempts are counted per client address: once an address has used up its
 * failures for the minute, every request from it is refused with 429 — a right key included, or
 * the difference between 429 and 200 would let guessing go on at full speed. Fail-open when Redis
 * is unreachable, like the rate limit.
 */
export function requireApiKey(tenants: TenantDirectory, failLimit?: AuthFailLimit): RequestHandler {
  return async (req, res, next) => {
    if (!tenants.authRequired) {
      res.locals.tenant = IMPLICIT_TENANT;
      return next();
    }
    const nowSec = Math.floor(Date.now() / 1000);
    const failKey = failLimit ? failLimit.keys.rate(`authfail:${clientKeyOf(req, res)}`, windowOf(nowSec)) : null;
    if (failLimit && failKey && Number(await failLimit.redis.get(failKey).catch(() => 0)) >= failLimit.perMinute) {
      const retryAfter = retryAfterOf(nowSec);
      return next(
        apiError('rate_limited', `${failLimit.perMinute} failed API-key attempts from this address this minute, the limit of AUTH_FAIL_LIMIT_PER_MIN; retry in ${retryAfter} s`, {
          headers: { 'Retry-After': retryAfter },
        }),
      );
    }
    const key = presentedKey(req.get('authorization'), req.get('x-api-key'));
    const tenant = key ? tenants.lookup(key) : null;
    if (!tenant) {
      if (failLimit && failKey) await failLimit.redis.multi().incr(failKey).expire(failKey, 120).exec().catch(() => undefined);
      return next(apiError('unauthorized', 'missing or invalid API key (send Authorization: Bearer <key> or X-API-Key)', { headers: { 'WWW-Authenticate': 'Bearer' } }));
    }
    res.locals.tenant = tenant;
    res.locals.authenticated = true;
    next();
  };
}

/**
 * Fixed one-minute windows counted in Redis, shared by all rest replicas: per API key when keys
 * are on, per client address (client-address.ts: an IPv4 address or an IPv6 /64) otherwise. If Redis
 * is unreachable the limiter lets requests through (the routes that need Redis answer 503 themselves).
 */
export function rateLimit(redis: Redis, keys: Keys, perMinute: number, opts: { scope?: string; what?: string } = {}): RequestHandler {
  const scope = opts.scope ? `${opts.scope}:` : '';
  const what = opts.what ?? 'requests';
  return async (req, res, next) => {
    const who = scope + (res.locals.authenticated ? `t:${tenantOf(res).id}` : `ip:${clientKeyOf(req, res)}`);
    const nowSec = Math.floor(Date.now() / 1000);
    const key = keys.rate(who, windowOf(nowSec));
    let count: number;
    try {
      const reply = await redis.multi().incr(key).expire(key, 120).exec();
      count = Number(reply?.[0]?.[1] ?? 0);
    } catch {
      return next();
    }
    res.set('RateLimit-Limit', String(perMinute));
    res.set('RateLimit-Remaining', String(Math.max(0, perMinute - count)));
    if (count > perMinute) {
      const retryAfter = retryAfterOf(nowSec);
      return next(apiError('rate_limited', `more than ${perMinute} ${what} per minute; retry in ${retryAfter} s`, { headers: { 'Retry-After': retryAfter } }));
    }
    next();
  };
}
