/**
 * `npm run prepare-model`: produces the optimized HTDemucs graph (docs/separation.md › Graph
 * rewrites) and its fingerprint beside the weights (or in MODEL_CACHE_DIR), so no engine pays for
 * producing it at its first start. Run by the worker image's build and by the test setup; a cached
 * graph is only checked. Exit 1 when the rewrite had to fall back to the original graph.
 */
import { loadConfigOrExit } from '@msaas/common';
import { createEngine, defaultModelPath } from '../worker/src/separation/index.ts';

export async function prepareModel(opts: { modelPath?: string; cacheDir?: string; log?: (line: string) => void } = {}): Promise<string> {
  const log = opts.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const warnings: string[] = [];
  const started = performance.now();
  const engine = await createEngine({
    modelPath: opts.modelPath ?? defaultModelPath(),
    ...(opts.cacheDir ? { graphCacheDir: opts.cacheDir } : {}),
    onWarning: (w) => warnings.push(w),
  });
  const { graph, graphPath } = engine.options;
  await engine.close();
  for (const w of warnings) log(`warning: ${w}`);
  if (graph !== 'optimized') throw new Error(`the optimized graph could not be produced: ${warnings.join('; ') || 'unknown reason'}`);
  log(`optimized graph ready: ${graphPath} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
  return graphPath;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const config = loadConfigOrExit();
  prepareModel({ ...(config.MODEL_PATH ? { modelPath: config.MODEL_PATH } : {}), ...(config.MODEL_CACHE_DIR ? { cacheDir: config.MODEL_CACHE_DIR } : {}) }).catch((err: unknown) => {
    process.stderr.write(`prepare-model: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
