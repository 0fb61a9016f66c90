import { IMPLICIT_TENANT, STEMS, TRACKS, extensionOf, type Extension, type OutputFormat, type Stem, type Tenant } from '@msaas/common';
import type { AppDeps } from './deps.ts';
import { apiError, ApiError, notFound } from './errors.ts';
import { claimOutlook } from './claim-view.ts';

/**
 * Which of a song's stored stems a request may have: those its tenant's claim sees, or (`store`)
 * whatever the store holds — only for the implicit tenant (no keys: the lab's service) on a song
 * without a claim record, or while Redis is unreachable, so finished songs stay downloadable
 * through a Redis outage. With keys, another tenant's song is a 404 like a song nobody submitted,
 * and an unreadable Redis is a 503.
 *
 * A claim is served the finished files it may see (claim-view.ts): a song's files belong to its
 * claimants, so another tenant's run for more formats neither hides nor reveals them. What a run
 * is writing is never served: while it runs, a stem in the bucket may be an upload still being
 * written (a store without atomic PUTs, like the embedded one) or one of a set the worker has not
 * finished. Nothing finished yet and a run going: 404 not_ready.
 */
export type StemAccess =
  | { kind: 'claim'; visible: readonly Stem[]; formats: readonly OutputFormat[]; coming: readonly OutputFormat[]; state: string; progress: number }
  | { kind: 'store' };

export async function stemAccess(deps: Pick<AppDeps, 'queue' | 'logger'>, tenant: Tenant, hash: string, detail: string): Promise<StemAccess> {
  const implicit = tenant.id === IMPLICIT_TENANT.id;
  let claimed;
  try {
    claimed = await deps.queue.getClaimedJob(hash, tenant.id);
  } catch (err) {
    if (!implicit) throw err;
    deps.logger.warn({ job: hash, err }, 'job record unreadable; serving stems from the store alone');
    return { kind: 'store' };
  }
  if (!claimed) {
    if (!implicit) throw notFound(detail);
    const job = await deps.queue.getJob(hash);
    if (job) refuseWhileRunning(job);
    return { kind: 'store' };
  }
  const own = claimOutlook(claimed);
  if (own.formats.length === 0) refuseWhileRunning(claimed.job);
  return { kind: 'claim', visible: own.visible, formats: own.formats, coming: own.coming, state: claimed.job.state, progress: claimed.job.progress };
}

function refuseWhileRunning(job: { state: string; progress: number }): void {
  if (job.state === 'queued' || job.state === 'processing') throw notReady(job);
}

function notReady(job: { state: string; progress: number }): ApiError {
  const detail = `the song is still ${job.state} (${Math.round(job.progress * 100)}%); its stems are served once all ${TRACKS.length} are stored`;
  return apiError('not_ready', detail);
}

/** A claim asking for files of extension `ext` that a run is making for it now: 404 not_ready (not "never made"). */
export function refuseComing(access: StemAccess, ext: Extension): void {
  if (access.kind === 'claim' && access.coming.some((f) => extensionOf(f) === ext)) throw notReady(access);
}

/** Whether the song's record says its stems are stored with extension `ext` (the store alone: ask it). */
export function hasExtension(access: StemAccess, ext: Extension): boolean {
  return access.kind === 'store' || access.formats.some((f) => extensionOf(f) === ext);
}

/** The stems of `access` that are in the store with extension `ext` (default the lab's `.mp3`). */
export async function storedStems(deps: Pick<AppDeps, 'store'>, hash: string, access: StemAccess, ext: Extension = 'mp3'): Promise<Stem[]> {
  if (!hasExtension(access, ext)) return [];
  const candidates = access.kind === 'claim' ? access.visible : STEMS;
  const present: Stem[] = [];
  for (const t of candidates) if (await deps.store.statStem(hash, t, ext)) present.push(t);
  return present;
}
