/**
 * `npm run prepare-model [-- --profile int8-transformer | --all-profiles]`: produces the optimized
 * HTDemucs graph (docs/separation.md › Graph rewrites) for the quality profile (QUALITY_PROFILE,
 * default exact; docs/separation.md › Quality profiles) and its fingerprint beside the weights (or
 * in MODEL_CACHE_DIR), so no engine pays for producing it at its first start. Run by the worker
 * image's build (every profile) and by the test setup (exact); a cached graph is only checked.
 * Exit 1 when the rewrite had to fall back to the original graph.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_PROFILE, loadConfigOrExit, QUALITY_PROFILES, isQualityProfile, type QualityProfile } from '@msaas/common';
import { createEngine, defaultModelPath } from '../worker/src/separation/index.ts';

export async function prepareModel(
  opts: { modelPath?: string; cacheDir?: string; profile?: QualityProfile; log?: (line: string) => void } = {},
): Promise<string> {
  const log = opts.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const requested = opts.profile ?? DEFAULT_PROFILE;
  const warnings: string[] = [];
  const started = performance.now();
  const engine = await createEngine({
    modelPath: opts.modelPath ?? defaultModelPath(),
    profile: requested,
    ...(opts.cacheDir ? { graphCacheDir: opts.cacheDir } : {}),
    onWarning: (w) => warnings.push(w),
  });
  const { graph, graphPath, profile } = engine.options;
  await engine.close();
  for (const w of warnings) log(`warning: ${w}`);
  if (graph !== 'optimized' || profile !== requested) {
    throw new Error(`the optimized graph (${requested}) could not be produced: ${warnings.join('; ') || 'unknown reason'}`);
  }
  log(`optimized graph (${profile}) ready: ${graphPath} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
  return graphPath;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const config = loadConfigOrExit();
  const { values } = parseArgs({ options: { profile: { type: 'string' }, 'all-profiles': { type: 'boolean' } } });
  const one = values.profile ?? config.QUALITY_PROFILE ?? DEFAULT_PROFILE;
  const fail = (message: string): never => {
    process.stderr.write(`prepare-model: ${message}\n`);
    process.exit(1);
  };
  if (!isQualityProfile(one)) fail(`invalid --profile: ${one} (${QUALITY_PROFILES.join(', ')})`);
  const profiles: QualityProfile[] = values['all-profiles'] ? [...QUALITY_PROFILES] : [one as QualityProfile];
  const base = { ...(config.MODEL_PATH ? { modelPath: config.MODEL_PATH } : {}), ...(config.MODEL_CACHE_DIR ? { cacheDir: config.MODEL_CACHE_DIR } : {}) };
  for (const profile of profiles) {
    await prepareModel({ ...base, profile }).catch((err: unknown) => fail(err instanceof Error ? err.message : String(err)));
  }
}
