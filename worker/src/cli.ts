/**
 * The CLI's entry (`npm run separate -- …`; the command itself is cli-command.ts). glibc takes huge
 * pages only from a tunable read at start (separation/hugepages.ts), so a process started without
 * it runs the same command line again with it — and does so before importing the engine, the
 * decoders and the rest of @msaas/common, which a parent that only waits for its child would load
 * for nothing (≈ 0.6 s here). Only the validated config is read first (MALLOC_HUGEPAGES=0 opts
 * out); a config error is left for the command to report, with its usage text.
 */
import { loadConfig } from '@msaas/common/config';
import { reexecWithHugePages } from './separation/hugepages.ts';

function hugePagesWanted(): boolean {
  try {
    return loadConfig(process.env).MALLOC_HUGEPAGES ?? true;
  } catch {
    return false; // the command reports the bad setting
  }
}

const again = reexecWithHugePages(process.env, hugePagesWanted());
if (again) process.exit(await again);
else await import('./cli-command.ts');
