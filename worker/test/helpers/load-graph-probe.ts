// Loads the model the way the engine does (MODEL_PATH, MODEL_CACHE_DIR or os.tmpdir()) and prints, as
// one JSON line, what it loaded and when: seconds since this process started. Run by graph-readonly-cache.test.ts.
import { loadModelGraph } from '../../src/separation/graph/optimized-model.ts';
import { ENGINE_SESSION_DEFAULTS } from '../../src/separation/engine.ts';

const warnings: string[] = [];
const g = await loadModelGraph({
  modelPath: process.env.MODEL_PATH ?? '',
  graph: 'optimized',
  ...(process.env.MODEL_CACHE_DIR ? { cacheDir: process.env.MODEL_CACHE_DIR } : {}),
  warn: (w) => void warnings.push(w),
  sessionOptions: { ...ENGINE_SESSION_DEFAULTS, intraOpNumThreads: 2, enableCpuMemArena: false },
});
const loadedSec = process.uptime();
await g.model.close();
process.stdout.write(`${JSON.stringify({ loadedSec, graph: g.graph, graphPath: g.graphPath, checked: g.checked ?? null, produced: !!g.produced, warnings, uid: process.getuid?.() ?? -1 })}\n`);
