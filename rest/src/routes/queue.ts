import { Router } from 'express';
import type { AppDeps } from '../deps.ts';

export function queueRouter({ queue }: AppDeps): Router {
  const router = Router();
  router.get('/apiv1/queue', async (_req, res) => {
    res.json({ queue: await queue.waiting() });
  });
  return router;
}
