import { apiError, ApiError } from './errors.ts';

/** How many event streams may be open at once, and for how long (STREAMS_PER_CLIENT, STREAMS_PER_PROCESS, STREAM_MAX_LIFETIME_SEC). */
export interface StreamLimits {
  perClient: number;
  perProcess: number;
  lifetimeMs: number;
}

/** An admitted stream: it must end by `lifetimeMs` (the limit less up to a fifth, so reconnects spread) and call `release` once it ends. */
export interface StreamSlot {
  lifetimeMs: number;
  release(): void;
}

export type Admission = { ok: true; slot: StreamSlot } | { ok: false; limit: 'client' | 'process'; retryAfterSec: number };

/** The shortest lifetime is this fraction of the maximum: lifetimes are drawn uniformly in between. */
const SHORTEST = 0.8;

/**
 * The open event streams of this process, counted per client (a tenant when the request carries a
 * key, else its address) and in all. Counted in the process, not in Redis: what a stream costs —
 * a socket, its buffers, its share of every job event's fan-out — is this process's, so this is
 * where one client must not take more than its share; and a crashed replica's count dies with it.
 */
export class StreamSlots {
  private readonly byClient = new Map<string, Set<number>>();
  /** Deadline (ms) of every open stream, by slot id. */
  private readonly deadlines = new Map<number, number>();
  private nextId = 0;

  constructor(
    private readonly limits: StreamLimits,
    private readonly now: () => number = Date.now,
    private readonly random: () => number = Math.random,
  ) {}

  get open(): number {
    return this.deadlines.size;
  }

  /** A slot for one more stream of `client`, or which limit refuses it and when one of the streams it waits for will have ended. */
  admit(client: string): Admission {
    const mine = this.byClient.get(client);
    if (mine && mine.size >= this.limits.perClient) return { ok: false, limit: 'client', retryAfterSec: this.retryAfter(mine) };
    if (this.deadlines.size >= this.limits.perProcess) return { ok: false, limit: 'process', retryAfterSec: this.retryAfter(this.deadlines.keys()) };
    const id = this.nextId++;
    const lifetimeMs = Math.round(this.limits.lifetimeMs * (SHORTEST + (1 - SHORTEST) * this.random()));
    const set = mine ?? new Set<number>();
    if (!mine) this.byClient.set(client, set);
    set.add(id);
    this.deadlines.set(id, this.now() + lifetimeMs);
    let released = false;
    return {
      ok: true,
      slot: {
        lifetimeMs,
        release: () => {
          if (released) return;
          released = true;
          this.deadlines.delete(id);
          set.delete(id);
          if (set.size === 0 && this.byClient.get(client) === set) this.byClient.delete(client);
        },
      },
    };
  }

  /** Whole seconds until the first of these streams reaches its lifetime (at least 1). */
  private retryAfter(ids: Iterable<number>): number {
    let first = Number.POSITIVE_INFINITY;
    for (const id of ids) first = Math.min(first, this.deadlines.get(id) ?? first);
    const ms = Number.isFinite(first) ? first - this.now() : this.limits.lifetimeMs;
    return Math.max(1, Math.ceil(ms / 1000));
  }
}

/** The 429 for a refused stream (`what`: 'event streams', 'live audio streams'), naming the limit and when to retry. */
export function tooManyStreams(refused: Extract<Admission, { ok: false }>, limits: Pick<StreamLimits, 'perClient' | 'perProcess'>, authenticated: boolean, what: string): ApiError {
  const retry = `retry in ${refused.retryAfterSec} s`;
  const detail =
    refused.limit === 'client'
      ? `at most ${limits.perClient} ${what} may be open at once per ${authenticated ? 'API key' : 'client address'} (STREAMS_PER_CLIENT); close one or ${retry}`
      : `this server holds its maximum of ${limits.perProcess} open ${what} (STREAMS_PER_PROCESS); ${retry}`;
  return apiError('too_many_streams', detail, { headers: { 'Retry-After': String(refused.retryAfterSec) } });
}
