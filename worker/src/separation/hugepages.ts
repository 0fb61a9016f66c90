// Transparent huge pages for onnxruntime's tensors. glibc's malloc asks the kernel for huge pages
// (madvise(MADV_HUGEPAGE) on its mmap'd chunks) only when the process starts with the tunable
// `glibc.malloc.hugetlb=1`; the model's activations then take 2 MiB pages instead of 4 KiB ones:
// the first runs stop paying page faults, and steady runs stop paying TLB misses (the measured
// gain and cost: docs/separation.md › Huge pages).
// glibc reads GLIBC_TUNABLES once, at start: processes that run the model are started with it
// (the worker image's ENV, `npm start`'s worker, the CLI re-executing itself, the benchmark's child).
import { spawn } from 'node:child_process';

export const HUGEPAGES_TUNABLE = 'glibc.malloc.hugetlb=1';

/** Whether an environment already starts glibc with huge pages (any hugetlb setting counts as the operator's choice). */
export function hasHugePagesTunable(env: NodeJS.ProcessEnv): boolean {
  return /(^|:)glibc\.malloc\.hugetlb=/.test(env.GLIBC_TUNABLES ?? '');
}

/** `env` with the huge-page tunable added to its GLIBC_TUNABLES (other tunables kept). */
export function withHugePages(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (hasHugePagesTunable(env)) return env;
  const tunables = env.GLIBC_TUNABLES ? `${env.GLIBC_TUNABLES}:${HUGEPAGES_TUNABLE}` : HUGEPAGES_TUNABLE;
  return { ...env, GLIBC_TUNABLES: tunables };
}

/**
 * For a one-shot command (the CLI): when this process was started without the tunable on Linux,
 * runs the same command line again with it, forwarding SIGINT/SIGTERM, and resolves with the
 * child's exit code; resolves null when this process should go on itself.
 */
export function reexecWithHugePages(env: NodeJS.ProcessEnv, enabled: boolean): Promise<number> | null {
  if (!enabled || process.platform !== 'linux' || hasHugePagesTunable(env)) return null;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit', env: withHugePages(env) });
    const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
    const onInt = forward('SIGINT');
    const onTerm = forward('SIGTERM');
    process.on('SIGINT', onInt).on('SIGTERM', onTerm);
    child.on('error', () => resolve(1));
    child.on('exit', (code, signal) => {
      process.off('SIGINT', onInt).off('SIGTERM', onTerm);
      resolve(code ?? (signal === 'SIGINT' ? 130 : signal === 'SIGTERM' ? 143 : 1));
    });
  });
}
