import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RequestHandler } from 'express';

export interface RestMetrics {
  registry: Registry;
  middleware: RequestHandler;
}

/** HTTP and queue-length metrics. Job durations are the worker's (`msaas_worker_job_duration_seconds`). */
export function createMetrics(getQueueLength: () => Promise<number>): RestMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'msaas_rest_' });
  const requests = new Counter({
    name: 'msaas_http_requests_total',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'msaas_http_request_duration_seconds',
    help: 'HTTP request latency',
    labelNames: ['method', 'route'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [registry],
  });
  new Gauge({
    name: 'msaas_queue_length',
    help: 'Work waiting in toWorker: songs, and the ranges of songs split over workers (their per-stem encoding units wait in toEncoder for the side slots of workers already running)',
    registers: [registry],
    async collect() {
      try {
        this.set(await getQueueLength());
      } catch {
        this.set(Number.NaN);
      }
    },
  });
  const middleware: RequestHandler = (req, res, next) => {
    const end = latency.startTimer();
    res.on('finish', () => {
      // Never the raw path: one label set per hostile URL would grow without bound. Without a route
      // (static files, automatic OPTIONS answers, requests refused before routing) the label is fixed.
      const route = req.route?.path ? `${req.baseUrl}${String(req.route.path)}` : res.statusCode < 400 ? 'unrouted' : 'unmatched';
      requests.inc({ method: req.method, route, status: String(res.statusCode) });
      end({ method: req.method, route });
    });
    next();
  };
  return { registry, middleware };
}
