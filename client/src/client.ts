/**
 * `@msaas/client`: the typed client of the HTTP API (README.md beside this folder), used by the
 * sample scripts, the tests and the benchmarks. It needs only what Node 20 and browsers both have
 * (fetch, FormData, Blob, AbortSignal, TextDecoder): no Node module and no runtime dependency; its
 * types are inferred from the server's contract (types.ts). Node-only conveniences (stems to disk,
 * the env) are in scripts/api-client.ts.
 */
import type {
  Callback, DeleteSongResponse, ErrorBody, ErrorCode, HealthResponse, InfoResponse, JobView, LibraryResponse, ModelName, OutputFormat, QueueResponse,
  ReadyResponse, RemoveStemResponse, Stem, SubmitResponse, Track,
} from './types.ts';
import type { DirectUploadResponse, Extension } from '@msaas/common';

/** The file extension of each output format (checked against the server's table: a new format fails to compile here until added). */
const EXTENSION: { [F in OutputFormat]: Extension } = { mp3: 'mp3', 'mp3-320': 'mp3', wav: 'wav', flac: 'flac' };

/** Where a stem is served: `/apiv1/track/<songhash>/<stem>.<ext>`. */
export const stemPath = (hash: string, stem: Stem, format: OutputFormat = 'mp3'): string => `/apiv1/track/${hash}/${stem}.${EXTENSION[format]}`;

/**
 * A 4xx/5xx answer, from its `{error, detail}` body: `error` a code of the server's error table
 * (ErrorCode). A body that is not JSON gives `error: "http_<status>"`.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly error: ErrorCode | `http_${number}`,
    readonly detail: string,
  ) {
    super(`HTTP ${status} ${error}: ${detail}`);
    this.name = 'ApiError';
  }
}

export interface ClientOptions {
  /** Where rest answers, e.g. `http://localhost:5000`. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <key>`. */
  apiKey?: string;
  /** Default limit of each request, in ms (none when absent). The event stream of `follow` is exempt. */
  timeoutMs?: number;
  /**
   * Sees every answer before the client reads it (logging, metrics, contract checks in tests). It
   * must not consume `response`'s body (use `response.clone()`); a throw fails the call.
   */
  onResponse?: (seen: { method: string; path: string; response: Response }) => void | Promise<void>;
}

/** Per call: a signal to abort it, and/or a limit in ms instead of the client's default. */
export interface CallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface SubmitOptions extends CallOptions {
  /** `Idempotency-Key`: a repeat with the same key and request within 24 h answers the first response again. */
  idempotencyKey?: string;
  callback?: Callback;
  model?: ModelName;
  /** The stems' format (default mp3). */
  format?: OutputFormat;
  /** Which stems to store (default the four model stems), e.g. `['vocals', 'instrumental']`. */
  stems?: Stem[];
}

export interface UploadOptions extends SubmitOptions {
  /** The file name the job records (default `upload.mp3`). */
  filename?: string;
}

export interface StemOptions extends CallOptions {
  /** The stored format to fetch (default mp3): `.wav` or `.flac` instead of `.mp3`. */
  format?: OutputFormat;
  /** Bytes `start`..`end` (inclusive; to the end of the file without `end`): a 206 answer. */
  range?: { start: number; end?: number };
}

export interface RemoveStemOptions extends CallOptions {
  /** Use the lab's `GET /apiv1/remove/:h/:t` instead of `DELETE /apiv1/track/:h/:t`. */
  lab?: boolean;
}

export interface FollowOptions {
  /** Called with the first view of the job and whenever its state, position or progress (to the percent) changes. */
  onChange?: (job: JobView) => void;
  /** Stop as soon as this holds, if before a terminal state (default: stop at `done` or `failed` only). */
  until?: (job: JobView) => boolean;
  /** Poll `GET /apiv1/jobs/:h` (default; sees queue positions change) or read its event stream. */
  via?: 'poll' | 'events';
  /** Polling period in ms (default 500). */
  intervalMs?: number;
  /** Give up after this many ms in all. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** A downloaded stem or zip. */
export interface Download {
  bytes: Uint8Array;
  contentType: string | null;
  /** `bytes <start>-<end>/<size>` for a range. */
  contentRange: string | null;
}

export const isTerminal = (job: Pick<JobView, 'state'>): boolean => job.state === 'done' || job.state === 'failed';

/** Node's Buffer, where there is one: typed here so that this file needs no Node types. */
const NodeBuffer = (globalThis as { Buffer?: { from(b: ArrayBufferLike, offset: number, length: number): { toString(encoding: 'base64'): string } } }).Buffer;

/** Base64 of the bytes: with Buffer where there is one (20× faster), else btoa. */
export function toBase64(bytes: Uint8Array): string {
  if (NodeBuffer) return NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The `event:`/`data:` blocks of a text/event-stream body. */
async function* serverSentEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<{ event: string; data: string }> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = 'message';
        const data: string[] = [];
        for (const line of block.split('\n')) {
          const colon = line.indexOf(':');
          if (colon === 0) continue; // a comment (the server's pings)
          const field = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'event') event = value;
          else if (field === 'data') data.push(value);
        }
        if (data.length) yield { event, data: data.join('\n') };
      }
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

