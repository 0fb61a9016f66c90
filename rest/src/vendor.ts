import { createRequire } from 'node:module';
import path from 'node:path';
import { Router } from 'express';

/**
 * The page's third-party browser files, served from node_modules as they ship (no bundler, no
 * copy step): `/vendor/signalsmith-stretch.mjs`, the time-stretch library (an ES module with its
 * WASM inlined; the page loads the same file as its AudioWorklet module).
 */
export function vendorRouter(): Router {
  const require = createRequire(import.meta.url);
  // The package exports its UMD file to require(); the ES module sits beside it.
  const stretch = path.join(path.dirname(require.resolve('signalsmith-stretch')), 'SignalsmithStretch.mjs');
  const router = Router();
  router.get('/vendor/signalsmith-stretch.mjs', (_req, res) => {
    res.sendFile(stretch, { maxAge: '1h', headers: { 'Content-Type': 'text/javascript; charset=utf-8' } });
  });
  return router;
}
