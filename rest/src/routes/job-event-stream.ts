import { Router, type Response } from 'express';
import type { AppDeps } from '../deps.ts';
import { claimedOr404 } from '../job-view.ts';
import { tenantOf } from '../auth.ts';
import { clientKeyOf } from '../client-address.ts';
import { JobFeed } from '../job-feed.ts';
import { StreamSlots, tooManyStreams } from '../stream-limits.ts';
import { songhashParam } from '../params.ts';

const PING_MS = 15_000;
/** EventSource waits this long before it reconnects (after a lifetime's end, a network error). */
const RETRY_MS = 2000;

function startStream(res: Response): void {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
  });
}

/**
 * `GET /apiv1/jobs/:songhash/events`: the job's state as server-sent events — the current state at
 * once, then every change — until it ends, the song is gone, or the stream reaches its lifetime
 * (EventSource then reconnects and gets the current state again). Open streams are capped per
 * client and per process (stream-limits.ts); every job event is read once for all of them (job-feed.ts).
 */
export function eventsRouter(deps: AppDeps): Router {
  const { queue, events, config } = deps;
  const limits = { perClient: config.STREAMS_PER_CLIENT, perProcess: config.STREAMS_PER_PROCESS, lifetimeMs: config.STREAM_MAX_LIFETIME_SEC * 1000 };
  const slots = new StreamSlots(limits);
  const feed = new JobFeed(queue, events);
  const router = Router();

  router.get('/apiv1/jobs/:songhash/events', async (req, res) => {
    const hash = songhashParam(req.params.songhash);
    const tenant = tenantOf(res).id;
    const notFound = `no job for ${hash}`;
    if (req.method === 'HEAD') {
      // Headers only, and no slot: no body will ever follow, so do not hold the socket.
      await claimedOr404(queue, hash, tenant, notFound);
      startStream(res);
      return void res.end();
    }

    const authenticated = res.locals.authenticated === true;
    const admission = slots.admit(authenticated ? `tenant:${tenant}` : `address:${clientKeyOf(req, res)}`);
    if (!admission.ok) throw tooManyStreams(admission, limits, authenticated, 'event streams');
    const { slot } = admission;
    res.once('close', slot.release); // whatever ends it: the client leaving, the lifetime, the last state, shutdown
    try {
      await claimedOr404(queue, hash, tenant, notFound);
    } catch (err) {
      slot.release();
      throw err;
    }
    if (res.destroyed) return void slot.release(); // the client left while we looked

    startStream(res);
    res.write(`retry: ${RETRY_MS}\n\n`);
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      unwatch();
      clearInterval(ping);
      clearTimeout(lifetime);
      slot.release();
      res.end();
    };
    const unwatch = feed.watch(hash, {
      tenant,
      send: (frame, last) => {
        if (ended) return;
        res.write(frame);
        if (last) end();
      },
      close: end,
    });
    const ping = setInterval(() => res.write(': ping\n\n'), PING_MS);
    const lifetime = setTimeout(end, slot.lifetimeMs);
    res.once('close', end);
  });

  return router;
}