async function apiError(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => '');
  if (/^application\/json/.test(res.headers.get('content-type') ?? '')) {
    try {
      const body = JSON.parse(text) as Partial<ErrorBody>;
      if (typeof body.error === 'string') return new ApiError(res.status, body.error as ErrorCode, typeof body.detail === 'string' ? body.detail : '');
    } catch {
      // not the promised JSON: reported as below
    }
  }
  return new ApiError(res.status, `http_${res.status}`, text.slice(0, 200));
}

/** A Blob of the bytes (without a copy when they are on an ordinary ArrayBuffer). */
function mp3Blob(mp3: Uint8Array | Blob): Blob {
  if (mp3 instanceof Blob) return mp3;
  const bytes = mp3.buffer instanceof ArrayBuffer ? (mp3 as Uint8Array<ArrayBuffer>) : new Uint8Array(mp3);
  return new Blob([bytes], { type: 'audio/mpeg' });
}

export class ApiClient {
  readonly baseUrl: string;

  constructor(private readonly options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
  }

  /**
   * One request; a non-2xx answer throws ApiError. Network failures and timeouts throw as fetch
   * does. `timeoutMs: undefined` given explicitly means no limit.
   */
  async request(path: string, init: RequestInit & CallOptions = {}): Promise<Response> {
    const { signal, timeoutMs: callTimeoutMs, ...rest } = init;
    const timeoutMs = 'timeoutMs' in init ? callTimeoutMs : this.options.timeoutMs;
    const signals = [signal, timeoutMs === undefined ? undefined : AbortSignal.timeout(timeoutMs)].filter((s): s is AbortSignal => s !== undefined);
    const headers = new Headers(rest.headers);
    if (this.options.apiKey) headers.set('Authorization', `Bearer ${this.options.apiKey}`);
    const res = await fetch(`${this.baseUrl}${path}`, { ...rest, headers, ...(signals.length ? { signal: AbortSignal.any(signals) } : {}) });
    if (this.options.onResponse) await this.options.onResponse({ method: rest.method ?? 'GET', path, response: res });
    if (!res.ok) throw await apiError(res);
    return res;
  }

  private async json<T>(path: string, init?: RequestInit & CallOptions): Promise<T> {
    return (await (await this.request(path, init)).json()) as T;
  }

  private async download(path: string, opts: StemOptions = {}): Promise<Download> {
    const { range, ...call } = opts;
    const headers: Record<string, string> = range ? { Range: `bytes=${range.start}-${range.end ?? ''}` } : {};
    const res = await this.request(path, { ...call, headers });
    return { bytes: new Uint8Array(await res.arrayBuffer()), contentType: res.headers.get('content-type'), contentRange: res.headers.get('content-range') };
  }

  /** `POST /apiv1/separate` as JSON with these members (and the options' fields). */
  private submitJson(members: Record<string, unknown>, opts: SubmitOptions): Promise<SubmitResponse> {
    const { callback, model, format, stems, idempotencyKey, ...call } = opts;
    const body = JSON.stringify({ ...members, ...(callback ? { callback } : {}), ...(model ? { model } : {}), ...(format ? { format } : {}), ...(stems ? { stems } : {}) });
    const headers: Record<string, string> = { 'Content-Type': 'application/json', ...(idempotencyKey ? { 'Idempotency-Key': idempotencyKey } : {}) };
    return this.json('/apiv1/separate', { ...call, method: 'POST', headers, body });
  }

  /** `POST /apiv1/separate` with the lab's JSON: the audio in base64 (`mp3`, whatever its format), optionally a callback. */
  submit(mp3: Uint8Array, opts: SubmitOptions = {}): Promise<SubmitResponse> {
    return this.submitJson({ mp3: toBase64(mp3) }, opts);
  }

  /** `POST /apiv1/separate {"url"}`: a file the service fetches (public addresses only). */
  submitUrl(url: string, opts: SubmitOptions = {}): Promise<SubmitResponse> {
    return this.submitJson({ url }, opts);
  }

