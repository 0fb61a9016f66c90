import { TRACKS, stemUrl, type ClaimedJob, type JobRecord, type JobView, type LiveView, type OutputFormat, type Queue, type Stem } from '@msaas/common';
import { notFound } from './errors.ts';
import { claimOutlook } from './claim-view.ts';

/** The job as the claim's tenant sees it: the shared work, with that tenant's filename, callback and stems. */
export async function jobView(queue: Queue, claimed: ClaimedJob): Promise<JobView> {
  return viewOf(claimed, claimed.job.state === 'queued' ? await queue.position(claimed.job.hash) : null);
}

/**
 * The same view from records already read (the event streams read them once for all their
 * watchers). The claim's own view of the shared work (claim-view.ts): its own times, request and
 * files; run details only of the run it waited for.
 */
export function viewOf(claimed: ClaimedJob, queuePosition: number | null): JobView {
  const { job, claim } = claimed;
  const own = claimOutlook(claimed);
  const position = own.waiting && job.state === 'queued' ? queuePosition : null;
  const files: Partial<Record<OutputFormat, Partial<Record<Stem, string>>>> = {};
  for (const f of own.formats) files[f] = Object.fromEntries(own.visible.map((t) => [t, stemUrl(job.hash, t, f)]));
  const stems: Partial<Record<Stem, string>> = own.formats[0] ? (files[own.formats[0]] ?? {}) : {};
  const { stems: _stems, tenant: _tenant, wanted: _wanted, storedFormats: _stored, split: _split, ...shared } = job;
  const { run } = own;
  return {
    ...shared,
    state: own.state,
    progress: own.progress,
    attempts: run.attempts,
    error: run.error,
    createdAt: claim.createdAt || job.createdAt,
    updatedAt: own.waiting ? job.updatedAt : (claim.doneAt ?? job.updatedAt),
    startedAt: run.startedAt,
    finishedAt: run.finishedAt,
    worker: run.worker,
    formats: [...own.formats, ...own.coming],
    position,
    filename: claim.filename,
    callbackStatus: claim.callbackStatus,
    stems,
    files,
    callback: claim.callback ? { url: claim.callback.url, status: claim.callbackStatus } : claim.callbackStatus ? { url: '', status: claim.callbackStatus } : null,
    // the run details' processing time only of its own run; the song's length (the bytes') to all
    ...audioProgress(own.waiting ? job : { ...job, state: 'done', durationSec: run.durationSec }, job.wanted.filter((t) => !claim.hidden.includes(t))),
  };
}

const LIVE_RATE = 44_100;

/** `readySec`, `durationSec` (the song's length once the worker knows it) and `live` (the pieces, while the job runs). */
function audioProgress(job: JobRecord, streamed: readonly Stem[]): Pick<JobView, 'readySec' | 'durationSec' | 'live'> {
  const durationSec = job.totalFrames !== null ? job.totalFrames / LIVE_RATE : job.durationSec;
  const readySec = job.state === 'done' ? (durationSec ?? job.readyFrames / LIVE_RATE) : job.readyFrames / LIVE_RATE;
  const running = job.state === 'queued' || job.state === 'processing';
  const live: LiveView | null =
    running && job.pieceEnds.length > 0
      ? {
          sampleRate: LIVE_RATE,
          stems: [...TRACKS],
          pieceEnds: job.pieceEnds,
          pieceUrl: `/apiv1/jobs/${job.hash}/pieces/`,
          streams: Object.fromEntries(streamed.map((t) => [t, `/apiv1/jobs/${job.hash}/live/${t}.mp3`])),
        }
      : null;
  return { readySec, durationSec, live };
}

/**
 * The song if this tenant claims it. Another tenant's song answers exactly like a song nobody
 * submitted: the same 404 with the same sentence, so no one learns what others have.
 */
export async function claimedOr404(queue: Queue, hash: string, tenant: string, detail: string): Promise<ClaimedJob> {
  const claimed = await queue.getClaimedJob(hash, tenant);
  if (!claimed) throw notFound(detail);
  return claimed;
}
