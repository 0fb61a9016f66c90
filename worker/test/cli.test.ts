import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { synthesizeMp3 } from '../fixtures/synth.ts';
import { scanMp3 } from '../src/separation/index.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CLI = path.join(ROOT, 'worker/src/cli.ts');
const TSX = path.join(ROOT, 'node_modules/.bin/tsx');

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(TSX, [CLI, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('separate CLI', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'msaas-cli-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes <name>-<track>.mp3 for the four tracks', async () => {
    const input = path.join(dir, 'tiny song.mp3');
    writeFileSync(input, await synthesizeMp3({ seconds: 2, seed: 2 }));
    const out = path.join(dir, 'out');
    const r = run([input, '-o', out, '--threads', '2', '--overlap', '0.25']);
    expect(r.stderr).toMatch(/100%/); // progress bar
    expect(r.status).toBe(0);
    const files = readdirSync(out).sort();
    expect(files).toEqual(['tiny song-bass.mp3', 'tiny song-drums.mp3', 'tiny song-other.mp3', 'tiny song-vocals.mp3']);
    for (const f of files) expect(scanMp3(new Uint8Array(readFileSync(path.join(out, f)))).channels).toBe(2);
  }, 120_000);

  it('exits non-zero with a one-line reason on bad input', () => {
    const input = path.join(dir, 'not-audio.mp3');
    writeFileSync(input, 'hello, this is text');
    const r = run([input, '-o', path.join(dir, 'out2')]);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^error: bad input \(unsupported_format\)/);
  });

  it('exits non-zero on a missing file and on bad usage', () => {
    const missing = run([path.join(dir, 'missing.mp3'), '-o', dir]);
    expect(missing.status).toBe(2);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(run([path.join(dir, 'x.mp3')]).status).toBe(1);
  });

  it('refuses an unknown --profile, and an approximate profile with --original-graph, naming the choices', () => {
    const bogus = run([path.join(dir, 'x.mp3'), '-o', dir, '--profile', 'fastest']);
    expect(bogus.status).toBe(1);
    expect(bogus.stderr).toMatch(/invalid --profile: fastest \(exact, int8-transformer\)/);
    const clash = run([path.join(dir, 'x.mp3'), '-o', dir, '--profile', 'int8-transformer', '--original-graph']);
    expect(clash.status).toBe(1);
    expect(clash.stderr).toMatch(/cannot run with --original-graph/);
  });
});
