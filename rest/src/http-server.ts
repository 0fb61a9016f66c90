import http from 'node:http';
import express, { type Express } from 'express';
import type { AppDeps } from './deps.ts';
import { errorHandler, notFoundHandler } from './errors.ts';
import { adminRouter } from './routes/health.ts';

export interface HttpServerTimeouts {
  /** Whole request (headers + body) must arrive within this; generous for big uploads on slow links. */
  requestTimeoutMs?: number;
  /** Headers must arrive within this (slowloris). */
  headersTimeoutMs?: number;
  /** A socket with no bytes in either direction for this long is closed (a body that stops mid-way). */
  idleTimeoutMs?: number;
  keepAliveTimeoutMs?: number;
  /** How often Node checks the two limits above (its default, 30 s, makes them coarse). */
  checkIntervalMs?: number;
}

/**
 * The HTTP server in front of the app, with the limits that keep a stalled or trickling client from
 * holding a socket for the whole request timeout. main.ts uses the defaults; tests pass short ones.
 */
export function createHttpServer(app: Express, t: HttpServerTimeouts = {}): http.Server {
  const server = http.createServer(
    {
      requestTimeout: t.requestTimeoutMs ?? 10 * 60_000,
      headersTimeout: t.headersTimeoutMs ?? 20_000,
      keepAliveTimeout: t.keepAliveTimeoutMs ?? 5_000,
      connectionsCheckingInterval: t.checkIntervalMs ?? 5_000,
    },
    app,
  );
  // Without a 'timeout' listener Node destroys an idle socket; SSE pings (15 s) and streamed
  // downloads count as activity, so only a peer that has gone quiet is cut.
  server.setTimeout(t.idleTimeoutMs ?? 60_000);
  return server;
}

/**
 * The admin listener (ADMIN_PORT): /healthz, /readyz and /metrics for the kubelet and Prometheus,
 * on a port the Service and Ingress do not route. Nothing else is served there.
 */
export function createAdminServer(deps: AppDeps): http.Server {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(adminRouter(deps));
  app.use(notFoundHandler);
  app.use(errorHandler(deps.logger));
  const server = http.createServer({ requestTimeout: 30_000, headersTimeout: 10_000, keepAliveTimeout: 5_000 }, app);
  server.setTimeout(30_000);
  return server;
}
