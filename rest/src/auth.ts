import type { RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import { timingSafeEqual, createHash } from 'node:crypto';
import type { Keys } from '@msaas/common';
import { ApiError } from './errors.ts';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

function presentedKey(header: string | undefined, xApiKey: string | undefined): string | null {
  if (xApiKey) return xApiKey.trim();
  const m = header?.match(/^Bearer\s+(.+)$/i);
  return m ? m[1]!.trim() : null;
}

/** When API keys are configured, every /apiv1 route needs one (Bearer or X-API-Key). */
export function requireApiKey(keys: string[]): RequestHandler {
  const digests = keys.map(digest);
  return (req, res, next) => {
    if (digests.length === 0) return next();
    const key = presentedKey(req.get('authorization'), req.get('x-api-key'));
    const d = key ? digest(key) : null;
    if (!d || !digests.some((k) => timingSafeEqual(k, d))) {
      return next(new ApiError(401, 'unauthorized', 'missing or invalid API key (send Authorization: Bearer <key> or X-API-Key)', { 'WWW-Authenticate': 'Bearer' }));
    }
    res.locals.apiKeyId = d.toString('hex').slice(0, 16);
    next();
  };
}

/**
 * Fixed one-minute windows counted in Redis, shared by all rest replicas: per API key when keys
 * are on, per client address otherwise. If Redis is unreachable the limiter lets requests through
 * (the routes that need Redis answer 503 themselves).
 */
export function rateLimit(redis: Redis, keys: Keys, perMinute: number): RequestHandler {
  return async (req, res, next) => {
    const who = (res.locals.apiKeyId as string | undefined) ?? `ip:${req.ip ?? 'unknown'}`;
    const nowSec = Math.floor(Date.now() / 1000);
    const window = Math.floor(nowSec / 60);
    const key = keys.rate(who, window);
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
      const retryAfter = String(60 - (nowSec % 60));
      return next(new ApiError(429, 'rate_limited', `more than ${perMinute} requests per minute; retry in ${retryAfter} s`, { 'Retry-After': retryAfter }));
    }
    next();
  };
}
