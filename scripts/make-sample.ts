/**
 * Writes a generated clip (default samples/generated-short.mp3, 6 s) for trying the service:
 * `npx tsx scripts/make-sample.ts [out.mp3] [--seconds 6] [--seed 1]`. The repository ships no
 * recorded audio; this is the synthetic music from worker/src/synth.ts.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { synthesizeMp3 } from '../worker/fixtures/synth.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { seconds: { type: 'string', default: '6' }, seed: { type: 'string', default: '1' } },
});
const out = positionals[0] ?? 'samples/generated-short.mp3';
const seconds = Number(values.seconds);
const seed = Number(values.seed);
if (!(seconds > 0) || !Number.isInteger(seed)) {
  console.error('usage: npx tsx scripts/make-sample.ts [out.mp3] [--seconds 6] [--seed 1]');
  process.exit(1);
}
await mkdir(path.dirname(out), { recursive: true });
await writeFile(out, await synthesizeMp3({ seconds, seed }));
console.log(`${out} (${seconds} s, seed ${seed})`);
