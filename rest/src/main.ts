import { loadConfigOrExit, storeEndpointFromConfig, withTimeout } from '@msaas/common';
import { buildRest } from './bootstrap.ts';
import { createAdminServer, createHttpServer } from './http-server.ts';

const config = loadConfigOrExit();
const endpoint = storeEndpointFromConfig(config);
if (!endpoint) {
  process.stderr.write('MINIO_ENDPOINT is not set: point it at MinIO, or run `npm start` for the all-in-one local mode with an embedded store\n');
  process.exit(2);
}

const rest = await buildRest(config, endpoint);
const { logger } = rest;
// The mix threads load and compile their codecs before rest listens (~0.7 s of CPU each), not in
// the first mix's request; a rest that listens has its memory in place.
await withTimeout(rest.deps.mixThreads.warm(), 30_000, 'not ready within 30 s').catch((err: Error) => logger.error(`mix threads did not start (the first mix starts them): ${err.message}`));
const server = createHttpServer(rest.app);
server.listen(config.PORT, config.HOST, () => {
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.PORT;
  logger.info(`rest listening on http://localhost:${port}`);
  process.send?.({ type: 'listening', port });
});

// With ADMIN_PORT, the probes and Prometheus get their own listener (see routes/health.ts).
const admin = config.ADMIN_PORT === undefined ? null : createAdminServer(rest.deps);
admin?.listen(config.ADMIN_PORT, config.HOST, () => {
  const addr = admin.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.ADMIN_PORT;
  logger.info(`rest admin (/healthz, /readyz, /metrics) listening on http://localhost:${port}`);
  process.send?.({ type: 'admin-listening', port });
});

let shuttingDown = false;
async function shutdown(signal: string): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true;
  logger.info(`${signal}: no new connections; finishing in-flight requests`);
  const force = setTimeout(() => server.closeAllConnections(), config.SHUTDOWN_GRACE_SEC * 1000);
  force.unref();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  // A keep-alive connection whose last request finishes during shutdown turns idle and would hold
  // the server open until keepAliveTimeout: close those as they appear.
  const idle = setInterval(() => server.closeIdleConnections(), 200);
  await rest.deps.events.close(); // ends SSE streams so they do not hold the server open
  await closed;
  admin?.close();
  admin?.closeAllConnections();
  clearInterval(idle);
  clearTimeout(force);
  await rest.close();
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
