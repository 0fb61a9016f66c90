import { Router } from 'express';
import { isTerminal } from '@msaas/common';
import type { AppDeps } from '../deps.ts';
import { claimedOr404, jobView } from '../jobView.ts';
import { tenantOf } from '../auth.ts';
import { songhashParam } from '../params.ts';

/** `GET /apiv1/jobs/:songhash/events`: the job's state as server-sent events until it ends. */
export function eventsRouter(deps: AppDeps): Router {
  const { queue, events } = deps;
  const router = Router();

  router.get('/apiv1/jobs/:songhash/events', async (req, res) => {
    const hash = songhashParam(req.params.songhash);
    const tenant = tenantOf(res).id;
    await claimedOr404(queue, hash, tenant, `no job for ${hash}`);
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

  return router;
}
