/**
 * Once per test run: the optimized model graph exists before any test creates an engine, so no
 * test's beforeAll pays for producing it (about 15–20 s on a quiet 2-core machine, 2 minutes under
 * load) and parallel test files do not each produce it. With the cache present this only hashes
 * the weights. Without the weights nothing is done (the model tests say so themselves).
 */
import { existsSync } from 'node:fs';
import { cachedOptimizedGraph, defaultModelPath } from '../worker/src/separation/index.ts';
import { prepareModel } from '../scripts/prepare-model.ts';

export default async function setup(): Promise<void> {
  let modelPath: string;
  try {
    modelPath = defaultModelPath();
  } catch {
    return;
  }
  if (!existsSync(modelPath) || (await cachedOptimizedGraph(modelPath))) return;
  await prepareModel({ modelPath, log: (line) => process.stdout.write(`[test setup] ${line}\n`) });
}
