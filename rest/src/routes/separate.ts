import express, { Router, type Request, type Response } from 'express';
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
  AudioInputError,
  songhash,
  incomingKey,
  type Callback,
  type EnqueueInput,
  type OutputRequest,
  type SubmitResponse,
  type SubmitResult,
  SUBMIT_FIELDS,
  SEPARATE_JSON_FIELDS,
} from '@msaas/common';
import { randomUUID } from 'node:crypto';
import { outputReason, parseOutputRequest } from '../output-request.ts';
import type { AppDeps } from '../deps.ts';
import { apiError, badRequest, type ApiError } from '../errors.ts';
import { jobView } from '../job-view.ts';
import { rateLimit, tenantOf } from '../auth.ts';
import { callbackAtSubmit, callbackPolicy } from '../submit-callback.ts';
import { base64Member, jsonBodyReader } from '../json-body.ts';
import { uploadSlots } from '../upload-slots.ts';
import { refuseUnknownFields } from '../strict-params.ts';
import { answeredBefore, idempotency } from '../idempotency.ts';
import { IngestStorage, type Staged, type StagedFile } from '../ingest/multipart.ts';
import { audioRefusal, ingest, overSize, type IngestLimits } from '../ingest/ingest.ts';
import { closeWithoutReading } from '../body-guard.ts';

/** Room a multipart body takes besides its file: at most 8 fields of 64 KiB (multer's limits) and the framing. */
const MULTIPART_OVERHEAD_BYTES = 1024 * 1024;
import { wholeSeconds } from '../ingest/probe.ts';
import { fetchUrl, urlFetchPolicy, type UrlFetchPolicy } from '../ingest/fetch-url.ts';
import type { DirectUploads } from '../ingest/direct-uploads.ts';

const options = {
  callback: CallbackSchema.nullish(),
  model: z.string().optional(),
  format: z.unknown().optional(),
  stems: z.unknown().optional(),
};
/** The lab's body: the audio as base64 in `mp3`. */
const JsonBody = z.object({ mp3: z.string({ error: 'mp3 must be a base64 string' }), ...options });
/** A direct upload PUT to the store before (POST /apiv1/uploads). */
const UploadBody = z.object({ upload: z.string({ error: 'upload must be the id POST /apiv1/uploads answered' }).min(1).max(64), ...options });
/** A file the service fetches. */
const UrlBody = z.object({ url: z.string({ error: 'url must be an http(s) URL' }).min(1).max(2048), ...options });
const SOURCES = ['mp3', 'upload', 'url'] as const;

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

/** Where the audio is: in memory (the lab's base64), staged in the store (multipart), a direct upload, or a URL to fetch. */
type Source = { kind: 'bytes'; bytes: Buffer } | { kind: 'staged'; staged: Staged } | { kind: 'upload'; id: string } | { kind: 'url'; url: string };

interface Submission {
  source: Source;
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

/** Shown again in the page and in log lines: no control or bidi characters kept. */
const cleanName = (name: string | null | undefined): string | null => stripControl(name ?? '').trim().slice(0, 200) || null;

function parseJson<T extends z.ZodTypeAny>(schema: T, body: unknown): z.infer<T> {
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const aboutCallback = parsed.error.issues.every((i) => i.path[0] === 'callback');
    throw badRequest(aboutCallback ? 'bad_callback' : 'bad_request', zodDetail(parsed.error));
  }
  return parsed.data as z.infer<T>;
}

