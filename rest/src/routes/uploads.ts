import express, { Router } from 'express';
import { CreateUploadRequestSchema, stripControl } from '@msaas/common';
import type { AppDeps } from '../deps.ts';
import { badRequest } from '../errors.ts';
import { refuseUnknownFields } from '../strict-params.ts';
import { rateLimit, tenantOf } from '../auth.ts';
import { answeredBefore, idempotency } from '../idempotency.ts';
import type { DirectUploads } from '../ingest/direct-uploads.ts';
export { directUploadsFor } from '../ingest/direct-uploads.ts';

/** The body of POST /apiv1/uploads is a few fields: 4 KiB is plenty. */
const BODY_MAX_BYTES = 4096;

/**
 * POST /apiv1/uploads (issue 24 item 2): a presigned PUT URL into the object store for one file, its
 * expiry and size limit; the file is then submitted with POST /apiv1/separate {"upload": id}. Counts
 * against the submission rate like a submit; takes an Idempotency-Key. The body is optional
 * (`{"filename": …}`).
 */
export function uploadsRouter(deps: AppDeps, directUploads: DirectUploads): Router {
  const { config, queue } = deps;
  const submissions = rateLimit(queue.redis, queue.keys, config.SUBMIT_RATE_LIMIT_PER_MIN, { scope: 'submit', what: 'submissions' });
  const json = express.json({ limit: BODY_MAX_BYTES, strict: false, inflate: false, type: ['application/json', 'application/*+json'] });
  const idempotent = idempotency({ redis: queue.redis, prefix: config.REDIS_PREFIX, ttlSec: config.IDEMPOTENCY_TTL_SEC });
  const router = Router();
  router.post('/apiv1/uploads', submissions, idempotent, json, async (req, res) => {
    const raw: unknown = req.body === undefined || req.body === null ? {} : req.body;
    if (typeof raw === 'object' && !Array.isArray(raw)) refuseUnknownFields(Object.keys(raw as object), Object.keys(CreateUploadRequestSchema.shape), 'field of POST /apiv1/uploads');
    const parsed = CreateUploadRequestSchema.safeParse(raw);
    if (!parsed.success) throw badRequest('bad_request', parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
    if (answeredBefore(req, res, parsed.data)) return;
    const filename = stripControl(parsed.data.filename ?? '').trim().slice(0, 200) || null;
    res.status(201).json(await directUploads.create(tenantOf(res).id, filename));
  });
  return router;
}
