import { Router, type Response } from 'express';
import { Zip, ZipPassThrough } from 'fflate';
import { stemKey } from '@msaas/common';
import type { AppDeps } from '../deps.ts';
import { notFound } from '../errors.ts';
import { tenantOf } from '../auth.ts';
import { songhashParam } from '../params.ts';
import { contentDisposition, downloadName, songFilename } from '../downloadName.ts';
import { stemAccess, storedStems } from '../servable.ts';

/** Resolves true once `res` has drained its buffer, false if the client went away first. */
function drained(res: Response): Promise<boolean> {
  if (res.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const settle = (ok: boolean) => (): void => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok);
    };
    const onDrain = settle(true);
    const onClose = settle(false);
    res.once('drain', onDrain);
    res.once('close', onClose);
  });
}

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
    const present = await storedStems(deps, hash, await stemAccess(deps, tenantOf(res), hash, missing));
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
      const entry = new ZipPassThrough(downloadName(songName, hash, t, stemKey(hash, t).split('.').pop() ?? 'mp3'));
      zip.add(entry);
      const stem = await store.getStem(hash, t);
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
