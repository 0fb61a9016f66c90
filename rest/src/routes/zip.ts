import { Router } from 'express';
import { Zip, ZipPassThrough } from 'fflate';
import { stemKey } from '@msaas/common';
import type { AppDeps } from '../deps.ts';
import { notFound } from '../errors.ts';
import { tenantOf } from '../auth.ts';
import { songhashParam } from '../params.ts';
import { contentDisposition, downloadName, songFilename } from '../downloadName.ts';
import { stemAccess, storedStems } from '../servable.ts';

/** `GET /apiv1/jobs/:songhash/zip`: the song's stored stems as one zip, streamed. */
export function zipRouter(deps: AppDeps): Router {
  const { store } = deps;
  const router = Router();

  router.get('/apiv1/jobs/:songhash/zip', async (req, res) => {
    const hash = songhashParam(req.params.songhash);
    const missing = `no stems for ${hash}`;
    const present = await storedStems(deps, hash, await stemAccess(deps, tenantOf(res), hash, missing));
    if (present.length === 0) throw notFound(missing);
    const songName = await songFilename(deps.queue, hash, tenantOf(res).id);
    res.set({ 'Content-Type': 'application/zip', 'Content-Disposition': contentDisposition('attachment', downloadName(songName, hash, 'stems', 'zip')) });
    const zip = new Zip((err, chunk, final) => {
      if (err) return void res.destroy(err);
      res.write(chunk);
      if (final) res.end();
    });
    for (const t of present) {
      const entry = new ZipPassThrough(downloadName(songName, hash, t, stemKey(hash, t).split('.').pop() ?? 'mp3'));
      zip.add(entry);
      for await (const chunk of await store.getStem(hash, t)) entry.push(chunk as Uint8Array);
      entry.push(new Uint8Array(0), true);
    }
    zip.end();
  });

  return router;
}
