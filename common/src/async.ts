/** Rejects with `message` (and `code`, when given) if `promise` has not settled within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, message: string, code?: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(message), code ? { code } : {})), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Retries an operation with exponential backoff while `shouldRetry` says the failure is transient. */
export async function withRetry<T>(
  op: () => Promise<T>,
  opts: {
    shouldRetry: (err: unknown) => boolean;
    maxWaitMs: number;
    baseMs?: number;
    capMs?: number;
    signal?: AbortSignal;
    onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  },
): Promise<T> {
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await op();
    } catch (err) {
      const delay = Math.min((opts.baseMs ?? 250) * 2 ** (attempt - 1), opts.capMs ?? 5000);
      if (!opts.shouldRetry(err) || opts.signal?.aborted || Date.now() - started + delay > opts.maxWaitMs) throw err;
      opts.onRetry?.(err, attempt, delay);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
