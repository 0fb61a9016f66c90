import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from 'pino';
import { API_ERRORS, isTransientStoreError, statusesOf, type ErrorBody, type ErrorCode } from '@msaas/common';

/**
 * A client's mistake (or a known condition) answered as `{error, detail}`: a code of the one error
 * table (common/src/errors.ts) with a status that table gives it.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    readonly detail: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
    this.name = 'ApiError';
    if (!statusesOf(code).includes(status)) throw new Error(`error code ${code} answers ${statusesOf(code).join(' or ')}, not ${status} (common/src/errors.ts)`);
  }
}

/** The error `code` with the table's status (or one of its `also` statuses). */
export function apiError(code: ErrorCode, detail: string, opts: { status?: number; headers?: Record<string, string> } = {}): ApiError {
  return new ApiError(opts.status ?? API_ERRORS[code].status, code, detail, opts.headers);
}

export const badRequest = (code: ErrorCode, detail: string): ApiError => apiError(code, detail);
export const notFound = (detail: string): ApiError => apiError('not_found', detail);

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
    if (e.code === 'LIMIT_FILE_SIZE' || e.code === 'LIMIT_FIELD_VALUE') return apiError('payload_too_large', `upload exceeds the limit (${e.message})`);
    if (e.code === 'LIMIT_UNEXPECTED_FILE') return badRequest('bad_multipart', `a file in the field "${String(e.field ?? '').slice(0, 40)}": the audio goes in the field "file"`);
    return badRequest('bad_multipart', `${e.message}${e.field ? ` (field ${e.field})` : ''}`);
  }
  switch (e?.type) {
    case 'entity.too.large':
      return apiError('payload_too_large', 'request body exceeds the upload limit');
    case 'entity.parse.failed':
      return badRequest('bad_json', 'request body is not valid JSON');
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return apiError('unsupported_encoding', e.message);
    case 'request.aborted':
      return apiError('aborted', 'request was aborted by the client');
    default:
      break;
  }
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) {
    if (e.status === 413) return apiError('payload_too_large', e.expose ? e.message : 'request body exceeds the limit');
    return badRequest('bad_request', e.expose ? e.message : 'malformed request');
  }
  if (e?.message?.startsWith('Multipart: Boundary not found') || e?.message === 'Unexpected end of form' || e?.message?.startsWith('Malformed part header')) {
    return badRequest('bad_multipart', e.message);
  }
  if (e?.message?.startsWith('OOM ')) {
    return apiError('storage_full', 'the job store (Redis) is out of memory: nothing new can be recorded until finished songs expire; retry later', { headers: { 'Retry-After': '60' } });
  }
  if (isBackendUnavailable(err)) return apiError('unavailable', 'a backing service (Redis or object store) is unavailable; retry later', { headers: { 'Retry-After': '5' } });
  return apiError('internal', 'internal error');
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
    const body: ErrorBody = { error: api.code, detail: api.detail };
    res.status(api.status).set(api.headers).json(body);
  };
}

export const notFoundHandler: RequestHandler = (req, res) => {
  const body: ErrorBody = { error: 'not_found', detail: `no route for ${req.method} ${req.path}` };
  res.status(404).json(body);
};
