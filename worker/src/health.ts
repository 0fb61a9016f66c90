import http from 'node:http';
import type { WorkerMetrics } from './metrics.ts';

/** /healthz (alive: heartbeat reached Redis recently) and /metrics for probes and Prometheus. */
export function startHealthServer(opts: {
  port: number;
  metrics: WorkerMetrics;
  status: () => { healthy: boolean; detail: Record<string, unknown> };
}): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.url === '/healthz' || req.url === '/readyz') {
      const s = opts.status();
      res.writeHead(s.healthy ? 200 : 503, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(s.healthy ? { status: 'ok', ...s.detail } : { error: 'unhealthy', detail: JSON.stringify(s.detail), ...s.detail }));
      return;
    }
    if (req.url === '/metrics') {
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
    res.end(JSON.stringify({ error: 'not_found', detail: 'worker serves /healthz and /metrics' }));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, '0.0.0.0', () => resolve(server));
  });
}
