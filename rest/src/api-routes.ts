/**
 * Every route rest serves, declared once: method, path, parameters, query, body, what it answers
 * (status → shape, from the zod schemas of common/src/contract.ts) and the error codes it may give
 * (from the error table, common/src/errors.ts). The OpenAPI document (api-document.ts) is generated
 * from this list, the strict-query check (strict-params.ts) reads its query schemas, and
 * rest/test/openapi.test.ts walks the Express router and fails for a route missing here (or listed
 * here and not mounted): a route cannot exist undocumented.
 *
 * Adding a route: its router file, one entry here (and its schemas in contract.ts if it answers JSON).
 */
import { z } from 'zod';
import {
  DeleteSongResponseSchema, ErrorBodySchema, HealthResponseSchema, InfoResponseSchema, LibraryQuerySchema, LibraryResponseSchema,
  MixQuerySchema, NoQuerySchema, NotReadyResponseSchema, QueueResponseSchema, ReadyResponseSchema, RemoveStemResponseSchema,
  SeparateJsonSchema, SeparateMultipartSchema, SonghashSchema, STEMS, SubmitResponseSchema, JobViewSchema, ClusterStatusSchema,
  ZipQuerySchema, EXTENSIONS, IdempotencyKeySchema, SeparateUploadJsonSchema, SeparateUrlJsonSchema, CreateUploadRequestSchema, DirectUploadResponseSchema,
  type ErrorCode,
} from '@msaas/common';

export type Method = 'get' | 'post' | 'delete';

/** A response body: JSON of a schema, or another media type described in words (audio, zip, events). */
export type Body =
  | { json: z.ZodType }
  | { media: Record<string, { description?: string; schema?: Record<string, unknown> }> };

export interface ResponseSpec {
  description: string;
  body?: Body;
  headers?: Record<string, string>;
}

export interface RouteSpec {
  method: Method;
  /** Express syntax (`/apiv1/jobs/:songhash`). */
  path: string;
  summary: string;
  description?: string;
  tag: 'lab' | 'songs' | 'audio' | 'service' | 'page';
  params?: Record<string, z.ZodType>;
  /** The query it takes (strict: any other parameter is 400 `unknown_field`). Absent: none. */
  query?: z.ZodObject;
  /** Request headers it reads. */
  headers?: Record<string, { description: string; schema?: z.ZodType }>;
  /** Each media type's schema; several: any one of them (`oneOf`). */
  requestBody?: { description: string; required?: boolean; content: Record<string, z.ZodType | z.ZodType[]> };
  responses: Record<number, ResponseSpec>;
  /** The error codes of this route's own checks (the ones every /apiv1 route may give are added: API_WIDE_ERRORS). */
  errors: ErrorCode[];
  /** Served by a middleware rather than a router route (the page's files): not in the route walk. */
  middleware?: boolean;
}

const songhash = { songhash: SonghashSchema };
const trackFile = z
  .string()
  .regex(new RegExp(`^(${[...STEMS, 'base'].join('|')})(\\.(${EXTENSIONS.join('|')}))?$`))
  .meta({ description: 'a stem, optionally with an extension: `vocals`, `vocals.mp3`, `drums.flac` (the lab\'s `base` is bass; no extension: .mp3)', example: 'vocals.mp3' });
const liveFile = z
  .string()
  .regex(new RegExp(`^(${STEMS.join('|')})\\.mp3$`))
  .meta({ description: '`<stem>.mp3`', example: 'vocals.mp3' });
const seq = z.string().regex(/^\d{1,5}$/).meta({ description: 'the piece\'s 0-based number', example: '0' });

const json = (schema: z.ZodType, description: string): ResponseSpec => ({ description, body: { json: schema } });
const audio = (description: string, types: string[] = ['audio/mpeg', 'audio/wav', 'audio/flac']): Body => ({
  media: Object.fromEntries(types.map((t) => [t, { description, schema: { type: 'string', format: 'binary' } }])),
});
const retryAfter = { 'Retry-After': 'seconds to wait before retrying' };
const songErrors: ErrorCode[] = ['bad_hash', 'not_found'];
const idempotencyKey = {
  'Idempotency-Key': {
    description: 'a repeat with the same key and the same request within IDEMPOTENCY_TTL_SEC (24 h) answers the first response again (with `Idempotent-Replayed: true`); keys are scoped per tenant',
    schema: IdempotencyKeySchema,
  },
};
const idempotencyErrors: ErrorCode[] = ['bad_idempotency_key', 'idempotency_key_reused', 'idempotency_in_progress'];

