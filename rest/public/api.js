// @ts-check
// Talks to the MSaaS REST API and turns its errors into sentences a musician can act on.
// The wire types are the server's own, from common/src (type-only imports: the browser never
// loads those files; `tsc -p rest/tsconfig.page.json` checks this page against them).

/** @typedef {import('../../common/src/tracks.ts').Track} Track */
/** @typedef {import('../../common/src/tracks.ts').Stem} Stem */
/** @typedef {import('../../common/src/formats.ts').OutputFormat} OutputFormat */
/** @typedef {import('../../common/src/formats.ts').OutputFormatView} OutputFormatView */
/** @typedef {import('../../common/src/job.ts').JobView} JobView */
/** @typedef {import('../../common/src/job.ts').JobState} JobState */
/** @typedef {import('../../common/src/api.ts').SubmitResponse} SubmitResponse */
/** @typedef {import('../../common/src/api.ts').SubmitResult} SubmitResult */
/** @typedef {import('../../common/src/api.ts').InfoResponse} InfoResponse */
/** @typedef {import('../../common/src/api.ts').RemoveStemResponse} RemoveStemResponse */
/** @typedef {import('../../common/src/api.ts').DeleteSongResponse} DeleteSongResponse */
/** @typedef {import('../../common/src/api.ts').ErrorBody} ErrorBody */
/** @typedef {import('../../common/src/api.ts').LibraryResponse} LibraryResponse */
/** @typedef {import('../../common/src/api.ts').LibrarySong} LibrarySong */

const KEY_STORAGE = 'msaas.apiKey';

/** @returns {string} */
export function getApiKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) ?? '';
  } catch {
    return '';
  }
}

/** @param {string} key */
export function setApiKey(key) {
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  } catch {
    /* storage disabled: the key lives for this page only */
  }
}

/** @returns {Record<string, string>} */
export function authHeaders() {
  const key = getApiKey();
  return key ? { 'X-API-Key': key } : {};
}

export class ApiError extends Error {
  /**
   * @param {string} message plain-words sentence for the page
   * @param {number} status HTTP status, 0 for a network failure
   * @param {string} code the API's `error` code
   * @param {string} [detail] the API's `detail`
   */
  constructor(message, status, code, detail) {
    super(message);
    this.name = 'ApiError';
    /** @type {number} */
    this.status = status;
    /** @type {string} */
    this.code = code;
    /** @type {string} */
    this.detail = detail ?? '';
  }
}

/** Whether an error says the server does not know the song (or stem) any more. @param {unknown} err */
export const isGone = (err) => err instanceof ApiError && err.status === 404;

/** @param {number} bytes */
export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} kB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/**
 * @typedef {object} ErrorContext
 * @property {number} [fileSize]
 * @property {number} [maxUploadMb]
 * @property {string | null} [retryAfter]
 */

/**
 * The sentence shown for an API error. Codes we know get our own words; anything else
 * falls back to the server's `detail`, which the API promises is a human sentence.
 * @param {number} status
 * @param {Partial<ErrorBody> | null} body
 * @param {ErrorContext} [ctx]
 */
