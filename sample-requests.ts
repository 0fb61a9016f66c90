/**
 * Submits every MP3 given on the command line (files or folders; default: ./samples), follows each
 * job and downloads its four stems into ./output, then prints a summary — like the lab's sample-requests.py.
 *   npx tsx sample-requests.ts [song.mp3 | folder ...]     (REST=host:port, default localhost:5000)
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { FOLLOW_TIMEOUT_MS, clientFromEnv, describe, downloadStems } from './scripts/api-client.ts';

function mp3Files(args: string[]): string[] {
  const out: string[] = [];
  for (const arg of args.length ? args : ['samples']) {
    const st = statSync(arg, { throwIfNoEntry: false });
    if (!st) console.error(`skipping ${arg}: not found`);
    else if (st.isDirectory()) out.push(...readdirSync(arg).filter((f) => f.toLowerCase().endsWith('.mp3')).sort().map((f) => path.join(arg, f)));
    else out.push(arg);
  }
  return out;
}

const api = clientFromEnv();
const files = mp3Files(process.argv.slice(2));
if (files.length === 0) {
  console.error('no MP3 files found (give files or folders; `npx tsx scripts/make-sample.ts` makes samples/generated-short.mp3)');
  process.exit(1);
}
const started = Date.now();
const jobs = [];
for (const file of files) {
  const name = path.basename(file, path.extname(file));
  const { hash, reason } = await api.submit(readFileSync(file), { callback: { url: 'http://localhost:5000', data: { mp3: path.basename(file), data: 'to be returned' } } });
  console.log(`${name}: ${reason} (${hash.slice(0, 12)}…)`);
  jobs.push({ name, hash });
}
const summary = [];
for (const { name, hash } of jobs) {
  const t0 = Date.now();
  const final = await api.follow(hash, { onChange: (s) => console.log(`  ${name}: ${describe(s)}`), timeoutMs: FOLLOW_TIMEOUT_MS });
  const stems = final.state === 'done' ? await downloadStems(api, hash, 'output', name) : [];
  summary.push({ name, state: final.state, waitedSec: ((Date.now() - t0) / 1000).toFixed(1), stems: stems.map((s) => `${s.track} ${(s.bytes / 1024).toFixed(0)} kB`).join(', '), error: final.error ?? '' });
}
console.table(summary);
console.log(`${summary.filter((s) => s.state === 'done').length}/${summary.length} songs separated in ${((Date.now() - started) / 1000).toFixed(1)} s; stems in ./output`);
process.exit(summary.every((s) => s.state === 'done') ? 0 : 1);
