import { Router, type Request, type Response } from 'express';
import { IMPLICIT_TENANT, contentTypeOf } from '@msaas/common';
import type { AppDeps } from '../deps.ts';
import { apiError, notFound } from '../errors.ts';
import { songhashParam } from '../params.ts';
import { hasExtension, refuseComing, stemAccess } from '../servable.ts';
import { stemFileParam } from '../stem-param.ts';
import { tenantOf } from '../auth.ts';
import { contentDisposition, downloadName, songFilename } from '../download-name.ts';

export function trackRouter(deps: AppDeps): Router {
  const { store, queue, logger } = deps;
  const router = Router();

  router.get('/apiv1/track/:songhash/:track', async (req, res) => {
    const hash = songhashParam(req.params.songhash);
    const { stem: track, ext } = stemFileParam(req.params.track);
    const missing = `no ${track} stem for ${hash} (not separated yet, or removed)`;
    const access = await stemAccess(deps, tenantOf(res), hash, missing);
    if (access.kind === 'claim' && !access.visible.includes(track)) throw notFound(missing);
    if (!hasExtension(access, ext)) {
      refuseComing(access, ext);
      const stored = access.kind === 'claim' ? access.formats.join(', ') : 'mp3';
      throw notFound(`no .${ext} stems for ${hash}: they are stored as ${stored}; submit the song again with format ${ext} for a run that makes them`);
    }
    const info = await store.statStem(hash, track, ext);
    if (!info) throw notFound(missing);
    res.set({
      'Content-Type': contentTypeOf(ext),
      'Accept-Ranges': 'bytes',
      ETag: `"${info.etag}"`,
      'Last-Modified': info.lastModified.toUTCString(),
      'Content-Disposition': contentDisposition('inline', downloadName(await songFilename(queue, hash, tenantOf(res).id), hash, track, ext)),
      'Cache-Control': 'private, max-age=3600',
    });
    const ranges = req.headers.range ? req.range(info.size, { combine: true }) : undefined;
    if (ranges === -1) {
      res.set('Content-Range', `bytes */${info.size}`);
      throw apiError('range_not_satisfiable', `requested range is outside the ${info.size}-byte file`);
    }
    if (Array.isArray(ranges) && ranges.length === 1 && ranges.type === 'bytes') {
      const { start, end } = ranges[0]!;
      res.status(206).set({ 'Content-Range': `bytes ${start}-${end}/${info.size}`, 'Content-Length': String(end - start + 1) });
      if (req.method === 'HEAD') return void res.end();
      return pipe(await store.getStem(hash, track, { start, end }, ext), res);
    }
    res.set('Content-Length', String(info.size));
    if (req.method === 'HEAD') return void res.end();
    pipe(await store.getStem(hash, track, undefined, ext), res);
  });

  const remove = async (req: Request, res: Response): Promise<void> => {
    const hash = songhashParam(req.params.songhash);
    // A stem is removed in every format it is stored in (the extension, if given, is ignored).
    const { stem: track } = stemFileParam(req.params.track);
    const tenant = tenantOf(res);
    const missing = `no ${track} stem for ${hash}`;
    const outcome = await queue.removeStem(hash, tenant.id, track);
    // The object goes with the last claim that sees it; the implicit tenant may also remove a stem no record lists.
    if (outcome === 'absent' && (tenant.id !== IMPLICIT_TENANT.id || (await queue.getClaim(hash, tenant.id)))) throw notFound(missing);
    if (outcome !== 'hidden' && !(await store.removeStem(hash, track)) && outcome === 'absent') throw notFound(missing);
    logger.info({ job: hash, tenant: tenant.id }, `stem ${track} removed${outcome === 'hidden' ? ' from this claim (others keep it)' : ''}`);
    res.json({ hash, track, removed: true, reason: 'Track removed' });
  };
  router.get('/apiv1/remove/:songhash/:track', remove);
  router.delete('/apiv1/remove/:songhash/:track', remove);
  router.delete('/apiv1/track/:songhash/:track', remove);
  return router;
}

function pipe(stream: NodeJS.ReadableStream & { destroy(err?: Error): void }, res: Response): void {
  stream.on('error', () => res.destroy());
  res.on('close', () => stream.destroy());
  stream.pipe(res);
}
