import { loadConfigOrExit, storeEndpointFromConfig } from '@msaas/common';
import { AudioInputError, ModelFileError, createEngine, type DetailedEngine } from './separation/index.ts';
import { buildWorker } from './bootstrap.ts';
import { startHealthServer } from './health.ts';

const config = loadConfigOrExit();
const endpoint = storeEndpointFromConfig(config);
if (!endpoint) {
  process.stderr.write('MINIO_ENDPOINT is not set: point it at MinIO, or run `npm start` for the all-in-one local mode with an embedded store\n');
  process.exit(2);
}

let engine: DetailedEngine;
try {
  engine = await createEngine({
    ...(config.MODEL_PATH ? { modelPath: config.MODEL_PATH } : {}),
    ...(config.ORT_THREADS ? { threads: config.ORT_THREADS } : {}),
    ...(config.ORT_MEMORY_ARENA !== undefined ? { memoryArena: config.ORT_MEMORY_ARENA } : {}),
    ...(config.ORT_GRAPH ? { graph: config.ORT_GRAPH } : {}),
    ...(config.QUALITY_PROFILE ? { profile: config.QUALITY_PROFILE } : {}),
    ...(config.MODEL_CACHE_DIR ? { graphCacheDir: config.MODEL_CACHE_DIR } : {}),
    ...(config.MP3_VBR_QUALITY !== undefined ? { mp3: { vbrQuality: config.MP3_VBR_QUALITY } } : {}),
    maxDurationSec: config.MAX_DURATION_SEC,
  });
} catch (err) {
  if (err instanceof ModelFileError) {
    process.stderr.write(`worker: ${(err as Error).message}\n`);
    process.exit(2);
  }
  throw err;
}

const { worker, logger, metrics, close } = buildWorker(config, endpoint, engine, (err) => err instanceof AudioInputError);
const health = await startHealthServer({ port: config.WORKER_HEALTH_PORT, metrics, ready: () => worker.status() }).catch((err: Error) => {
  logger.warn(`health endpoint not started on ${config.WORKER_HEALTH_PORT}: ${err.message}`);
  return null;
});
// No warm-up segment before taking work: it cost a whole segment's run (≈ 4–6 s here) on every pod
// start, while a first job's first segment runs only ≈ 0.5–2 s slower than the next (docs/kubernetes.md › Cold start).
logger.info(`model graph ${engine.options.graphPath} (quality profile ${engine.options.profile})`);
await worker.start();
process.send?.({ type: 'ready' });

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info(`${signal}: finishing the current job (up to ${config.SHUTDOWN_GRACE_SEC} s) or handing it back`);
  await worker.stop(config.SHUTDOWN_GRACE_SEC * 1000);
  health?.close();
  await engine.close();
  close();
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
