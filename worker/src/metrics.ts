import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface WorkerMetrics {
  registry: Registry;
  jobs: Counter<'result'>;
  duration: Histogram;
  busy: Gauge;
  /** Ranges of split songs by result (issue 23): done, retry, failed, released, lost, gone. */
  ranges: Counter<'result'>;
  /** A split song's stitching (reading the ranges' outputs, the overlap-add at their edges). */
  stitchSeconds: Histogram;
  /** A split song's encoding and stem uploads after stitching. */
  encodeSeconds: Histogram;
  /** Songs and ranges this worker's reaper took from workers whose heartbeat expired: back in the queue, or failed for good. */
  reaped: Counter<'kind' | 'outcome'>;
}

export function createWorkerMetrics(): WorkerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'msaas_worker_' });
  return {
    registry,
    jobs: new Counter({ name: 'msaas_worker_jobs_total', help: 'Jobs finished by result', labelNames: ['result'] as const, registers: [registry] }),
    duration: new Histogram({
      name: 'msaas_worker_job_duration_seconds',
      help: 'Wall time per separation job (download to last upload)',
      buckets: [5, 10, 20, 30, 60, 120, 300, 600, 1200],
      registers: [registry],
    }),
    busy: new Gauge({ name: 'msaas_worker_busy', help: '1 while a job is being processed', registers: [registry] }),
    ranges: new Counter({ name: 'msaas_worker_ranges_total', help: 'Ranges of split songs by result', labelNames: ['result'] as const, registers: [registry] }),
    stitchSeconds: new Histogram({
      name: 'msaas_worker_stitch_seconds',
      help: "Time a split song's stitcher spent reading the ranges' outputs and overlap-adding their edges",
      buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
      registers: [registry],
    }),
    reaped: new Counter({
      name: 'msaas_worker_reaped_total',
      help: 'Songs and ranges taken from workers whose heartbeat expired, by kind (song, range) and outcome (requeued, dead)',
      labelNames: ['kind', 'outcome'] as const,
      registers: [registry],
    }),
    encodeSeconds: new Histogram({
      name: 'msaas_worker_encode_seconds',
      help: "Time a split song's stitcher spent encoding and uploading its stems",
      buckets: [1, 2, 5, 10, 20, 30, 60, 120, 300],
      registers: [registry],
    }),
  };
}
