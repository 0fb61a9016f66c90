import http from 'node:http';
import type { WorkerMetrics } from './metrics.ts';

/** What a probe answers: 200 with the detail when `healthy`, else 503 `{error, detail}`. */
export interface ProbeStatus {
  healthy: boolean;
  detail: Record<string, unknown>;
}

/**
 * The worker's probes and /metrics:
 * - `/healthz` (liveness, and the startup probe): the process answers. The server starts once the
 *   model is loaded, and it answers while a job runs (inference is on its own thread). It does not
 *   depend on Redis or the object store: an outage of either must not restart every worker (each
 *   restart drops its job and loads the model again); the worker rides it out and resumes.
 * - `/readyz` (readiness): the dependencies — `ready()`, i.e. the heartbeat reached Redis within
 *   its TTL and the worker is not stopping. A worker that is not ready is kept out of rollouts'
 *   availability count, not restarted.
 */
export function startHealthServer(opts: {
  port: number;
  metrics: WorkerMetrics;
  ready: () => ProbeStatus;
  /** Liveness beyond "the process answers" (default: always alive). */
  live?: () => ProbeStatus;
}): Promise<http.Server> {
  const started = Date.now();
  const live = opts.live ?? ((): ProbeStatus => ({ healthy: true, detail: {} }));
  const answer = (res: http.ServerResponse, s: ProbeStatus, failure: string): void => {
    res.writeHead(s.healthy ? 200 : 503, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(s.healthy ? { status: 'ok', ...s.detail } : { ...s.detail, error: failure, detail: JSON.stringify(s.detail) }));
  };
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '').split('?')[0];
    if (url === '/healthz') {
      const s = live();
      answer(res, { healthy: s.healthy, detail: { uptimeSec: Math.round((Date.now() - started) / 1000), ...s.detail } }, 'unhealthy');
      return;
    }
    if (url === '/readyz') {
      answer(res, opts.ready(), 'not_ready');
      return;
    }
    if (url === '/metrics') {
      opts.metrics.registry
        .metrics()
        .then((body) => {
          res.writeHead(200, { 'Content-Type': opts.metrics.registry.contentType });
          res.end(body);
        })
        .catch(() => {
          res.writeHead(500).end();
        });
      return;
    }
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ error: 'not_found', detail: 'worker serves /healthz, /readyz and /metrics' }));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, '0.0.0.0', () => resolve(server));
  });
}
