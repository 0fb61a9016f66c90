import { Router } from 'express';
import type { AppDeps } from '../deps.ts';
import { apiError, badRequest, notFound } from '../errors.ts';
import { claimedOr404 } from '../job-view.ts';
import { tenantOf } from '../auth.ts';
import { songhashParam } from '../params.ts';

/** `:seq` of a piece: its 0-based index, as a decimal number (at most 5 digits, as its object name). */
export function pieceSeqParam(value: unknown): number {
  const raw = typeof value === 'string' ? value : '';
  if (!/^\d{1,5}$/.test(raw)) throw badRequest('bad_seq', 'seq must be a piece number: 0 to 99999');
  return Number(raw);
}

/**
 * `GET /apiv1/jobs/:songhash/pieces/:seq`: one progressive piece as the worker stored it — raw
 * float32 little-endian, planar, the four model stems in order drums, bass, other, vocals, each its
 * left then its right channel (frames = bytes / 32, 44.1 kHz). Same tenancy as the job view
 * (another tenant's song: 404). A piece the job record does not list yet is 404 `not_ready`; one
 * the cleanup removed after the job ended is 404 `not_found` (the finished stems replace them). A
 * piece never changes once listed (a retried run writes the same samples), so it may be cached.
 */
export function piecesRouter(deps: AppDeps): Router {
  const { queue, store } = deps;
  const router = Router();

  router.get('/apiv1/jobs/:songhash/pieces/:seq', async (req, res) => {
    const hash = songhashParam(req.params.songhash);
    const seq = pieceSeqParam(req.params.seq);
    const { job } = await claimedOr404(queue, hash, tenantOf(res).id, `no job for ${hash}`);
    const listed = job.pieceEnds.length;
    if (seq >= listed) {
      const running = job.state === 'queued' || job.state === 'processing';
      if (running) throw apiError('not_ready', `piece ${seq} of ${hash} is not final yet (${listed} piece${listed === 1 ? ' is' : 's are'}); the job's events announce each new one`);
      throw notFound(`${hash} has no piece ${seq} (${listed} piece${listed === 1 ? '' : 's'})`);
    }
    const info = await store.statPiece(hash, seq);
    if (!info) throw notFound(`piece ${seq} of ${hash} is no longer stored: the job ended and its finished stems replace the pieces`);
    res.set({
      'Content-Type': 'application/octet-stream',
      'Content-Length': String(info.size),
      ETag: `"${info.etag}"`,
      'Cache-Control': 'private, max-age=31536000, immutable',
    });
    if (req.method === 'HEAD') return void res.end();
    const stream = await store.getPiece(hash, seq);
    stream.on('error', () => res.destroy());
    res.on('close', () => stream.destroy());
    stream.pipe(res);
  });

  return router;
}
