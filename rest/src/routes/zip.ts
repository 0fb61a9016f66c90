import { Router } from 'express';
import { Zip, ZipPassThrough } from 'fflate';
import { extensionOf, isOutputFormat, OUTPUT_FORMATS, type Extension } from '@msaas/common';
import type { AppDeps } from '../deps.ts';
import { badRequest, notFound } from '../errors.ts';
import { tenantOf } from '../auth.ts';
import { songhashParam } from '../params.ts';
import { contentDisposition, downloadName, songFilename } from '../download-name.ts';
import { refuseComing, stemAccess, storedStems } from '../servable.ts';
import { drained } from '../backpressure.ts';

/**
 * `GET /apiv1/jobs/:songhash/zip`: the song's stored stems as one zip, streamed. Each stem is read
 * from the store only as fast as the client takes the zip (the loop waits for `drain`), and a client
 * that goes away stops the reading and releases the store stream: a reader that never reads costs a
 * few socket buffers, not the zip.
 */
export function zipRouter(deps: AppDeps): Router {
  const { store } = deps;
  const router = Router();

  router.get('/apiv1/jobs/:songhash/zip', async (req, res) => {
    const hash = songhashParam(req.params.songhash);
    const missing = `no stems for ${hash}`;
    // `?format=`: the stems of that format (default: the song's first, the lab's mp3).
    const format = req.query.format;
    if (format !== undefined && (typeof format !== 'string' || !isOutputFormat(format))) throw badRequest('bad_format', `format must be one of ${OUTPUT_FORMATS.join(', ')}`);
    const access = await stemAccess(deps, tenantOf(res), hash, missing);
    const ext: Extension = format ? extensionOf(format) : access.kind === 'claim' ? extensionOf(access.formats[0] ?? 'mp3') : 'mp3';
    const present = await storedStems(deps, hash, access, ext);
    if (present.length === 0) refuseComing(access, ext);
    if (present.length === 0) throw notFound(missing);
    const songName = await songFilename(deps.queue, hash, tenantOf(res).id);
    res.set({ 'Content-Type': 'application/zip', 'Content-Disposition': contentDisposition('attachment', downloadName(songName, hash, 'stems', 'zip')) });
    const zip = new Zip((err, chunk, final) => {
      if (err) return void res.destroy(err);
      if (res.destroyed) return;
      res.write(chunk);
      if (final) res.end();
    });
    for (const t of present) {
      if (res.destroyed) return;
      const entry = new ZipPassThrough(downloadName(songName, hash, t, ext));
      zip.add(entry);
      const stem = await store.getStem(hash, t, undefined, ext);
      try {
        for await (const chunk of stem) {
          if (res.destroyed) return;
          entry.push(chunk as Uint8Array);
          if (res.writableNeedDrain && !(await drained(res))) return;
        }
      } finally {
        stem.destroy();
      }
      entry.push(new Uint8Array(0), true);
    }
    zip.end();
  });

  return router;
}
