import { checkCallbackUrl, type Callback } from '@msaas/common';

export interface CallbackOptions {
  allowPrivate: boolean;
  timeoutMs: number;
  retries: number;
  headers?: Record<string, string>;
  resolve?: (host: string) => Promise<string[]>;
}

/**
 * POSTs `callback.data` as JSON to `callback.url` (what the lab's client expects), with a timeout
 * and a few retries on network errors and 5xx. Returns a one-line status for the job record.
 * The URL is checked again here: DNS may have changed since the job was accepted.
 */
export async function fireCallback(callback: Callback, opts: CallbackOptions): Promise<string> {
  const verdict = await checkCallbackUrl(callback.url, { allowPrivate: opts.allowPrivate, ...(opts.resolve ? { resolve: opts.resolve } : {}) });
  if (!verdict.ok) return `skipped: ${verdict.reason}`;
  let last = '';
  for (let attempt = 0; attempt <= opts.retries; attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, 500 * 2 ** (attempt - 1)));
    try {
      const res = await fetch(verdict.url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...opts.headers },
        body: JSON.stringify(callback.data ?? null),
        signal: AbortSignal.timeout(opts.timeoutMs),
        redirect: 'manual',
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.status < 500) return `delivered: HTTP ${res.status}${attempt > 0 ? ` after ${attempt + 1} tries` : ''}`;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).name === 'TimeoutError' ? `timed out after ${opts.timeoutMs} ms` : (err as Error).message;
    }
  }
  return `failed: ${last} (${opts.retries + 1} tries)`;
}
