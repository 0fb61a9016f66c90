import express, { Router, type Request } from 'express';
import multer from 'multer';
import { z } from 'zod';
import {
  CallbackSchema,
  DEFAULT_MODEL,
  MODELS,
  SUBMIT_REASONS,
  IMPLICIT_TENANT,
  stripControl,
  sniffAudioFormat,
  unsupportedFormatError,
  probeAudio,
  scanMp3,
  AudioInputError,
  type AudioFormat,
  songhash,
  type Callback,
  type EnqueueInput,
  type OutputRequest,
  type SubmitResponse,
  type SubmitResult,
} from '@msaas/common';
import { outputReason, parseOutputRequest } from '../outputRequest.ts';
import type { AppDeps } from '../deps.ts';
import { apiError, badRequest, type ApiError } from '../errors.ts';
import { jobView } from '../jobView.ts';
import { rateLimit, tenantOf } from '../auth.ts';
import { callbackAtSubmit, callbackPolicy } from '../submitCallback.ts';
import { base64Member, jsonBodyReader } from '../jsonBody.ts';
import { uploadSlots } from '../uploadSlots.ts';

const JsonBody = z.object({
  mp3: z.string({ error: 'mp3 must be a base64 string' }),
  callback: CallbackSchema.nullish(),
  model: z.string().optional(),
  format: z.unknown().optional(),
  stems: z.unknown().optional(),
});

/** The `mp3` member's bytes: decoded from the body buffer itself by jsonBodyReader (rest/src/base64Json.ts), whitespace and a data: URL prefix allowed. */
function decodeBase64(req: Request, text: string): Buffer {
  const value = base64Member(req, text);
  if (value.kind === 'empty') throw badRequest('empty', 'mp3 is empty');
  if (value.kind === 'bad_base64') throw badRequest('bad_base64', 'mp3 is not valid base64');
  return value.bytes;
}

