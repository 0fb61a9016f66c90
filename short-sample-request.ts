/**
 * One short clip end to end, like the lab's short-sample-request.py:
 *   npx tsx short-sample-request.ts [clip.mp3]      (REST=host:port, default localhost:5000)
 * Without an argument it uses samples/generated-short.mp3, synthesizing it first if missing.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { FOLLOW_TIMEOUT_MS, clientFromEnv, describe, downloadStems } from './scripts/api-client.ts';
import { synthesizeMp3 } from './worker/fixtures/synth.ts';

const DEFAULT_CLIP = 'samples/generated-short.mp3';

async function clipBytes(arg: string | undefined): Promise<{ name: string; bytes: Uint8Array }> {
  if (arg) return { name: path.basename(arg, path.extname(arg)), bytes: readFileSync(arg) };
  if (!existsSync(DEFAULT_CLIP)) {
    mkdirSync(path.dirname(DEFAULT_CLIP), { recursive: true });
    writeFileSync(DEFAULT_CLIP, await synthesizeMp3({ seconds: 6, seed: 1 }));
    console.log(`synthesized ${DEFAULT_CLIP}`);
  }
  return { name: 'generated-short', bytes: readFileSync(DEFAULT_CLIP) };
}

const api = clientFromEnv();
const { name, bytes } = await clipBytes(process.argv[2]);
const started = Date.now();
const { hash, reason } = await api.submit(bytes, { callback: { url: 'http://localhost:5000', data: { mp3: name, data: 'to be returned' } } });
console.log(`${name}: ${reason} (hash ${hash})`);
console.log(`queue: ${JSON.stringify((await api.queue()).queue)}`);
const final = await api.follow(hash, { onChange: (s) => console.log(`  ${describe(s)}`), timeoutMs: FOLLOW_TIMEOUT_MS });
if (final.state === 'failed') {
  console.error(`${name}: ${describe(final)}`);
  process.exit(1);
}
for (const f of await downloadStems(api, hash, 'output', name)) console.log(`  ${f.track.padEnd(6)} ${f.file} (${(f.bytes / 1024).toFixed(0)} kB)`);
console.log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
