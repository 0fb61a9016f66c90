import { Router } from 'express';
import { Zip, ZipPassThrough } from 'fflate';
import { IMPLICIT_TENANT, TRACKS, isTerminal, stemKey, type DeleteSongResponse } from '@msaas/common';
import type { AppDeps } from '../deps.ts';
import { notFound } from '../errors.ts';
import { claimedOr404, jobView } from '../jobView.ts';
import { tenantOf } from '../auth.ts';
import { songhashParam } from '../params.ts';
import { stemAccess, storedStems } from '../servable.ts';

export function jobsRouter(deps: AppDeps): Router {
  const { queue, store, events, logger } = deps;
  const router = Router();

  const noJob = (hash: string): string => `no job for ${hash}`;

  router.get('/apiv1/jobs/:songhash', async (req, res) => {
    const hash = songhashParam(req.params.songhash);
    res.json(await jobView(queue, await claimedOr404(queue, hash, tenantOf(res).id, noJob(hash))));
  });

  router.get('/apiv1/jobs/:songhash/events', async (req, res) => {
    const hash = songhashParam(req.params.songhash);
    const tenant = tenantOf(res).id;
    await claimedOr404(queue, hash, tenant, noJob(hash));
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    if (req.method === 'HEAD') return void res.end(); // no body will ever follow: do not hold the socket
    res.write('retry: 2000\n\n');
    let closed = false;
    let sending = Promise.resolve();
    const finish = (): void => {
      if (closed) return;
      closed = true;
      unsubscribe();
      clearInterval(ping);
      res.end();
    };
    const send = (): void => {
      sending = sending.then(async () => {
        if (closed) return;
        try {
          const claimed = await queue.getClaimedJob(hash, tenant);
          if (!claimed) {
            res.write(`event: gone\ndata: ${JSON.stringify({ hash })}\n\n`);
            return finish();
          }
          res.write(`event: job\ndata: ${JSON.stringify(await jobView(queue, claimed))}\n\n`);
          if (isTerminal(claimed.job)) finish();
        } catch {
          // Redis hiccup: keep the stream; the next change or the client's retry catches up.
        }
      });
    };
    const unsubscribe = events.on(hash, send, finish);
    const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
    req.on('close', finish);
    send();
  });

  router.get('/apiv1/jobs/:songhash/zip', async (req, res) => {
    const hash = songhashParam(req.params.songhash);
    const missing = `no stems for ${hash}`;
    const present = await storedStems(deps, hash, await stemAccess(deps, tenantOf(res), hash, missing));
    if (present.length === 0) throw notFound(missing);
    res.set({ 'Content-Type': 'application/zip', 'Content-Disposition': `attachment; filename="${hash}-stems.zip"` });
    const zip = new Zip((err, chunk, final) => {
      if (err) return void res.destroy(err);
      res.write(chunk);
      if (final) res.end();
    });
    for (const t of present) {
      const entry = new ZipPassThrough(stemKey(hash, t));
      zip.add(entry);
      for await (const chunk of await store.getStem(hash, t)) entry.push(chunk as Uint8Array);
      entry.push(new Uint8Array(0), true);
    }
    zip.end();
  });

  /**
   * Deleting removes the caller's claim; the song (record, upload, stems) goes with the last claim.
   * A worker running it meanwhile finds no claim when it finishes and removes what it uploaded.
   * The implicit tenant may also delete objects of a song no record knows (the lab's behaviour).
   */
  router.delete('/apiv1/jobs/:songhash', async (req, res) => {
    const hash = songhashParam(req.params.songhash);
    const tenant = tenantOf(res).id;
    const outcome = await queue.dropClaim(hash, tenant);
    if (outcome === 'absent' && tenant !== IMPLICIT_TENANT.id) throw notFound(`no song ${hash}`);
    let stems = 0;
    if (outcome !== 'kept') {
      const hadUpload = await store.hasUpload(hash);
      for (const t of TRACKS) if (await store.removeStem(hash, t)) stems++;
      if (outcome === 'absent' && !hadUpload && stems === 0) throw notFound(`no song ${hash}`);
      if (hadUpload) await store.removeUpload(hash);
    }
    logger.info({ job: hash, tenant }, outcome === 'kept' ? 'song removed for this tenant (others keep it)' : `song removed (${stems} stems)`);
    const body: DeleteSongResponse = { hash, removed: true, stems };
    res.json(body);
  });

  return router;
}