function zodDetail(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.length ? i.path.join('.') : 'body'}: ${i.message}`).join('; ');
}

interface Submission {
  bytes: Buffer;
  callback: Callback | null;
  model: string;
  filename: string | null;
  output: OutputRequest;
}

function parseCallbackField(raw: unknown): Callback | null {
  if (raw === undefined || raw === null || raw === '') return null;
  let value: unknown = raw;
  if (typeof raw === 'string') {
    try {
      value = JSON.parse(raw);
    } catch {
      throw badRequest('bad_callback', 'callback must be a JSON object {"url": ..., "data": ...}');
    }
  }
  const parsed = CallbackSchema.safeParse(value);
  if (!parsed.success) throw badRequest('bad_callback', zodDetail(parsed.error));
  return parsed.data;
}

function readSubmission(req: Request, maxBytes: number): Submission {
  if (req.file) {
    const body = (req.body ?? {}) as Record<string, unknown>;
    return {
      bytes: req.file.buffer,
      callback: parseCallbackField(body.callback),
      model: typeof body.model === 'string' && body.model ? body.model : DEFAULT_MODEL,
      // Shown again in the page and in log lines: no control or bidi characters kept.
      filename: stripControl(req.file.originalname ?? '').trim().slice(0, 200) || null,
      output: parseOutputRequest(body.format, body.stems),
    };
  }
  if (req.is('multipart/form-data')) throw badRequest('missing_file', 'multipart upload needs a file in the field "file"');
  if (req.body === undefined || req.body === null || typeof req.body !== 'object' || Array.isArray(req.body)) {
    throw badRequest('bad_request', 'send JSON {"mp3": "<base64>", "callback": {"url", "data"}} or a multipart upload with field "file"');
  }
  const parsed = JsonBody.safeParse(req.body);
  if (!parsed.success) {
    const aboutCallback = parsed.error.issues.every((i) => i.path[0] === 'callback');
    throw badRequest(aboutCallback ? 'bad_callback' : 'bad_request', zodDetail(parsed.error));
  }
  const bytes = decodeBase64(req, parsed.data.mp3);
  if (bytes.length > maxBytes) throw apiError('payload_too_large', `the MP3 is ${(bytes.length / 2 ** 20).toFixed(1)} MB; the limit is ${maxBytes / 2 ** 20} MB`);
  const output = parseOutputRequest(parsed.data.format, parsed.data.stems);
  return { bytes, callback: parsed.data.callback ?? null, model: parsed.data.model ?? DEFAULT_MODEL, filename: null, output };
}

async function submitResponse(deps: AppDeps, hash: string, tenant: string, result: SubmitResult, reason: string = SUBMIT_REASONS[result]): Promise<SubmitResponse> {
  const claimed = await deps.queue.getClaimedJob(hash, tenant);
  return { hash, result, reason, job: claimed ? await jobView(deps.queue, claimed) : null };
}

const RETRY_ACTIVE_SEC = 30;

/**
 * The audio's length from its container's header (common/src/audio-format.ts), for the duration cap
 * and the minutes quota; a WAV/FLAC/Ogg/M4A whose header is broken, truncated or of another codec is
 * a 400 here, with the parser's sentence. An MP3 the frame scan refuses counts as 0, as it always
 * has: the worker fails it at its first attempt with the scan's reason.
 */
function audioSeconds(bytes: Uint8Array, format: AudioFormat): number {
  try {
    return format === 'mp3' ? scanMp3(bytes).durationSec : (probeAudio(bytes).durationSec ?? 0);
  } catch (err) {
    if (!(err instanceof AudioInputError)) throw err;
    if (format === 'mp3') return 0;
    throw badRequest(err.code, err.message);
  }
}

/** 429 for a quota, naming the limit and when it frees. */
async function quotaRefusal(deps: AppDeps, tenant: string, which: 'over_active' | 'over_minutes'): Promise<ApiError> {
  const { config, queue } = deps;
  if (which === 'over_active') {
    const active = await queue.activeCount(tenant);
    return apiError(
      'quota_exceeded',
      `tenant ${tenant} has ${active} songs queued or processing, the limit of MAX_ACTIVE_JOBS_PER_KEY=${config.MAX_ACTIVE_JOBS_PER_KEY}; a place frees when one of them finishes`,
      { headers: { 'Retry-After': String(RETRY_ACTIVE_SEC) } },
    );
  }
  const used = await queue.usageSec(tenant);
  const untilMidnight = Math.ceil((86_400_000 - (Date.now() % 86_400_000)) / 1000);
  return apiError(
    'quota_exceeded',
    `tenant ${tenant} has submitted ${(used / 60).toFixed(2)} minutes of audio today, and this song would pass the limit of MAX_AUDIO_MINUTES_PER_DAY=${config.MAX_AUDIO_MINUTES_PER_DAY}; the count starts again at 00:00 UTC (in ${untilMidnight} s)`,
    { headers: { 'Retry-After': String(untilMidnight) } },
  );
}

export function separateRouter(deps: AppDeps): Router {
  const { config, queue, store, logger } = deps;
  const maxBytes = Math.floor(config.MAX_UPLOAD_MB * 2 ** 20);
  const policy = callbackPolicy(config, deps.resolveHost);
  const upload = multer({
    storage: multer.memoryStorage(),
    // Browsers send a multipart filename as raw UTF-8 (not as filename*): read it so, not as Latin-1.
    defParamCharset: 'utf8',
    limits: { fileSize: maxBytes, files: 1, fields: 8, fieldSize: 64 * 1024, parts: 10 },
  });
  const submissions = rateLimit(queue.redis, queue.keys, config.SUBMIT_RATE_LIMIT_PER_MIN, { scope: 'submit', what: 'submissions' });
  const slots = uploadSlots(config.MAX_CONCURRENT_UPLOADS);
  const json = jsonBodyParser(config.MAX_UPLOAD_MB);
  /** The body, read only here and only within an upload slot: multipart through multer, JSON through jsonBody.ts. */
  const body: express.RequestHandler = (req, res, next) => (req.is('multipart/form-data') ? upload.single('file')(req, res, next) : json(req, res, next));
  const router = Router();

  // The only /apiv1 route that takes a body: mounted before refuseUnexpectedBodies (app.ts), with its
  // own submission rate, then an upload slot (MAX_CONCURRENT_UPLOADS), and only then the body.
  router.post('/apiv1/separate', submissions, slots, body, async (req, res) => {
    const sub = readSubmission(req, maxBytes);
    if (!(MODELS as readonly string[]).includes(sub.model)) throw badRequest('bad_model', `unknown model "${sub.model.slice(0, 40)}"; available: ${MODELS.join(', ')}`);
    if (sub.bytes.length === 0) throw badRequest('empty', 'the uploaded file is empty');
    const sniffed = sniffAudioFormat(sub.bytes);
    if (sniffed.format === null) throw badRequest('unsupported_format', unsupportedFormatError(sniffed.found).message);
    const audioSec = audioSeconds(sub.bytes, sniffed.format);
    if (audioSec > config.MAX_DURATION_SEC) {
      throw badRequest('too_long', `the song is ${Math.round(audioSec)} s long; the limit is ${config.MAX_DURATION_SEC} s (MAX_DURATION_SEC)`);
    }

    const hash = songhash(sub.bytes);
    const tenant = tenantOf(res);
    // Quotas bind named tenants; the implicit tenant (no keys: the lab's service) has none.
    const limited = tenant.id !== IMPLICIT_TENANT.id;
    const limits = {
      maxActive: limited ? config.MAX_ACTIVE_JOBS_PER_KEY : 0,
      maxAudioSecPerDay: limited && config.MAX_AUDIO_MINUTES_PER_DAY ? config.MAX_AUDIO_MINUTES_PER_DAY * 60 : 0,
      audioSec,
    };
    const { callback, callbackStatus } = await callbackAtSubmit(sub.callback, { queue, policy, hash, tenant: tenant.id, limits, want: sub.output });
    const input: EnqueueInput = {
      hash,
      tenant: tenant.id,
      callback,
      callbackStatus,
      sizeBytes: sub.bytes.length,
      filename: sub.filename,
      audioSec,
      maxActive: limits.maxActive,
      maxAudioSecPerDay: limits.maxAudioSecPerDay,
      format: sub.output.format,
      stems: sub.output.stems,
    };
    // The upload is stored only when the song needs a run: joining shared work costs no upload.
    let outcome = await queue.submit({ ...input, uploaded: false });
    if (outcome.result === 'upload') {
      await store.putUpload(hash, sub.bytes, sub.filename ? { 'x-amz-meta-filename': encodeURIComponent(sub.filename) } : {});
      outcome = await queue.submit({ ...input, uploaded: true });
    }
    const { result } = outcome;
    if (result === 'over_active' || result === 'over_minutes') throw await quotaRefusal(deps, tenant.id, result);
    if (result === 'upload') throw new Error('submit asked for the upload after it was stored');
    if (result === 'enqueued') logger.info({ job: hash, tenant: tenant.id }, `song enqueued (${(sub.bytes.length / 1024).toFixed(0)} kB${sub.filename ? `, ${sub.filename}` : ''})`);
    res.json(await submitResponse(deps, hash, tenant.id, result, outputReason(outcome, sub.output) ?? SUBMIT_REASONS[result]));
  });

  return router;
}

/** JSON bodies: lenient about the lab's `null` body, sized for a base64 MP3 at the upload cap, never inflated; the `mp3` member decoded from the raw body (jsonBody.ts). */
export function jsonBodyParser(maxUploadMb: number): express.RequestHandler {
  const limit = Math.ceil(maxUploadMb * 2 ** 20 * (4 / 3)) + 64 * 1024;
  return jsonBodyReader(limit, 'mp3');
}