/** Codes any /apiv1 route may answer, whatever it does: access, limits, the body guard, the backing services. */
export const API_WIDE_ERRORS: ErrorCode[] = ['bad_request', 'unknown_field', 'unauthorized', 'rate_limited', 'unsupported_encoding', 'unavailable', 'storage_full'];
/** Also for routes that take no body (a body over a few bytes is refused) and for state changes (the cross-site guard). */
export const NO_BODY_ERRORS: ErrorCode[] = ['payload_too_large'];
export const STATE_CHANGE_ERRORS: ErrorCode[] = ['cross_site'];

export const ROUTES: RouteSpec[] = [
  // ---- the lab's routes ----
  {
    method: 'post',
    path: '/apiv1/separate',
    tag: 'lab',
    summary: 'Submit a song for separation',
    description:
      'The audio one way: JSON `{"mp3": "<base64>"}` (the lab\'s request, up to JSON_UPLOAD_MAX_MB), JSON `{"upload": "<id>"}` (a direct upload, POST /apiv1/uploads), ' +
      'JSON `{"url": "https://…"}` (fetched by the service), or multipart/form-data with the file in the field `file` (streamed to the store, up to MAX_UPLOAD_MB); ' +
      'each with the optional `callback`, `model`, `format`, `stems`. The same bytes are one job whoever sends them: the answer says whether it was enqueued, ' +
      'is already queued, or is already separated. Unknown body fields are a 400 `unknown_field` naming the known ones.',
    headers: idempotencyKey,
    requestBody: {
      description: 'the audio and what to make of it',
      content: { 'application/json': [SeparateJsonSchema, SeparateUploadJsonSchema, SeparateUrlJsonSchema], 'multipart/form-data': SeparateMultipartSchema },
    },
    responses: { 200: json(SubmitResponseSchema, 'the submission\'s result and the job as the caller sees it') },
    errors: [
      'bad_request', 'unknown_field', 'bad_json', 'bad_multipart', 'aborted', 'missing_file', 'bad_base64', 'bad_callback', 'bad_model', 'bad_format', 'bad_stems', 'empty',
      'unsupported_format', 'not_mp3', 'corrupt', 'too_long', 'bad_url', 'url_fetch_failed', 'not_found', 'upload_missing', 'upload_used', 'upload_expired',
      ...idempotencyErrors, 'cross_site', 'payload_too_large', 'quota_exceeded', 'too_many_uploads',
    ],
  },
  {
    method: 'post',
    path: '/apiv1/uploads',
    tag: 'songs',
    summary: 'A direct upload: a presigned URL to PUT one file to the object store',
    description:
      'PUT the file\'s bytes to `url` before `expiresAt`, then submit it with POST /apiv1/separate `{"upload": id}`. The body is optional (`{"filename"}`). ' +
      'Counts against the submission rate like a submit.',
    headers: idempotencyKey,
    requestBody: { description: 'optional: the file\'s name for the library', required: false, content: { 'application/json': CreateUploadRequestSchema } },
    responses: { 201: json(DirectUploadResponseSchema, 'where and until when to PUT the file') },
    errors: ['bad_request', 'unknown_field', 'bad_json', 'aborted', ...idempotencyErrors, 'cross_site', 'payload_too_large'],
  },
  {
    method: 'get',
    path: '/apiv1/queue',
    tag: 'lab',
    summary: 'The caller\'s waiting songs, in run order',
    description: 'With keys off: every waiting song, as in the lab. Accepts the lab client\'s 4-byte body `null`.',
    responses: { 200: json(QueueResponseSchema, 'songhashes, next first') },
    errors: [],
  },
  {
    method: 'get',
    path: '/apiv1/track/:songhash/:track',
    tag: 'lab',
    summary: 'Download a stem',
    description: 'Streamed, with `Range` (206). 404 `not_ready` while the song\'s job is still queued or processing.',
    params: { ...songhash, track: trackFile },
    headers: { Range: { description: 'one byte range, e.g. `bytes=0-99`' } },
    responses: {
      200: { description: 'the stem', body: audio('the stem file') },
      206: { description: 'the byte range asked for', body: audio('part of the stem file') },
    },
    errors: ['bad_hash', 'bad_track', 'not_found', 'not_ready', 'range_not_satisfiable'],
  },
  ...(['get', 'delete'] as const).map(
    (method): RouteSpec => ({
      method,
      path: '/apiv1/remove/:songhash/:track',
      tag: 'lab',
      summary: `Remove a stem (the lab\'s ${method.toUpperCase()})`,
      description: 'The stem in every format it is stored in; for this caller only when others claim the song too.',
      params: { ...songhash, track: trackFile },
      responses: { 200: json(RemoveStemResponseSchema, 'removed') },
      errors: ['bad_hash', 'bad_track', 'not_found', 'cross_site'],
    }),
  ),
  // ---- songs ----
  {
    method: 'delete',
    path: '/apiv1/track/:songhash/:track',
    tag: 'songs',
    summary: 'Remove a stem',
    params: { ...songhash, track: trackFile },
    responses: { 200: json(RemoveStemResponseSchema, 'removed') },
    errors: ['bad_hash', 'bad_track', 'not_found', 'cross_site'],
  },
  {
    method: 'get',
    path: '/apiv1/jobs',
    tag: 'songs',
    summary: 'The caller\'s songs (library), newest first',
    query: LibraryQuerySchema,
    responses: { 200: json(LibraryResponseSchema, 'one page; `next` is the cursor of the following page') },
    errors: ['bad_limit', 'bad_cursor'],
  },
  {
    method: 'get',
    path: '/apiv1/jobs/:songhash',
    tag: 'songs',
    summary: 'A job: state, progress, stems, error',
    params: songhash,
    responses: { 200: json(JobViewSchema, 'the job as the caller sees it') },
    errors: songErrors,
  },
  {
    method: 'delete',
    path: '/apiv1/jobs/:songhash',
    tag: 'songs',
    summary: 'Remove the caller\'s song (cancel it while it is queued or running)',
    description:
      'The caller\'s claim goes; the record, upload and stems leave the store with the last tenant\'s claim. A queued or running song no one else claims is cancelled: ' +
      'a worker running it stops within a second or two and takes other work.',
    params: songhash,
    responses: { 200: json(DeleteSongResponseSchema, 'removed') },
    errors: [...songErrors, 'cross_site'],
  },
  {
    method: 'get',
    path: '/apiv1/jobs/:songhash/events',
    tag: 'songs',
    summary: 'The job\'s progress as Server-Sent Events',
    description:
      'An `event: job` whose `data` is the job JSON (the `Job` schema) at once and on every change (at least once per chunk while it runs); ' +
      'the stream closes after `done` or `failed`, when the song is deleted, or at STREAM_MAX_LIFETIME_SEC (EventSource then reconnects). Comment lines (`: ping`) keep it open.',
    params: songhash,
    responses: {
      200: {
        description: 'a text/event-stream that stays open',
        body: { media: { 'text/event-stream': { description: 'frames `event: job\\ndata: <Job JSON>\\n\\n`', schema: { type: 'string' } } } },
      },
    },
    errors: [...songErrors, 'too_many_streams'],
  },
  {
    method: 'get',
    path: '/apiv1/jobs/:songhash/live/:file',
    tag: 'audio',
    summary: 'A stem as a live MP3 stream while the job runs',
    description:
      'Chunked `audio/mpeg` (Transfer-Encoding: chunked, no Content-Length while the job runs): what is final at once, then each piece as it becomes final, ending at the song\'s end. ' +
      'Ends abruptly (the chunked body unterminated) if the job fails or the song is deleted. For a done job: the finished stem.',
    params: { ...songhash, file: liveFile },
    responses: { 200: { description: 'the stem as it is made', body: audio('an MP3 stream, chunked', ['audio/mpeg']) } },
    errors: ['bad_hash', 'bad_track', 'not_found', 'job_failed', 'too_many_streams'],
  },
  {
    method: 'get',
    path: '/apiv1/jobs/:songhash/pieces/:seq',
    tag: 'audio',
    summary: 'One progressive piece (raw float32)',
    description: 'Raw float32 little-endian, planar: drums, bass, other, vocals, each left then right, 44.1 kHz (frames = bytes / 32). Immutable once listed.',
    params: { ...songhash, seq },
    responses: { 200: { description: 'the piece', body: { media: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } } } },
    errors: ['bad_hash', 'bad_seq', 'not_found', 'not_ready'],
  },
  {
    method: 'get',
    path: '/apiv1/jobs/:songhash/zip',
    tag: 'audio',
    summary: 'The stems as one zip',
    params: songhash,
    query: ZipQuerySchema,
    responses: { 200: { description: 'a zip of the stored stems', body: { media: { 'application/zip': { schema: { type: 'string', format: 'binary' } } } } } },
    errors: ['bad_hash', 'bad_format', 'not_found', 'not_ready'],
  },
  {
    method: 'get',
    path: '/apiv1/jobs/:songhash/mix',
    tag: 'audio',
    summary: 'A custom mix of the song\'s stems',
    description: 'The stems the song has (the four model stems, or e.g. vocals + instrumental: a karaoke pair) summed with the gains given (0..2, default 1; a gain for a stem the song lacks is ignored), as a download in `format` (default mp3).',
    params: songhash,
    query: MixQuerySchema,
    responses: { 200: { description: 'the mix', body: audio('the mix') } },
    errors: ['bad_hash', 'bad_gain', 'bad_format', 'not_found', 'not_ready', 'too_many_mixes'],
  },
  // ---- the service ----
  {
    method: 'get',
    path: '/apiv1/info',
    tag: 'service',
    summary: 'Limits, stems, formats, the model and its weights\' terms',
    responses: { 200: json(InfoResponseSchema, 'what this service takes and makes') },
    errors: [],
  },
  {
    method: 'get',
    path: '/apiv1/cluster',
    tag: 'service',
    summary: 'Worker replicas and queue length',
    description: 'From the Kubernetes API in a cluster; `inCluster: false` elsewhere. Problems are reported in `error`, never as a failure.',
    responses: { 200: json(ClusterStatusSchema, 'the cluster as rest sees it') },
    errors: [],
  },
  {
    method: 'get',
    path: '/healthz',
    tag: 'service',
    summary: 'Liveness',
    responses: { 200: json(HealthResponseSchema, 'the process is alive') },
    errors: [],
  },
  {
    method: 'get',
    path: '/readyz',
    tag: 'service',
    summary: 'Readiness: Redis and the object store answer',
    description: 'Served on ADMIN_PORT instead when that is set.',
    responses: { 200: json(ReadyResponseSchema, 'ready'), 503: { description: '`not_ready`: a check failed (named in `detail` and `checks`)', body: { json: NotReadyResponseSchema } } },
    errors: [],
  },
  {
    method: 'get',
    path: '/metrics',
    tag: 'service',
    summary: 'Prometheus metrics',
    description: 'Served on ADMIN_PORT instead when that is set.',
    responses: { 200: { description: 'the text exposition format', body: { media: { 'text/plain': { schema: { type: 'string' } } } } } },
    errors: [],
  },
  {
    method: 'get',
    path: '/openapi.json',
    tag: 'service',
    summary: 'This document (OpenAPI 3.1)',
    responses: { 200: { description: 'the API document', body: { media: { 'application/json': { schema: { type: 'object' } } } } } },
    errors: [],
  },
  {
    method: 'get',
    path: '/docs',
    tag: 'service',
    summary: 'The API reference as a page (this document rendered, with the error table)',
    responses: { 200: { description: 'an HTML page', body: { media: { 'text/html': { schema: { type: 'string' } } } } } },
    errors: [],
  },
  {
    method: 'get',
    path: '/docs.css',
    tag: 'service',
    summary: 'The reference page\'s stylesheet',
    responses: { 200: { description: 'CSS', body: { media: { 'text/css': { schema: { type: 'string' } } } } } },
    errors: [],
  },
  // ---- the page ----
  {
    method: 'get',
    path: '/',
    tag: 'page',
    summary: 'The web page (200 for the load balancer\'s probe)',
    responses: { 200: { description: 'the page', body: { media: { 'text/html': { schema: { type: 'string' } } } } } },
    errors: [],
    middleware: true,
  },
  {
    method: 'get',
    path: '/vendor/signalsmith-stretch.mjs',
    tag: 'page',
    summary: 'The page\'s time-stretch library (an ES module)',
    responses: { 200: { description: 'JavaScript', body: { media: { 'text/javascript': { schema: { type: 'string' } } } } } },
    errors: [],
  },
];

/** The codes a route may answer: its own and those of every /apiv1 route (plus the no-body and state-change guards where they apply). */
export function errorsOf(route: RouteSpec): ErrorCode[] {
  if (!route.path.startsWith('/apiv1/')) return [...route.errors];
  const wide = [...API_WIDE_ERRORS, ...(route.requestBody ? [] : NO_BODY_ERRORS), ...(route.method === 'get' ? [] : STATE_CHANGE_ERRORS)];
  return [...new Set([...route.errors, ...wide])];
}

/** The error body every 4xx/5xx carries. */
export const ERROR_BODY = ErrorBodySchema;
export { retryAfter as RETRY_AFTER_HEADER };
