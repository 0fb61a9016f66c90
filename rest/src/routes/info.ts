import { Router } from 'express';
import { AUDIO_FORMAT_NAMES, DEFAULT_MODEL, DEFAULT_OUTPUT_FORMAT, DEFAULT_STEMS, OUTPUT_FORMAT_VIEWS, OUTPUT_FORMATS, STEMS, TRACKS, modelTerms, type AudioFormat, type InfoResponse } from '@msaas/common';
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
      defaultFormat: DEFAULT_OUTPUT_FORMAT,
      formats: OUTPUT_FORMAT_VIEWS,
      defaultStems: DEFAULT_STEMS,
      model: DEFAULT_MODEL,
      weights: modelTerms(config.MODEL_PATH),
      authRequired: Boolean(config.API_KEYS || config.API_KEYS_FILE),
    };
    res.json(body);
  });
  return router;
}
