import { stemUrl, type JobRecord, type JobView, type Queue, type Track } from '@msaas/common';

export async function jobView(queue: Queue, job: JobRecord): Promise<JobView> {
  const position = job.state === 'queued' ? await queue.position(job.hash) : null;
  const stems: Partial<Record<Track, string>> = {};
  for (const t of job.stems) stems[t] = stemUrl(job.hash, t);
  return {
    ...job,
    position,
    stems,
    callback: job.callback ? { url: job.callback.url, status: job.callbackStatus } : job.callbackStatus ? { url: '', status: job.callbackStatus } : null,
  };
}

export const isTerminal = (job: Pick<JobRecord, 'state'>): boolean => job.state === 'done' || job.state === 'failed';
