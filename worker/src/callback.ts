import { createHmac, randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { checkCallbackUrl, guardedLookup, type ClaimCallback, type CallbackPolicy } from '@msaas/common';

export interface CallbackOptions {
  allowPrivate: boolean;
  /** CALLBACK_ALLOWED_PORTS (default 80, 443; any port with allowPrivate). */
  allowedPorts?: readonly number[];
  /** DNS_TIMEOUT_MS for the check and the connection's lookup (default 2000). */
  dnsTimeoutMs?: number;
  timeoutMs: number;
  retries: number;
  headers?: Record<string, string>;
  resolve?: (host: string) => Promise<string[]>;
  /** With a secret every attempt carries `X-MSaaS-Signature: t=<unix s>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. */
  secret?: string | undefined;
  /**
   * One id per delivery, the same on every retry (`X-MSaaS-Event-Id`). Default: the id the claim's
   * callback carries (complete-6.lua derives it from the song, the tenant and the finish it reports,
   * so a repeat of the same delivery carries the same id); a new one only for a callback without.
   */
  eventId?: string;
  now?: () => number;
}

/** The signature header's value for a body sent at unix time `t` (what a receiver recomputes). */
export function callbackSignature(secret: string, body: string, t: number): string {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

/**
 * POSTs `callback.data` as JSON to `callback.url` (what the lab's client expects), with a timeout
 * and a few retries on network errors and 5xx. Returns a one-line status for the job record.
 * The URL is checked again here (port, and DNS, which may have changed since the job was accepted), and the
 * connection itself only goes to addresses that pass the same check: a name re-pointed inside
 * between the check and the connect is refused too. Redirects are not followed.
 */
export async function fireCallback(callback: ClaimCallback, opts: CallbackOptions): Promise<string> {
  const policy: CallbackPolicy = {
    allowPrivate: opts.allowPrivate,
    ...(opts.allowedPorts ? { allowedPorts: opts.allowedPorts } : {}),
    ...(opts.dnsTimeoutMs ? { dnsTimeoutMs: opts.dnsTimeoutMs } : {}),
    ...(opts.resolve ? { resolve: opts.resolve } : {}),
  };
  const verdict = await checkCallbackUrl(callback.url, policy);
  if (!verdict.ok) return `skipped: ${verdict.reason}`;
  const body = JSON.stringify(callback.data ?? null);
  const lookup = guardedLookup(policy);
  const eventId = opts.eventId ?? callback.eventId ?? randomUUID();
  const now = opts.now ?? Date.now;
  let last = '';
  for (let attempt = 0; attempt <= opts.retries; attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, 500 * 2 ** (attempt - 1)));
    const headers: Record<string, string> = { 'Content-Type': 'application/json', ...opts.headers, 'X-MSaaS-Event-Id': eventId };
    if (opts.secret) headers['X-MSaaS-Signature'] = callbackSignature(opts.secret, body, Math.floor(now() / 1000));
    try {
      const status = await post(verdict.url, body, headers, lookup, opts.timeoutMs);
      if (status < 500) return `delivered: HTTP ${status}${attempt > 0 ? ` after ${attempt + 1} tries` : ''}`;
      last = `HTTP ${status}`;
    } catch (err) {
      last = (err as Error).name === 'AbortError' ? `timed out after ${opts.timeoutMs} ms` : (err as Error).message;
    }
  }
  return `failed: ${last} (${opts.retries + 1} tries)`;
}

/** One POST; resolves with the status once the response has been read, within `timeoutMs` in all. */
function post(url: URL, body: string, headers: Record<string, string>, lookup: http.RequestOptions['lookup'], timeoutMs: number): Promise<number> {
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(
      url,
      { method: 'POST', headers: { ...headers, 'Content-Length': String(Buffer.byteLength(body)) }, lookup, signal: AbortSignal.timeout(timeoutMs) },
      (res) => {
        res.on('error', reject);
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.resume();
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
