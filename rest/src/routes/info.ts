import { Router } from 'express';
import { AUDIO_FORMAT_NAMES, DEFAULT_MODEL, OUTPUT_FORMATS, STEMS, TRACKS, type AudioFormat, type InfoResponse } from '@msaas/common';
import type { AppDeps } from '../deps.ts';

export function infoRouter({ config }: AppDeps): Router {
  const router = Router();
  router.get('/apiv1/info', (_req, res) => {
    const body: InfoResponse = {
      maxUploadMb: config.MAX_UPLOAD_MB,
      tracks: TRACKS,
      stems: STEMS,
      inputFormats: Object.keys(AUDIO_FORMAT_NAMES) as AudioFormat[],
      outputFormats: OUTPUT_FORMATS,
      model: DEFAULT_MODEL,
      authRequired: Boolean(config.API_KEYS || config.API_KEYS_FILE),
    };
    res.json(body);
  });
  return router;
}
