import express, { type Express } from 'express';
import helmet from 'helmet';
import type { Logger } from 'pino';
import { escapeControl, loadTenantDirectory } from '@msaas/common';
import type { AppDeps } from './deps.ts';
import { errorHandler, notFoundHandler } from './errors.ts';
import { rateLimit, requireApiKey } from './auth.ts';
import { expressTrustSetting, identifyClient, parseTrustProxy } from './client-address.ts';
import { refuseCrossSiteStateChanges } from './cross-site.ts';
import { healthRouter } from './routes/health.ts';
import { infoRouter } from './routes/info.ts';
import { jobsRouter } from './routes/jobs.ts';
import { libraryRouter } from './routes/library.ts';
import { eventsRouter } from './routes/job-event-stream.ts';
import { liveRouter } from './routes/live.ts';
import { piecesRouter } from './routes/pieces.ts';
import { zipRouter } from './routes/zip.ts';
import { mixRouter } from './routes/mix.ts';
import { queueRouter } from './routes/queue.ts';
import { separateRouter } from './routes/separate.ts';
import { directUploadsFor, uploadsRouter } from './routes/uploads.ts';
import { trackRouter } from './routes/track.ts';
import { refuseEncodedBodies, refuseUnexpectedBodies } from './body-guard.ts';
import { clusterRouter } from './routes/cluster.ts';
import { vendorRouter } from './vendor.ts';
import { openapiRouter } from './routes/openapi.ts';
import { refuseUnknownQuery } from './strict-params.ts';

const UNLOGGED = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * One line per request that went wrong (4xx warn, 5xx error), and per success only at debug level.
 * Cheaper than a child logger per request (pino-http), which showed in the status-read profile.
 */
function accessLog(logger: Logger): express.RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const status = res.statusCode;
      const level = status >= 500 ? 'error' : status >= 400 ? 'warn' : 'debug';
      if (!logger.isLevelEnabled(level) || UNLOGGED.has(req.path)) return;
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const url = escapeControl(req.originalUrl.slice(0, 200));
      logger[level]({ req: { method: req.method, url }, res: { statusCode: status }, responseTime: Math.round(ms) }, `${req.method} ${url} ${status} ${ms.toFixed(0)} ms`);
    });
    next();
  };
}

/** The Express app with its dependencies injected; main.ts listens, tests drive it with supertest. */
export function createApp(deps: AppDeps): Express {
  const { config, logger, metrics } = deps;
  const app = express();
  app.disable('x-powered-by');
  const trust = parseTrustProxy(config.TRUST_PROXY);
  app.set('trust proxy', expressTrustSetting(trust));
  app.set('etag', false);

  app.use(
    helmet({
      contentSecurityPolicy: {
        directives: {
          defaultSrc: ["'self'"],
          mediaSrc: ["'self'", 'blob:'],
          imgSrc: ["'self'", 'data:', 'blob:'],
          connectSrc: ["'self'"],
          styleSrc: ["'self'"],
          // 'wasm-unsafe-eval': the page's time-stretch library compiles WebAssembly (no JS eval).
          scriptSrc: ["'self'", "'wasm-unsafe-eval'"],
        },
      },
      crossOriginEmbedderPolicy: false,
    }),
  );
  app.use(identifyClient(trust));
  app.use(metrics.middleware);
  app.use(accessLog(logger));
  app.use(healthRouter(deps));
  app.use(openapiRouter());
  if (deps.publicDir) {
    // The page's files only: an API request must not cost a filesystem stat on its way to its route.
    const page = express.static(deps.publicDir, { index: 'index.html', maxAge: 0 });
    app.use((req, res, next) => (req.path.startsWith('/apiv1/') ? next() : page(req, res, next)));
    app.use(vendorRouter());
  }

  app.use('/apiv1', requireApiKey(loadTenantDirectory(config), { redis: deps.queue.redis, keys: deps.queue.keys, perMinute: config.AUTH_FAIL_LIMIT_PER_MIN }));
  app.use('/apiv1', rateLimit(deps.queue.redis, deps.queue.keys, config.RATE_LIMIT_PER_MIN));
  app.use('/apiv1', refuseCrossSiteStateChanges);
  app.use('/apiv1', refuseUnknownQuery);
  app.use('/apiv1', refuseEncodedBodies);
  // Routes that take a body read it themselves (within their own limits); every other /apiv1 route refuses one.
  const directUploads = directUploadsFor(deps);
  app.use(separateRouter(deps, directUploads));
  app.use(uploadsRouter(deps, directUploads));
  app.use('/apiv1', refuseUnexpectedBodies);
  app.use(infoRouter(deps));
  app.use(queueRouter(deps));
  app.use(eventsRouter(deps));
  app.use(liveRouter(deps));
  app.use(piecesRouter(deps));
  app.use(zipRouter(deps));
  app.use(mixRouter(deps));
  app.use(libraryRouter(deps));
  app.use(jobsRouter(deps));
  app.use(trackRouter(deps));
  if (deps.cluster) app.use(clusterRouter(deps.cluster));

  app.use(notFoundHandler);
  app.use(errorHandler(logger));
  return app;
}
