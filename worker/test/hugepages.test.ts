import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HUGEPAGES_TUNABLE, hasHugePagesTunable, withHugePages } from '../src/separation/hugepages.ts';

const MODULE = fileURLToPath(new URL('../src/separation/hugepages.ts', import.meta.url));

describe('glibc huge pages for the model processes', () => {
  it('adds the tunable to GLIBC_TUNABLES, keeps the other tunables, and leaves an operator-set hugetlb alone', () => {
    expect(withHugePages({}).GLIBC_TUNABLES).toBe(HUGEPAGES_TUNABLE);
    expect(withHugePages({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=1' }).GLIBC_TUNABLES).toBe(`glibc.malloc.arena_max=1:${HUGEPAGES_TUNABLE}`);
    const operator = { GLIBC_TUNABLES: 'glibc.malloc.hugetlb=0' };
    expect(withHugePages(operator)).toBe(operator);
    expect(hasHugePagesTunable(operator)).toBe(true);
    expect(hasHugePagesTunable({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=1' })).toBe(false);
  });

  it('re-executes a one-shot process with the tunable and passes its exit code back; not again inside the child, nor when disabled', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'msaas-hugepages-'));
    try {
      const script = path.join(dir, 'probe.ts');
      writeFileSync(script, [
        `import { reexecWithHugePages } from ${JSON.stringify(MODULE)};`,
        `const again = reexecWithHugePages(process.env, process.env.DISABLE !== '1');`,
        `if (again) { again.then((code) => { console.log('parent got ' + code); process.exit(code); }); }`,
        `else { console.log('child tunables ' + (process.env.GLIBC_TUNABLES ?? '')); process.exit(7); }`,
      ].join('\n'));
      const env = { ...process.env, GLIBC_TUNABLES: 'glibc.malloc.arena_max=4' };
      const r = spawnSync(process.execPath, ['--import', 'tsx', script], { env, encoding: 'utf8' });
      expect(r.stdout).toContain(`child tunables glibc.malloc.arena_max=4:${HUGEPAGES_TUNABLE}`);
      expect(r.stdout).toContain('parent got 7');
      expect(r.status).toBe(7);
      const off = spawnSync(process.execPath, ['--import', 'tsx', script], { env: { ...env, DISABLE: '1' }, encoding: 'utf8' });
      expect(off.stdout.trim()).toBe('child tunables glibc.malloc.arena_max=4');
      expect(off.status).toBe(7);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
