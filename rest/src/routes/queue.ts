import { Router } from 'express';
import { IMPLICIT_TENANT } from '@msaas/common';
import type { AppDeps } from '../deps.ts';
import { tenantOf } from '../auth.ts';

export function queueRouter({ queue }: AppDeps): Router {
  const router = Router();
  /** The caller's waiting songs in run order (with keys off: every song, as in the lab). */
  router.get('/apiv1/queue', async (_req, res) => {
    const tenant = tenantOf(res).id;
    res.json({ queue: await queue.waiting(tenant === IMPLICIT_TENANT.id ? undefined : tenant) });
  });
  return router;
}
