// @ts-check
// Talks to the MSaaS REST API and turns its errors into sentences a musician can act on.

/** @typedef {'drums'|'bass'|'other'|'vocals'} Track */
/** @typedef {'queued'|'processing'|'done'|'failed'} JobState */
/**
 * @typedef {object} Job
 * @property {string} hash
 * @property {JobState} state
 * @property {number} progress 0..1
 * @property {number|null} position 0 = next to run; only while queued
 * @property {number} attempts
 * @property {string|null} error
 * @property {string} createdAt
 * @property {string} updatedAt
 * @property {number|null} durationSec
 * @property {Partial<Record<Track, string>>} stems
 */
/** @typedef {{ maxUploadMb: number, tracks: Track[], model: string, authRequired?: boolean }} Info */
/** @typedef {{ hash: string, reason: string, job?: Job | null }} SeparateResponse */

const KEY_STORAGE = 'msaas.apiKey';

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
    this.status = status;
    this.code = code;
    this.detail = detail ?? '';
  }
}

/** @param {number} bytes */
export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} kB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/**
 * The sentence shown for an API error. Codes we know get our own words; anything else
 * falls back to the server's `detail`, which the API promises is a human sentence.
 * @param {number} status
 * @param {{ error?: unknown, detail?: unknown } | null} body
 * @param {{ fileSize?: number, maxUploadMb?: number, retryAfter?: string | null }} [ctx]
 */
export function describeError(status, body, ctx = {}) {
  const code = typeof body?.error === 'string' ? body.error : '';
  const detail = typeof body?.detail === 'string' ? body.detail : '';
  if (status === 0) return 'Can’t reach the MSaaS server. Check that it is running and that you are connected, then try again.';
  if (status === 413 || code === 'payload_too_large') {
    const size = ctx.fileSize ? ` (${formatBytes(ctx.fileSize)})` : '';
    const limit = ctx.maxUploadMb ? ` The limit is ${ctx.maxUploadMb} MB.` : '';
    return `That file is too big${size}.${limit} Try a shorter song or an MP3 with a lower bitrate.`;
  }
  if (code === 'not_mp3' || code === 'unsupported_media_type' || status === 415) {
    return 'That file isn’t an MP3. Choose an .mp3 file — WAV, FLAC or M4A files need converting first.';
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

/** @param {string} text */
function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * fetch + JSON + plain-words errors.
 * @param {string} path
 * @param {RequestInit} [init]
 * @returns {Promise<any>}
 */
export async function apiJson(path, init = {}) {
  let res;
  try {
    res = await fetch(path, { ...init, headers: { Accept: 'application/json', ...authHeaders(), ...(init.headers ?? {}) } });
  } catch {
    throw new ApiError(describeError(0, null), 0, 'network');
  }
  const body = parseJson(await res.text());
  if (!res.ok) {
    throw new ApiError(describeError(res.status, body, { retryAfter: res.headers.get('Retry-After') }), res.status, body?.error ?? '', body?.detail);
  }
  return body;
}

/** @returns {Promise<Info>} */
export const getInfo = () => apiJson('/apiv1/info');
/** @param {string} hash @returns {Promise<Job>} */
export const getJob = (hash) => apiJson(`/apiv1/jobs/${hash}`);
/** @param {string} hash */
export const deleteSong = (hash) => apiJson(`/apiv1/jobs/${hash}`, { method: 'DELETE' });
/** @param {string} hash @param {Track} track */
export const deleteStem = (hash, track) => apiJson(`/apiv1/track/${hash}/${track}`, { method: 'DELETE' });
/** @param {string} hash */
export const zipUrl = (hash) => `/apiv1/jobs/${hash}/zip`;
/** @param {string} hash */
export const eventsUrl = (hash) => `/apiv1/jobs/${hash}/events`;

/**
 * Downloads a binary resource (with the API key header when one is set).
 * @param {string} url
 * @returns {Promise<ArrayBuffer>}
 */
export async function fetchBinary(url) {
  let res;
  try {
    res = await fetch(url, { headers: authHeaders() });
  } catch {
    throw new ApiError(describeError(0, null), 0, 'network');
  }
  if (!res.ok) {
    const body = parseJson(await res.text());
    throw new ApiError(describeError(res.status, body), res.status, body?.error ?? '', body?.detail);
  }
  return res.arrayBuffer();
}

/**
 * Uploads one file to the multipart endpoint with XMLHttpRequest, because fetch cannot
 * report upload progress.
 * @param {File} file
 * @param {{ onProgress?: (fraction: number) => void, maxUploadMb?: number }} [opts]
 * @returns {{ done: Promise<SeparateResponse>, abort: () => void }}
 */
export function uploadSong(file, opts = {}) {
  const xhr = new XMLHttpRequest();
  const done = new Promise((resolve, reject) => {
    const form = new FormData();
    form.append('file', file, file.name);
    xhr.open('POST', '/apiv1/separate');
    xhr.setRequestHeader('Accept', 'application/json');
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable && opts.onProgress) opts.onProgress(e.loaded / e.total);
    });
    xhr.addEventListener('load', () => {
      const body = parseJson(xhr.responseText);
      if (xhr.status >= 200 && xhr.status < 300 && body && typeof body.hash === 'string') {
        resolve(body);
        return;
      }
      const msg = describeError(xhr.status, body, {
        fileSize: file.size,
        maxUploadMb: opts.maxUploadMb,
        retryAfter: xhr.getResponseHeader('Retry-After'),
      });
      reject(new ApiError(msg, xhr.status, body?.error ?? '', body?.detail));
    });
    xhr.addEventListener('error', () => {
      // A server that rejects an oversized body early may reset the connection mid-upload.
      if (opts.maxUploadMb && file.size > opts.maxUploadMb * 1024 * 1024) {
        reject(new ApiError(describeError(413, null, { fileSize: file.size, maxUploadMb: opts.maxUploadMb }), 413, 'payload_too_large'));
      } else {
        reject(new ApiError(describeError(0, null), 0, 'network'));
      }
    });
    xhr.addEventListener('abort', () => reject(new ApiError('Upload cancelled.', 0, 'aborted')));
    xhr.send(form);
  });
  return { done, abort: () => xhr.abort() };
}