export function describeError(status, body, ctx = {}) {
  const code = body?.error ?? '';
  const detail = body?.detail ?? '';
  if (status === 0) return 'Can’t reach the MSaaS server. Check that it is running and that you are connected, then try again.';
  if (status === 413 || code === 'payload_too_large') {
    const size = ctx.fileSize ? ` (${formatBytes(ctx.fileSize)})` : '';
    const limit = ctx.maxUploadMb ? ` The limit is ${ctx.maxUploadMb} MB.` : '';
    return `That file is too big${size}.${limit} Try a shorter song or an MP3 with a lower bitrate.`;
  }
  if (code === 'unsupported_format' || code === 'not_mp3' || code === 'unsupported_media_type' || status === 415) {
    const found = code === 'unsupported_format' && detail ? ` (${detail.split(';')[0]})` : '';
    return `That file isn’t in a format we take${found}. Choose an MP3, WAV, FLAC, Ogg (Vorbis or Opus) or M4A (AAC) file.`;
  }
  if (status === 401 || code === 'unauthorized') {
    return 'This server needs an API key. Enter it under Settings (top right) and try again.';
  }
  if (status === 403 || code === 'forbidden') return 'That API key isn’t allowed to do this. Check the key under Settings.';
  if (status === 429 || code === 'rate_limited' || code === 'too_many_requests') {
    const wait = ctx.retryAfter && /^\d+$/.test(ctx.retryAfter) ? ` in ${ctx.retryAfter} s` : ' in a moment';
    return `Too many requests from this browser. Try again${wait}.`;
  }
  if (status === 503 || status === 502 || status === 504) {
    return 'The separation service is busy or restarting. Try again in a minute.';
  }
  if (status === 404 || code === 'not_found') return 'The server doesn’t know this song any more — it may have been deleted.';
  if (code === 'empty') return 'That file is empty. Choose an MP3 file.';
  if (code === 'bad_multipart' || code === 'aborted') return 'The upload arrived incomplete. Try again.';
  if (status >= 500) return `The server hit a problem (HTTP ${status}). Try again in a minute.`;
  if (detail) return detail;
  return `The request failed (HTTP ${status}${code ? `, ${code}` : ''}).`;
}

/** @param {string} text @returns {unknown} */
function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * The `ErrorBody` fields of a parsed answer, where they are strings.
 * @param {unknown} body
 * @returns {Partial<ErrorBody> | null}
 */
function errorFields(body) {
  if (!body || typeof body !== 'object') return null;
  const { error, detail } = /** @type {{ error?: unknown, detail?: unknown }} */ (body);
  return {
    ...(typeof error === 'string' ? { error } : {}),
    ...(typeof detail === 'string' ? { detail } : {}),
  };
}

/**
 * The ApiError for an HTTP failure (status 0: no answer at all).
 * @param {number} status
 * @param {unknown} [body] the parsed answer
 * @param {ErrorContext} [ctx]
 */
function failure(status, body = null, ctx) {
  const fields = errorFields(body);
  return new ApiError(describeError(status, fields, ctx), status, fields?.error ?? (status === 0 ? 'network' : ''), fields?.detail);
}

/**
 * fetch, with the key header and a plain-words ApiError for both a network failure and an error status.
 * @param {string} path
 * @param {RequestInit} [init]
 * @returns {Promise<Response>}
 */
async function request(path, init = {}) {
  let res;
  try {
    // X-Requested-With: the server refuses state changes from a page without it (cross-site request guard).
    res = await fetch(path, { ...init, headers: { 'X-Requested-With': 'XMLHttpRequest', ...authHeaders(), ...(init.headers ?? {}) } });
  } catch {
    throw failure(0);
  }
  if (!res.ok) throw failure(res.status, parseJson(await res.text()), { retryAfter: res.headers.get('Retry-After') });
  return res;
}

/**
 * fetch + JSON. The answer is trusted to have the shape of the wire type `T` the caller names
 * (each endpoint below states its type from common/src/api.ts).
 * @template T
 * @param {string} path
 * @param {RequestInit} [init]
 * @returns {Promise<T>}
 */
async function apiJson(path, init = {}) {
  const res = await request(path, { ...init, headers: { Accept: 'application/json', ...(init.headers ?? {}) } });
  return /** @type {T} */ (parseJson(await res.text()));
}