  /** `POST /apiv1/separate {"upload"}`: a direct upload made with `createUpload` and `putUpload`. */
  submitUpload(id: string, opts: SubmitOptions = {}): Promise<SubmitResponse> {
    return this.submitJson({ upload: id }, opts);
  }

  /** `POST /apiv1/uploads`: a presigned URL to PUT one file to the object store directly. */
  createUpload(opts: CallOptions & { filename?: string; idempotencyKey?: string } = {}): Promise<DirectUploadResponse> {
    const { filename, idempotencyKey, ...call } = opts;
    const headers: Record<string, string> = { 'Content-Type': 'application/json', ...(idempotencyKey ? { 'Idempotency-Key': idempotencyKey } : {}) };
    return this.json('/apiv1/uploads', { ...call, method: 'POST', headers, body: JSON.stringify(filename ? { filename } : {}) });
  }

  /** PUTs the file to a direct upload's URL (the object store, not rest: no API key is sent). */
  async putUpload(upload: Pick<DirectUploadResponse, 'url' | 'method' | 'headers'>, file: Uint8Array | Blob, call: CallOptions = {}): Promise<void> {
    const signals = [call.signal, call.timeoutMs === undefined ? undefined : AbortSignal.timeout(call.timeoutMs)].filter((s): s is AbortSignal => s !== undefined);
    const res = await fetch(upload.url, { method: upload.method, headers: upload.headers, body: mp3Blob(file), ...(signals.length ? { signal: AbortSignal.any(signals) } : {}) });
    if (!res.ok) throw new ApiError(res.status, `http_${res.status}`, (await res.text().catch(() => '')).slice(0, 200));
  }

  /** A file by direct upload: `createUpload`, `putUpload`, `submitUpload`. */
  async uploadDirect(file: Uint8Array | Blob, opts: UploadOptions = {}): Promise<SubmitResponse> {
    const { filename, signal, timeoutMs, ...submit } = opts;
    const call = { ...(signal ? { signal } : {}), ...(timeoutMs !== undefined ? { timeoutMs } : {}) };
    const upload = await this.createUpload({ ...call, ...(filename ? { filename } : {}) });
    await this.putUpload(upload, file, call);
    return this.submitUpload(upload.id, { ...call, ...submit });
  }

  /** The job's views as its event stream (`GET /apiv1/jobs/:h/events`, Server-Sent Events) sends them, until the stream ends. */
  async *events(hash: string, call: { signal?: AbortSignal } = {}): AsyncGenerator<JobView> {
    const res = await this.request(`/apiv1/jobs/${hash}/events`, { headers: { Accept: 'text/event-stream' }, timeoutMs: undefined, ...(call.signal ? { signal: call.signal } : {}) });
    for await (const { event, data } of serverSentEvents(res.body!)) {
      if (event === 'job') yield JSON.parse(data) as JobView;
    }
  }

  /** `POST /apiv1/separate` as a multipart upload: field `file`, optionally `callback` (JSON) and `model`. */
  upload(mp3: Uint8Array | Blob, opts: UploadOptions = {}): Promise<SubmitResponse> {
    const { callback, model, format, stems, idempotencyKey, filename = 'upload.mp3', ...call } = opts;
    const form = new FormData();
    form.append('file', mp3Blob(mp3), filename);
    if (callback) form.append('callback', JSON.stringify(callback));
    if (model) form.append('model', model);
    if (format) form.append('format', format);
    if (stems) form.append('stems', stems.join(','));
    return this.json('/apiv1/separate', { ...call, method: 'POST', body: form, ...(idempotencyKey ? { headers: { 'Idempotency-Key': idempotencyKey } } : {}) });
  }

  /** `GET /apiv1/jobs?limit=&cursor=`: one page of the caller's songs, newest first (pass `next` as `cursor` for the following page). */
  library(opts: CallOptions & { limit?: number; cursor?: string } = {}): Promise<LibraryResponse> {
    const { limit, cursor, ...call } = opts;
    const query = new URLSearchParams({ ...(limit !== undefined ? { limit: String(limit) } : {}), ...(cursor ? { cursor } : {}) }).toString();
    return this.json(`/apiv1/jobs${query ? `?${query}` : ''}`, call);
  }

  /** `GET /apiv1/jobs/:h` */
  job(hash: string, call?: CallOptions): Promise<JobView> {
    return this.json(`/apiv1/jobs/${hash}`, call);
  }

