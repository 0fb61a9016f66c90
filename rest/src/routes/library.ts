import { Router } from 'express';
import type { ClaimedJob, LibraryResponse, LibrarySong } from '@msaas/common';
import type { AppDeps } from '../deps.ts';
import { badRequest } from '../errors.ts';
import { tenantOf } from '../auth.ts';
import { claimOutlook } from '../claim-view.ts';

export const LIBRARY_DEFAULT_LIMIT = 20;
export const LIBRARY_MAX_LIMIT = 100;

/** A song of the library as the claim's tenant sees it (its own view of the shared work: claim-view.ts). */
export function librarySong(claimed: ClaimedJob): LibrarySong {
  const { job, claim } = claimed;
  const own = claimOutlook(claimed);
  return {
    hash: job.hash,
    filename: claim.filename,
    state: own.state,
    progress: own.progress,
    audioSec: job.audioSec,
    durationSec: own.run.durationSec,
    claimedAt: claim.createdAt,
    finishedAt: own.run.finishedAt,
    stems: own.visible,
  };
}

/** `limit` (1..100, default 20) and `cursor` (the `next` of the previous page: a claim time in ms) from the query. */
export function libraryQuery(query: Record<string, unknown>): { limit: number; beforeMs?: number } {
  const { limit, cursor } = query;
  let n = LIBRARY_DEFAULT_LIMIT;
  if (limit !== undefined) {
    if (typeof limit !== 'string' || !/^\d{1,4}$/.test(limit) || Number(limit) < 1 || Number(limit) > LIBRARY_MAX_LIMIT) {
      throw badRequest('bad_limit', `limit must be a whole number from 1 to ${LIBRARY_MAX_LIMIT}`);
    }
    n = Number(limit);
  }
  if (cursor === undefined) return { limit: n };
  if (typeof cursor !== 'string' || !/^\d{1,16}$/.test(cursor)) throw badRequest('bad_cursor', 'cursor must be the `next` value of a previous page');
  return { limit: n, beforeMs: Number(cursor) };
}

/**
 * `GET /apiv1/jobs`: the caller's songs (its claims), newest first, a page at a time. Another
 * tenant's songs never show; without keys the implicit tenant sees the songs submitted without one.
 */
export function libraryRouter(deps: AppDeps): Router {
  const { queue } = deps;
  const router = Router();

  router.get('/apiv1/jobs', async (req, res) => {
    const q = libraryQuery(req.query);
    // One more than asked tells whether a next page exists.
    const found = await queue.library(tenantOf(res).id, { ...q, limit: q.limit + 1 });
    const page = found.slice(0, q.limit);
    const last = page.at(-1);
    const lastMs = last ? Date.parse(last.claim.createdAt) : NaN;
    const body: LibraryResponse = {
      songs: page.map(librarySong),
      next: found.length > q.limit && Number.isFinite(lastMs) ? String(lastMs) : null,
    };
    res.set('Cache-Control', 'private, no-store').json(body);
  });

  return router;
}