/** @returns {Promise<InfoResponse>} */
export const getInfo = () => apiJson('/apiv1/info');
/** @param {string} hash @returns {Promise<JobView>} */
export const getJob = (hash) => apiJson(`/apiv1/jobs/${hash}`);
/** @param {string} hash @returns {Promise<DeleteSongResponse>} */
export const deleteSong = (hash) => apiJson(`/apiv1/jobs/${hash}`, { method: 'DELETE' });
/** @param {string} hash @param {Stem} track @returns {Promise<RemoveStemResponse>} */
export const deleteStem = (hash, track) => apiJson(`/apiv1/track/${hash}/${track}`, { method: 'DELETE' });
/** @param {string} hash */
export const zipUrl = (hash) => `/apiv1/jobs/${hash}/zip`;
/** @param {{ limit?: number, cursor?: string | null }} [page] @returns {Promise<LibraryResponse>} */
export const getLibrary = (page = {}) => apiJson(`/apiv1/jobs?${new URLSearchParams({ limit: String(page.limit ?? 20), ...(page.cursor ? { cursor: page.cursor } : {}) })}`);
/** `GET /apiv1/jobs/:h/mix`: the stems mixed on the server. @param {string} hash @param {Record<string, number>} gains 0..2 per stem @param {string} format */
export const mixUrl = (hash, gains, format) => `/apiv1/jobs/${hash}/mix?${new URLSearchParams({ ...Object.fromEntries(Object.entries(gains).map(([t, g]) => [t, String(g)])), format })}`;
/** @param {string} hash */
export const eventsUrl = (hash) => `/apiv1/jobs/${hash}/events`;

/**
 * Runs a delete; a 404 counts as success (it was gone already, which is what was wanted).
 * @param {() => Promise<unknown>} remove
 * @returns {Promise<string | null>} null when done, else the sentence saying why not
 */
export async function removeOnServer(remove) {
  try {
    await remove();
    return null;
  } catch (err) {
    if (isGone(err)) return null;
    return err instanceof Error ? err.message : String(err);
  }
}

/**
 * Downloads a binary resource (with the API key header when one is set).
 * @param {string} url
 * @returns {Promise<ArrayBuffer>}
 */
export async function fetchBinary(url) {
  return (await request(url)).arrayBuffer();
}

/**
 * Downloads a resource as a Blob (with the API key header when one is set).
 * @param {string} url
 * @returns {Promise<Blob>}
 */
export async function fetchBlob(url) {
  return (await request(url)).blob();
}

/**
 * Uploads one file to the multipart endpoint with XMLHttpRequest, because fetch cannot
 * report upload progress.
 * @param {File} file
 * @param {{ onProgress?: (fraction: number) => void, maxUploadMb?: number, format?: string }} [opts] `format`: the stems' format field
 * @returns {{ done: Promise<SubmitResponse>, abort: () => void }}
 */
export function uploadSong(file, opts = {}) {
  const xhr = new XMLHttpRequest();
  /** @type {Promise<SubmitResponse>} */
  const done = new Promise((resolve, reject) => {
    const form = new FormData();
    // Fields before the file, so a streaming parser knows them when the file arrives.
    if (opts.format && opts.format !== 'mp3') form.append('format', opts.format);
    form.append('file', file, file.name);
    xhr.open('POST', '/apiv1/separate');
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.setRequestHeader('X-Requested-With', 'XMLHttpRequest');
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable && opts.onProgress) opts.onProgress(e.loaded / e.total);
    });
    xhr.addEventListener('load', () => {
      const body = parseJson(xhr.responseText);
      if (xhr.status >= 200 && xhr.status < 300 && isSubmitResponse(body)) {
        resolve(body);
        return;
      }
      reject(failure(xhr.status, body, {
        fileSize: file.size,
        maxUploadMb: opts.maxUploadMb,
        retryAfter: xhr.getResponseHeader('Retry-After'),
      }));
    });
    xhr.addEventListener('error', () => {
      // A server that rejects an oversized body early may reset the connection mid-upload.
      const tooBig = opts.maxUploadMb && file.size > opts.maxUploadMb * 1024 * 1024;
      reject(tooBig ? failure(413, { error: 'payload_too_large' }, { fileSize: file.size, maxUploadMb: opts.maxUploadMb }) : failure(0));
    });
    xhr.addEventListener('abort', () => reject(new ApiError('Upload cancelled.', 0, 'aborted')));
    xhr.send(form);
  });
  return { done, abort: () => xhr.abort() };
}

/** @param {unknown} body @returns {body is SubmitResponse} */
function isSubmitResponse(body) {
  return !!body && typeof body === 'object' && typeof (/** @type {{ hash?: unknown }} */ (body).hash) === 'string';
}
