import { Router } from 'express';
import { DEFAULT_MODEL, TRACKS } from '@msaas/common';
import type { AppDeps } from '../deps.ts';

export function infoRouter({ config }: AppDeps): Router {
  const router = Router();
  router.get('/apiv1/info', (_req, res) => {
    res.json({ maxUploadMb: config.MAX_UPLOAD_MB, tracks: TRACKS, model: DEFAULT_MODEL, authRequired: Boolean(config.API_KEYS || config.API_KEYS_FILE) });
  });
  return router;
}