function readSubmission(req: Request, jsonMaxBytes: number): Submission {
  const file = req.file as StagedFile | undefined;
  if (file) {
    const body = (req.body ?? {}) as Record<string, unknown>;
    refuseUnknownFields(Object.keys(body), SUBMIT_FIELDS, 'multipart field of POST /apiv1/separate (the file goes in "file")');
    return {
      source: { kind: 'staged', staged: file.staged },
      callback: parseCallbackField(body.callback),
      model: typeof body.model === 'string' && body.model ? body.model : DEFAULT_MODEL,
      filename: cleanName(file.originalname),
      output: parseOutputRequest(body.format, body.stems),
    };
  }
  if (req.is('multipart/form-data')) throw badRequest('missing_file', 'multipart upload needs a file in the field "file"');
  if (req.body === undefined || req.body === null || typeof req.body !== 'object' || Array.isArray(req.body)) {
    throw badRequest('bad_request', 'send JSON {"mp3": "<base64>", "callback": {"url", "data"}}, {"upload": "<id>"} or {"url": "https://…"}, or a multipart upload with field "file"');
  }
  const body = req.body as Record<string, unknown>;
  refuseUnknownFields(Object.keys(body), SEPARATE_JSON_FIELDS, 'field of POST /apiv1/separate');
  const given = SOURCES.filter((k) => body[k] !== undefined);
  if (given.length > 1) throw badRequest('bad_request', `send the audio one way: ${given.join(' and ')} were both given (one of mp3, upload, url)`);
  if (given[0] === 'upload') {
    const data = parseJson(UploadBody, body);
    return { source: { kind: 'upload', id: data.upload }, callback: data.callback ?? null, model: data.model ?? DEFAULT_MODEL, filename: null, output: parseOutputRequest(data.format, data.stems) };
  }
  if (given[0] === 'url') {
    const data = parseJson(UrlBody, body);
    return { source: { kind: 'url', url: data.url }, callback: data.callback ?? null, model: data.model ?? DEFAULT_MODEL, filename: null, output: parseOutputRequest(data.format, data.stems) };
  }
  const data = parseJson(JsonBody, body);
  const bytes = decodeBase64(req, data.mp3);
  if (bytes.length > jsonMaxBytes) {
    throw apiError('payload_too_large', `the MP3 is ${(bytes.length / 2 ** 20).toFixed(1)} MB; the limit is ${jsonMaxBytes / 2 ** 20} MB for a base64 JSON body (JSON_UPLOAD_MAX_MB; a multipart upload, a direct upload or a URL takes up to MAX_UPLOAD_MB)`);
  }
  const output = parseOutputRequest(data.format, data.stems);
  return { source: { kind: 'bytes', bytes }, callback: data.callback ?? null, model: data.model ?? DEFAULT_MODEL, filename: null, output };
}

/** The song as the submit needs it: its songhash, size and length, and where its bytes are until stored under the songhash. */
interface Song {
  hash: string;
  size: number;
  audioSec: number;
  /** In memory: the lab's base64 body, or a streamed upload that never filled a store part (≤ 5 MiB). */
  bytes: Buffer | null;
  /** Staged in the queue bucket (incoming/… or direct/…), moved to the songhash's key when the song needs a run, else removed. */
  stagedKey: string | null;
  filename: string | null;
}

async function submitResponse(deps: AppDeps, hash: string, tenant: string, result: SubmitResult, reason: string = SUBMIT_REASONS[result]): Promise<SubmitResponse> {
  const claimed = await deps.queue.getClaimedJob(hash, tenant);
  return { hash, result, reason, job: claimed ? await jobView(deps.queue, claimed) : null };
}

const RETRY_ACTIVE_SEC = 30;

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

/** Reads a stored or fetched song through `ingest` into a Song (the bytes are hashed and probed as they pass). */
async function songFromStream(source: AsyncIterable<Uint8Array>, limits: IngestLimits, stage: { key: string; write: boolean }, deps: AppDeps, filename: string | null): Promise<Song> {
  const sink = stage.write ? deps.store.streamUpload(stage.key) : null;
  const got = await ingest(source, limits, sink);
  return { hash: got.hash, size: got.size, audioSec: got.audioSec, bytes: got.held, stagedKey: got.held ? null : stage.key, filename };
}

/** The lab's base64 body, whole in memory: sniffed and probed as before. */
function songFromBytes(bytes: Buffer, maxDurationSec: number): Song {
  if (bytes.length === 0) throw badRequest('empty', 'the uploaded file is empty');
  const sniffed = sniffAudioFormat(bytes);
  if (sniffed.format === null) throw badRequest('unsupported_format', unsupportedFormatError(sniffed.found).message);
  let audioSec: number;
  try {
    audioSec = wholeSeconds(bytes, sniffed.format);
  } catch (err) {
    if (err instanceof AudioInputError) throw audioRefusal(err);
    throw err;
  }
  if (audioSec > maxDurationSec) throw badRequest('too_long', `the song is ${Math.round(audioSec)} s long; the limit is ${maxDurationSec} s (MAX_DURATION_SEC)`);
  return { hash: songhash(bytes), size: bytes.length, audioSec, bytes, stagedKey: null, filename: null };
}

