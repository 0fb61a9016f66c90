import { checkCallbackHost, checkCallbackTarget, formatCovers, type Callback, type CallbackPolicy, type Config, type OutputRequest, type Queue } from '@msaas/common';
import { badRequest } from './errors.ts';

/** The callback policy from the configuration, with the resolver a test may inject. */
export function callbackPolicy(config: Config, resolve?: (host: string) => Promise<string[]>): CallbackPolicy {
  return {
    allowPrivate: config.CALLBACK_ALLOW_PRIVATE,
    allowedPorts: config.CALLBACK_ALLOWED_PORTS,
    dnsTimeoutMs: config.DNS_TIMEOUT_MS,
    ...(resolve ? { resolve } : {}),
  };
}

export interface SubmissionLimits {
  maxActive: number;
  maxAudioSecPerDay: number;
  audioSec: number;
}

/**
 * Whether the submit script will keep this submission's callback: not when the tenant already
 * claims the waiting/running song (the script ignores it), nor when the song is separated (not
 * sent), nor when a quota will refuse the submission. A read ahead of the script, only to spare a
 * DNS lookup: in the rare race where the answer changes before the script runs, the callback is
 * stored unchecked and the worker's call-time check (and the connection's guarded lookup) still
 * applies.
 */
async function callbackWillBeKept(queue: Queue, hash: string, tenant: string, limits: SubmissionLimits, want: OutputRequest): Promise<boolean> {
  const [job, claim] = await Promise.all([queue.getJob(hash), queue.getClaim(hash, tenant)]);
  const active = job?.state === 'queued' || job?.state === 'processing';
  if (active && claim) return false;
  // A song whose finished files have what is asked is not run again (a format or stems it lacks are),
  // even while another tenant's run makes more of it (submit-12.lua).
  if (job && job.stems.length > 0 && job.storedFormats.some((f) => formatCovers(f, want.format)) && want.stems.every((st) => job.stems.includes(st))) return false;
  if (limits.maxActive > 0 && (await queue.activeCount(tenant)) >= limits.maxActive) return false;
  if (limits.maxAudioSecPerDay > 0 && (await queue.usageSec(tenant)) + limits.audioSec > limits.maxAudioSecPerDay) return false;
  return true;
}

/**
 * The callback a submission enqueues, and why not when it is refused. Syntax and port are checked
 * first (400 for a malformed URL); the host is resolved — within DNS_TIMEOUT_MS, off the libuv
 * pool — only when the submission will keep the callback. Well-formed but refused is not an
 * error: the job is accepted and the claim says `skipped: <reason>`.
 */
export async function callbackAtSubmit(
  callback: Callback | null,
  ctx: { queue: Queue; policy: CallbackPolicy; hash: string; tenant: string; limits: SubmissionLimits; want: OutputRequest },
): Promise<{ callback: Callback | null; callbackStatus: string | null }> {
  if (!callback) return { callback: null, callbackStatus: null };
  const target = checkCallbackTarget(callback.url, ctx.policy);
  if (!target.ok && target.malformed) throw badRequest('bad_callback', target.reason);
  if (!target.ok) return { callback: null, callbackStatus: `skipped: ${target.reason}` };
  if (!target.unresolvedHost || !(await callbackWillBeKept(ctx.queue, ctx.hash, ctx.tenant, ctx.limits, ctx.want))) return { callback, callbackStatus: null };
  const verdict = await checkCallbackHost(target.url, target.unresolvedHost, ctx.policy);
  return verdict.ok ? { callback, callbackStatus: null } : { callback: null, callbackStatus: `skipped: ${verdict.reason}` };
}
