import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from 'pino';
import { isTransientStoreError } from '@msaas/common';

/** A client's mistake (or a known condition) with its HTTP status; rendered as `{error, detail}`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
    this.name = 'ApiError';
  }
}

export const badRequest = (code: string, detail: string): ApiError => new ApiError(400, code, detail);
export const notFound = (detail: string): ApiError => new ApiError(404, 'not_found', detail);

/** Redis or the object store is unreachable or failing: the client should retry later (503), not blame itself. */
export function isBackendUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (isTransientStoreError(err) || err.name === 'MaxRetriesPerRequestError') return true;
  const m = err.message;
  return m.includes("Stream isn't writeable") || m.includes('Connection is closed') || m.includes('Command timed out');
}

interface BodyParserError extends Error {
  type?: string;
  status?: number;
  expose?: boolean;
}

function classify(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const e = err as BodyParserError & { code?: string; field?: string };
  if (e?.name === 'MulterError') {
    if (e.code === 'LIMIT_FILE_SIZE' || e.code === 'LIMIT_FIELD_VALUE') return new ApiError(413, 'payload_too_large', `upload exceeds the limit (${e.message})`);
    return badRequest('bad_multipart', `${e.message}${e.field ? ` (field ${e.field})` : ''}`);
  }
  switch (e?.type) {
    case 'entity.too.large':
      return new ApiError(413, 'payload_too_large', 'request body exceeds the upload limit');
    case 'entity.parse.failed':
      return badRequest('bad_json', 'request body is not valid JSON');
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new ApiError(415, 'unsupported_encoding', e.message);
    case 'request.aborted':
      return new ApiError(400, 'aborted', 'request was aborted by the client');
    default:
      break;
  }
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) {
    return new ApiError(e.status, 'bad_request', e.expose ? e.message : 'malformed request');
  }
  if (e?.message?.startsWith('Multipart: Boundary not found') || e?.message === 'Unexpected end of form' || e?.message?.startsWith('Malformed part header')) {
    return badRequest('bad_multipart', e.message);
  }
  if (e?.message?.startsWith('OOM ')) {
    return new ApiError(503, 'storage_full', 'the job store (Redis) is out of memory: nothing new can be recorded until finished songs expire; retry later', { 'Retry-After': '60' });
  }
  if (isBackendUnavailable(err)) return new ApiError(503, 'unavailable', 'a backing service (Redis or object store) is unavailable; retry later', { 'Retry-After': '5' });
  return new ApiError(500, 'internal', 'internal error');
}

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const api = classify(err);
    if (api.status >= 500) logger.error({ err, path: req.path }, `request failed: ${(err as Error)?.message ?? String(err)}`);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    for (const h of ['Content-Type', 'Content-Length', 'Content-Disposition', 'ETag', 'Last-Modified', 'Cache-Control']) res.removeHeader(h);
    res.status(api.status).set(api.headers).json({ error: api.code, detail: api.detail });
  };
}

export const notFoundHandler: RequestHandler = (req, res) => {
  res.status(404).json({ error: 'not_found', detail: `no route for ${req.method} ${req.path}` });
};
