/**
 * Network failures and an object store's own server-side errors (S3 `InternalError`,
 * `ServiceUnavailable`, …): not the client's fault and worth trying again. The worker retries
 * them; rest answers them with 503.
 */
const TRANSIENT_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'UND_ERR_SOCKET',
  'SlowDown', 'InternalError', 'ServiceUnavailable', 'RequestTimeout',
]);

export function isTransientStoreError(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | null;
  if (!e) return false;
  if (e.code && TRANSIENT_CODES.has(e.code)) return true;
  return /socket hang up|ECONNREFUSED|ECONNRESET|other side closed|fetch failed/i.test(e.message ?? '');
}
