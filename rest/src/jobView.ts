import { stemUrl, type ClaimedJob, type JobView, type Queue, type Track } from '@msaas/common';
import { notFound } from './errors.ts';

/** The job as the claim's tenant sees it: the shared work, with that tenant's filename, callback and stems. */
export async function jobView(queue: Queue, { job, claim }: ClaimedJob): Promise<JobView> {
  const position = job.state === 'queued' ? await queue.position(job.hash) : null;
  const stems: Partial<Record<Track, string>> = {};
  for (const t of job.stems) if (!claim.hidden.includes(t)) stems[t] = stemUrl(job.hash, t);
  const { stems: _stems, tenant: _tenant, ...shared } = job;
  return {
    ...shared,
    position,
    filename: claim.filename,
    callbackStatus: claim.callbackStatus,
    stems,
    callback: claim.callback ? { url: claim.callback.url, status: claim.callbackStatus } : claim.callbackStatus ? { url: '', status: claim.callbackStatus } : null,
  };
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
