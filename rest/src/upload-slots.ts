import type { RequestHandler } from 'express';
import { apiError } from './errors.ts';

/** Seconds a refused upload is asked to wait: uploads in flight usually finish within that. */
export const UPLOAD_RETRY_AFTER_SEC = 5;

/**
 * A per-process cap on uploads being received at once (`MAX_CONCURRENT_UPLOADS`), each of which
 * may hold up to its upload cap in memory. Mounted before the body parsers: an upload beyond the cap
 * is answered 503 + `Retry-After` before its body is read. A slot is held until the answer is sent
 * or the connection closes, whichever comes first.
 */
export function uploadSlots(max: number): RequestHandler & { inUse(): number } {
  let active = 0;
  const handler: RequestHandler = (_req, res, next) => {
    if (active >= max) {
      return next(
        apiError('too_many_uploads', `this rest replica is already receiving ${active} uploads, the limit of MAX_CONCURRENT_UPLOADS=${max}; retry in a few seconds`,
          { headers: { 'Retry-After': String(UPLOAD_RETRY_AFTER_SEC) } },
        ),
      );
    }
    active++;
    let held = true;
    res.once('close', () => {
      if (held) active--;
      held = false;
    });
    next();
  };
  return Object.assign(handler, { inUse: () => active });
}
