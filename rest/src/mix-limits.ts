import { apiError, ApiError } from './errors.ts';

/** How many custom mixes may be encoding at once (MAX_CONCURRENT_MIXES, MIXES_PER_CLIENT). */
export interface MixLimits {
  perProcess: number;
  perClient: number;
}

/**
 * Seconds a refused mix is asked to wait. A mix runs as fast as its client reads: a few seconds
 * for a song to a client on the same network, longer to a slow one.
 */
export const MIX_RETRY_AFTER_SEC = 10;

export type MixAdmission = { ok: true; release(): void } | { ok: false; error: ApiError };

/**
 * The mixes this process is encoding, counted per client (a tenant when the request carries a key,
 * else its address) and in all. A mix costs CPU on the process's one event loop for as long as it
 * runs, so the count is the process's own, like the event streams' (stream-limits.ts); it is taken
 * before any stem is read and given back when the mix ends, fails or its client goes away.
 */
export class MixSlots {
  private readonly byClient = new Map<string, number>();
  private active = 0;

  constructor(private readonly limits: MixLimits) {}

  get open(): number {
    return this.active;
  }

  admit(client: string, authenticated: boolean): MixAdmission {
    const mine = this.byClient.get(client) ?? 0;
    const retry = { 'Retry-After': String(MIX_RETRY_AFTER_SEC) };
    if (mine >= this.limits.perClient) {
      const who = authenticated ? 'API key' : 'client address';
      return {
        ok: false,
        error: apiError('too_many_mixes', `at most ${this.limits.perClient} custom mixes may be encoding at once per ${who} (MIXES_PER_CLIENT=${this.limits.perClient}); wait for one to finish or retry in ${MIX_RETRY_AFTER_SEC} s`, { headers: retry }),
      };
    }
    if (this.active >= this.limits.perProcess) {
      return {
        ok: false,
        error: apiError('too_many_mixes', `this rest replica is already encoding ${this.active} custom mixes, the limit of MAX_CONCURRENT_MIXES=${this.limits.perProcess}; retry in ${MIX_RETRY_AFTER_SEC} s`, { status: 503, headers: retry }),
      };
    }
    this.active++;
    this.byClient.set(client, mine + 1);
    let held = true;
    return {
      ok: true,
      release: () => {
        if (!held) return;
        held = false;
        this.active--;
        const left = (this.byClient.get(client) ?? 1) - 1;
        if (left > 0) this.byClient.set(client, left);
        else this.byClient.delete(client);
      },
    };
  }
}
