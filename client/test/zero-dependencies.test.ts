import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const CLIENT = path.resolve(fileURLToPath(new URL('..', import.meta.url)));

describe('@msaas/client', () => {
  it('has no runtime dependency: no dependencies in its package.json, and only type imports outside its own files', () => {
    const pkg = JSON.parse(readFileSync(path.join(CLIENT, 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(pkg.dependencies ?? {}).toEqual({});
    expect(pkg.peerDependencies ?? {}).toEqual({});
    const src = path.join(CLIENT, 'src');
    const runtimeImports: string[] = [];
    for (const file of readdirSync(src).filter((f) => f.endsWith('.ts'))) {
      const text = readFileSync(path.join(src, file), 'utf8');
      for (const m of text.matchAll(/^\s*(import|export)\s+(type\s+)?(?:\*|\{[^}]*\}|[\w$]+)?[^'"\n]*from\s+'([^']+)'/gm)) {
        const [, , typeOnly, from] = m;
        if (!typeOnly && !from!.startsWith('./')) runtimeImports.push(`${file}: ${from}`);
      }
      expect(text, file).not.toMatch(/\brequire\(|import\(\s*'(?!\.\/)/);
    }
    expect(runtimeImports).toEqual([]);
  });
});