/**
 * POST /apiv1/separate with everything it needs in its router (after the app-wide key, rate,
 * cross-site and encoding checks of app.ts): its submission rate, an upload slot
 * (MAX_CONCURRENT_UPLOADS), the Idempotency-Key reservation, and only then the body — a multipart
 * file streamed to the store (ingest/multipart.ts), or JSON (the lab's base64 within
 * JSON_UPLOAD_MAX_MB, an upload id, a URL). Mounted before refuseUnexpectedBodies (app.ts).
 */
export function separateRouter(deps: AppDeps, directUploads: DirectUploads): Router {
  const { config, queue, store, logger } = deps;
  const maxBytes = Math.floor(config.MAX_UPLOAD_MB * 2 ** 20);
  const jsonMaxBytes = Math.floor(Math.min(config.JSON_UPLOAD_MAX_MB, config.MAX_UPLOAD_MB) * 2 ** 20);
  const policy = callbackPolicy(config, deps.resolveHost);
  const fetchPolicy: UrlFetchPolicy = urlFetchPolicy(config, deps.resolveHost);
  const limits = (what: string): IngestLimits => ({ maxBytes, maxDurationSec: config.MAX_DURATION_SEC, what });
  const upload = multer({
    storage: new IngestStorage(store, { ...limits('the upload'), readToEnd: true }),
    // Browsers send a multipart filename as raw UTF-8 (not as filename*): read it so, not as Latin-1.
    defParamCharset: 'utf8',
    limits: { fileSize: maxBytes, files: 1, fields: 8, fieldSize: 64 * 1024, parts: 10 },
  });
  const submissions = rateLimit(queue.redis, queue.keys, config.SUBMIT_RATE_LIMIT_PER_MIN, { scope: 'submit', what: 'submissions' });
  const slots = uploadSlots(config.MAX_CONCURRENT_UPLOADS);
  const json = jsonBodyReader(Math.ceil(jsonMaxBytes * (4 / 3)) + 64 * 1024, 'mp3');
  const idempotent = idempotency({ redis: queue.redis, prefix: config.REDIS_PREFIX, ttlSec: config.IDEMPOTENCY_TTL_SEC });
  /** The body, read only here and only within an upload slot: multipart through multer into the store, JSON through json-body.ts. */
  const body: express.RequestHandler = (req, res, next) => (req.is('multipart/form-data') ? upload.single('file')(req, res, next) : json(req, res, next));
  /**
   * A multipart body announced over the cap plus room for its fields and framing is refused before
   * any of it is read or stored (multer would store up to the cap, then read off the rest).
   */
  const multipartMax = maxBytes + MULTIPART_OVERHEAD_BYTES;
  const announcedSize: express.RequestHandler = (req, res, next) => {
    const length = Number(req.headers['content-length']);
    if (!req.is('multipart/form-data') || !(length > multipartMax)) return next();
    closeWithoutReading(req, res);
    next(overSize('the upload', maxBytes, length));
  };
  const router = Router();

  /** The song behind a submission, staged in the store (or in memory for the lab's base64). */
  async function songOf(sub: Submission, tenant: string): Promise<Song> {
    const { source } = sub;
    switch (source.kind) {
      case 'bytes':
        return songFromBytes(source.bytes, config.MAX_DURATION_SEC);
      case 'staged':
        return {
          hash: source.staged.hash,
          size: source.staged.size,
          audioSec: source.staged.audioSec,
          bytes: source.staged.held,
          stagedKey: source.staged.held ? null : source.staged.key,
          filename: sub.filename,
        };
      case 'upload': {
        const taken = await directUploads.take(source.id, tenant);
        try {
          return await songFromStream(await store.getStaged(taken.key), limits(`upload ${source.id}`), { key: taken.key, write: false }, deps, cleanName(taken.filename));
        } catch (err) {
          await store.removeStaged(taken.key).catch(() => undefined);
          throw err;
        }
      }
      case 'url': {
        const fetched = await fetchUrl(source.url, fetchPolicy);
        try {
          return await songFromStream(fetched.body, limits('the file at the URL'), { key: incomingKey(randomUUID()), write: true }, deps, cleanName(fetched.filename));
        } catch (err) {
          throw isApiError(err) ? err : fetched.failure(err);
        } finally {
          fetched.close();
          fetched.body.destroy();
        }
      }
    }
  }

  router.post('/apiv1/separate', submissions, announcedSize, slots, idempotent, body, async (req: Request, res: Response) => {
    const staged = (req.file as StagedFile | undefined)?.staged;
    let song: Song | null = null;
    try {
      const sub = readSubmission(req, jsonMaxBytes);
      if (!(MODELS as readonly string[]).includes(sub.model)) throw badRequest('bad_model', `unknown model "${sub.model.slice(0, 40)}"; available: ${MODELS.join(', ')}`);
      const tenant = tenantOf(res);
      // An upload or a URL is read once its Idempotency-Key is known not to be another request's.
      if (sub.source.kind === 'upload' || sub.source.kind === 'url') {
        if (answeredBefore(req, res, { ...identityOf(sub), source: sub.source })) return;
      }
      song = await songOf(sub, tenant.id);
      if (sub.source.kind === 'bytes' || sub.source.kind === 'staged') {
        if (answeredBefore(req, res, { ...identityOf(sub), song: song.hash, size: song.size })) return;
      }
      await submitSong(deps, policy, res, sub, song);
    } finally {
      const key = song ? song.stagedKey : staged && !staged.held ? staged.key : null;
      if (key) await store.removeStaged(key).catch(() => undefined);
    }
  });

  return router;

  async function submitSong(deps: AppDeps, cbPolicy: typeof policy, res: Response, sub: Submission, song: Song): Promise<void> {
    const { hash, audioSec } = song;
    const filename = sub.filename ?? song.filename;
    const tenant = tenantOf(res);
    // Quotas bind named tenants; the implicit tenant (no keys: the lab's service) has none.
    const limited = tenant.id !== IMPLICIT_TENANT.id;
    const quota = {
      maxActive: limited ? config.MAX_ACTIVE_JOBS_PER_KEY : 0,
      maxAudioSecPerDay: limited && config.MAX_AUDIO_MINUTES_PER_DAY ? config.MAX_AUDIO_MINUTES_PER_DAY * 60 : 0,
      audioSec,
    };
    const { callback, callbackStatus } = await callbackAtSubmit(sub.callback, { queue, policy: cbPolicy, hash, tenant: tenant.id, limits: quota, want: sub.output });
    const input: EnqueueInput = {
      hash,
      tenant: tenant.id,
      callback,
      callbackStatus,
      sizeBytes: song.size,
      filename,
      audioSec,
      maxActive: quota.maxActive,
      maxAudioSecPerDay: quota.maxAudioSecPerDay,
      format: sub.output.format,
      stems: sub.output.stems,
    };
    // The upload is stored only when the song needs a run: joining shared work costs no upload.
    let outcome = await queue.submit({ ...input, uploaded: false });
    if (outcome.result === 'upload') {
      if (song.bytes) await store.putUpload(hash, song.bytes, filename ? { 'x-amz-meta-filename': encodeURIComponent(filename) } : {});
      else if (song.stagedKey) {
        await store.promoteUpload(song.stagedKey, hash);
        song.stagedKey = null;
      }
      outcome = await queue.submit({ ...input, uploaded: true });
    }
    const { result } = outcome;
    if (result === 'over_active' || result === 'over_minutes') throw await quotaRefusal(deps, tenant.id, result);
    if (result === 'upload') throw new Error('submit asked for the upload after it was stored');
    if (result === 'enqueued') logger.info({ job: hash, tenant: tenant.id }, `song enqueued (${(song.size / 1024).toFixed(0)} kB${filename ? `, ${filename}` : ''})`);
    res.json(await submitResponse(deps, hash, tenant.id, result, outputReason(outcome, sub.output) ?? SUBMIT_REASONS[result]));
  }
}

/** What identifies a submission besides its audio, for its Idempotency-Key. */
function identityOf(sub: Submission): Record<string, unknown> {
  return { callback: sub.callback, model: sub.model, filename: sub.filename, output: sub.output };
}

function isApiError(err: unknown): err is ApiError {
  return err instanceof Error && err.name === 'ApiError';
}
