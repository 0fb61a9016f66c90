import { Router } from 'express';
import { Zip, ZipPassThrough } from 'fflate';
import { TRACKS, stemKey, type Track } from '@msaas/common';
import type { AppDeps } from '../deps.ts';
import { notFound } from '../errors.ts';
import { isTerminal, jobView } from '../jobView.ts';
import { songhashParam } from '../params.ts';
import { refuseWhileRunning } from '../servable.ts';

export function jobsRouter(deps: AppDeps): Router {
  const { queue, store, events, logger } = deps;
  const router = Router();

  const load = async (hash: string) => {
    const job = await queue.getJob(hash);
    if (!job) throw notFound(`no job for ${hash}`);
    return job;
  };

  router.get('/apiv1/jobs/:songhash', async (req, res) => {
    const job = await load(songhashParam(req.params.songhash));
    res.json(await jobView(queue, job));
  });

  router.get('/apiv1/jobs/:songhash/events', async (req, res) => {
    const hash = songhashParam(req.params.songhash);
    await load(hash);
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
          const job = await queue.getJob(hash);
          if (!job) {
            res.write(`event: gone\ndata: ${JSON.stringify({ hash })}\n\n`);
            return finish();
          }
          res.write(`event: job\ndata: ${JSON.stringify(await jobView(queue, job))}\n\n`);
          if (isTerminal(job)) finish();
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
    await refuseWhileRunning(deps, hash);
    const present: Track[] = [];
    for (const t of TRACKS) if (await store.statStem(hash, t)) present.push(t);
    if (present.length === 0) throw notFound(`no stems for ${hash}`);
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

  router.delete('/apiv1/jobs/:songhash', async (req, res) => {
    const hash = songhashParam(req.params.songhash);
    const job = await queue.getJob(hash);
    const hadUpload = await store.hasUpload(hash);
    let stems = 0;
    for (const t of TRACKS) if (await store.removeStem(hash, t)) stems++;
    if (!job && !hadUpload && stems === 0) throw notFound(`no song ${hash}`);
    if (job?.state === 'processing') {
      // The worker still owns it; its completion finds no record and its stems are removed again here next time.
      logger.warn({ job: hash }, 'song removed while a worker was processing it');
    }
    if (hadUpload) await store.removeUpload(hash);
    await queue.deleteJob(hash);
    logger.info({ job: hash }, `song removed (${stems} stems)`);
    res.json({ hash, removed: true, stems });
  });

  return router;
}