  /**
   * The job until it is done or failed (or `until` holds): the last view. A job removed meanwhile
   * throws the 404 ApiError; a timeout throws an Error saying how long it waited.
   */
  async follow(hash: string, opts: FollowOptions = {}): Promise<JobView> {
    const deadline = opts.timeoutMs === undefined ? undefined : AbortSignal.timeout(opts.timeoutMs);
    const signals = [opts.signal, deadline].filter((s): s is AbortSignal => s !== undefined);
    const signal = signals.length ? AbortSignal.any(signals) : undefined;
    let last = '';
    /** Reports a view; true when following ends with it. */
    const seen = (job: JobView): boolean => {
      const key = `${job.state}:${job.progress.toFixed(2)}:${job.position}`;
      if (key !== last) opts.onChange?.(job);
      last = key;
      return isTerminal(job) || (opts.until?.(job) ?? false);
    };
    try {
      for (;;) {
        if (opts.via === 'events') {
          const res = await this.request(`/apiv1/jobs/${hash}/events`, { headers: { Accept: 'text/event-stream' }, timeoutMs: undefined, ...(signal ? { signal } : {}) });
          for await (const { event, data } of serverSentEvents(res.body!)) {
            if (event === 'gone') break;
            if (event !== 'job') continue;
            const job = JSON.parse(data) as JobView;
            if (seen(job)) return job;
          }
          // The stream ended early (the song removed, rest shutting down): the job as it is now, or its 404.
        }
        const job = await this.job(hash, signal ? { signal } : {});
        if (seen(job)) return job;
        await pause(opts.intervalMs ?? 500, signal);
      }
    } catch (err) {
      if (deadline?.aborted && !opts.signal?.aborted) throw new Error(`gave up following ${hash} after ${opts.timeoutMs! / 1000} s`, { cause: err });
      throw err;
    }
  }

  /** `GET /apiv1/queue` */
  queue(call?: CallOptions): Promise<QueueResponse> {
    return this.json('/apiv1/queue', call);
  }

  /** `GET /apiv1/info` */
  info(call?: CallOptions): Promise<InfoResponse> {
    return this.json('/apiv1/info', call);
  }

  /** `GET /apiv1/track/:h/:t.mp3` */
  stem(hash: string, track: Stem, opts: StemOptions = {}): Promise<Download> {
    const { format, ...rest } = opts;
    return this.download(stemPath(hash, track, format), rest);
  }

  /** `GET /apiv1/jobs/:h/zip`: every stem there is (of one format: default the song's first). */
  zip(hash: string, call: CallOptions & { format?: OutputFormat } = {}): Promise<Download> {
    const { format, ...rest } = call;
    return this.download(`/apiv1/jobs/${hash}/zip${format ? `?format=${format}` : ''}`, rest);
  }

  /** `GET /apiv1/jobs/:h/mix?drums=&bass=&other=&vocals=&format=`: the model stems summed with gains 0..2 (default 1). */
  mix(hash: string, gains: Partial<Record<Track, number>>, opts: CallOptions & { format?: OutputFormat } = {}): Promise<Download> {
    const { format, ...call } = opts;
    const query = new URLSearchParams({ ...Object.fromEntries(Object.entries(gains).map(([t, g]) => [t, String(g)])), ...(format ? { format } : {}) }).toString();
    return this.download(`/apiv1/jobs/${hash}/mix${query ? `?${query}` : ''}`, call);
  }

  /** `DELETE /apiv1/jobs/:h`: the caller's song (its job, upload and stems with the last claim). */
  deleteSong(hash: string, call?: CallOptions): Promise<DeleteSongResponse> {
    return this.json(`/apiv1/jobs/${hash}`, { ...call, method: 'DELETE' });
  }

  /** Cancel: `DELETE /apiv1/jobs/:h` on a queued or running song (the work stops when no one else claims it). */
  cancel(hash: string, call?: CallOptions): Promise<DeleteSongResponse> {
    return this.deleteSong(hash, call);
  }

  /** `DELETE /apiv1/track/:h/:t`, or the lab's `GET /apiv1/remove/:h/:t`. */
  removeStem(hash: string, track: Stem, opts: RemoveStemOptions = {}): Promise<RemoveStemResponse> {
    const { lab, ...call } = opts;
    return lab ? this.json(`/apiv1/remove/${hash}/${track}`, call) : this.json(`/apiv1/track/${hash}/${track}`, { ...call, method: 'DELETE' });
  }

  /** `GET /healthz`: the process is alive. */
  health(call?: CallOptions): Promise<HealthResponse> {
    return this.json('/healthz', call);
  }

  /** `GET /readyz`: Redis and the object store answer; a 503 ApiError (`not_ready`) when not. */
  ready(call?: CallOptions): Promise<ReadyResponse> {
    return this.json('/readyz', call);
  }
}
