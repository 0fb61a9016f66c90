import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { checkCallbackUrl, guardedLookup, type CallbackPolicy, type Config } from '@msaas/common';
import { apiError, badRequest, type ApiError } from '../errors.ts';
import { overSize } from './ingest.ts';

/** Redirects followed at most; each new location is judged like the first. */
export const MAX_REDIRECTS = 5;

export interface UrlFetchPolicy {
  /** The callbacks' guard (common/src/callback-policy.ts) with the URL fetch's switch and ports. */
  guard: CallbackPolicy;
  timeoutMs: number;
  maxBytes: number;
  /** The connections' agent (default Node's global one); tests route a public name to a local server with one. */
  agent?: http.Agent;
}

export function urlFetchPolicy(config: Config, resolve?: (host: string) => Promise<string[]>): UrlFetchPolicy {
  return {
    guard: { allowPrivate: config.URL_FETCH_ALLOW_PRIVATE, allowedPorts: config.URL_FETCH_ALLOWED_PORTS, dnsTimeoutMs: config.DNS_TIMEOUT_MS, resolve },
    timeoutMs: config.URL_FETCH_TIMEOUT_SEC * 1000,
    maxBytes: Math.floor(config.MAX_UPLOAD_MB * 2 ** 20),
  };
}

/** The guard speaks of callbacks; a submitted URL is named as such, with its own settings. */
function asUrlReason(reason: string): string {
  return reason
    .replace(/^callback\.url/, 'url')
    .replace(/^callback (host|port)/, 'the URL\'s $1')
    .replace('CALLBACK_ALLOW_PRIVATE', 'URL_FETCH_ALLOW_PRIVATE')
    .replace('CALLBACK_ALLOWED_PORTS', 'URL_FETCH_ALLOWED_PORTS');
}

export interface Fetched {
  body: Readable;
  /** The last path segment of the final URL, for the library's name. */
  filename: string | null;
  /** Ends the fetch (and its deadline) once the body is read or refused. */
  close(): void;
  /** Wraps an error the body stream gave into the client's answer (the deadline, a broken connection). */
  failure(err: unknown): ApiError;
}

const failed = (detail: string): ApiError => apiError('url_fetch_failed', detail);

/**
 * GETs a submitted URL with the callbacks' SSRF guard: the URL (and every redirect's location) must
 * be http(s) to an allowed port whose host resolves to public addresses only, checked before the
 * request and again at connect time (guardedLookup, against DNS rebinding), unless
 * URL_FETCH_ALLOW_PRIVATE=true. The whole fetch, body included, has URL_FETCH_TIMEOUT_SEC; a body
 * announced over MAX_UPLOAD_MB is refused before it is read (a chunked one is cut by `ingest`).
 */
export async function fetchUrl(raw: string, policy: UrlFetchPolicy): Promise<Fetched> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), policy.timeoutMs);
  timer.unref();
  const seconds = String(policy.timeoutMs / 1000);
  const describe = (err: unknown): ApiError => {
    if (controller.signal.aborted) return failed(`the URL did not deliver the whole file within ${seconds} s (URL_FETCH_TIMEOUT_SEC)`);
    const e = err as { code?: string; message?: string };
    if (e?.code === 'ECALLBACKPRIVATE') return badRequest('bad_url', `${asUrlReason(e.message ?? '')}; set URL_FETCH_ALLOW_PRIVATE=true to allow`);
    return failed(`the URL could not be fetched: ${(e?.message ?? String(err)).slice(0, 200)}`);
  };
  const close = (): void => clearTimeout(timer);
  try {
    let current = raw;
    for (let hop = 0; ; hop++) {
      const verdict = await checkCallbackUrl(current, policy.guard);
      if (!verdict.ok) throw badRequest('bad_url', `${hop > 0 ? `the URL redirects to ${current.slice(0, 200)}, which is refused: ` : ''}${asUrlReason(verdict.reason)}`);
      const res = await get(verdict.url, policy, controller.signal).catch((err: unknown) => {
        throw describe(err);
      });
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        if (hop >= MAX_REDIRECTS) throw failed(`the URL redirects more than ${MAX_REDIRECTS} times`);
        current = new URL(res.headers.location, verdict.url).toString();
        continue;
      }
      if (status < 200 || status > 299) {
        res.resume();
        throw failed(`the URL answered HTTP ${status}${res.statusMessage ? ` ${res.statusMessage.slice(0, 60)}` : ''}, not the file`);
      }
      const length = Number(res.headers['content-length']);
      if (Number.isFinite(length) && length > policy.maxBytes) {
        res.destroy();
        throw overSize('the file at the URL', policy.maxBytes, length);
      }
      const segment = decodeURIComponentSafe(verdict.url.pathname.split('/').pop() ?? '');
      return { body: res, filename: segment || null, close, failure: describe };
    }
  } catch (err) {
    close();
    controller.abort();
    throw err;
  }
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function get(url: URL, policy: UrlFetchPolicy, signal: AbortSignal): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const lib = url.protocol === 'https:' ? https : http;
    const req = lib.get(url, { lookup: guardedLookup(policy.guard), signal, ...(policy.agent ? { agent: policy.agent } : {}), headers: { 'user-agent': 'MSaaS-TS url-submit', accept: 'audio/*, application/octet-stream;q=0.9, */*;q=0.5' } }, resolve);
    req.on('error', reject);
  });
}
