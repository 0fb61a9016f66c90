import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface WorkerMetrics {
  registry: Registry;
  jobs: Counter<'result'>;
  duration: Histogram;
  busy: Gauge;
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
  };
}
