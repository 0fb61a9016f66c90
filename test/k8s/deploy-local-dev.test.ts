import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireTool } from '../helpers/env.ts';
import { repoRoot } from './render.ts';

const script = path.join(repoRoot, 'deploy-local-dev.sh');
const shellcheck = requireTool('shellcheck', { probe: ['--version'], neededFor: 'the deploy-local-dev.sh lint test', install: 'apt-get install shellcheck, as scripts/ci-prereqs.sh does' });

// A stand-in kubectl: records each call's argv (one line per call), answers the questions the
// script asks, and for port-forward stays alive like the real one until it is killed.
const STUB = `#!/usr/bin/env bash
printf '%s\\n' "$*" >> "$STUB_LOG"
case " $* " in
  *" config current-context "*)
    if [ -n "\${STUB_NO_CONTEXT:-}" ]; then echo "error: current-context is not set" >&2; exit 1; fi
    echo "\${STUB_CONTEXT:-kind-msaas}" ;;
  *" version "*)
    if [ -n "\${STUB_UNREACHABLE:-}" ]; then echo "Unable to connect to the server" >&2; exit 1; fi ;;
  *" port-forward "*)
    echo "Forwarding from 127.0.0.1:$$ -> 0"
    trap 'kill "$child" 2>/dev/null; exit 0' TERM INT
    sleep 300 & child=$!
    wait "$child" ;;
  *" get secret \${STUB_FOREIGN_SECRET:-none} -o name "*) echo "secret/\${STUB_FOREIGN_SECRET}" ;;
  *" get secret \${STUB_OUR_SECRET:-none} -o name "*) echo "secret/\${STUB_OUR_SECRET}" ;;
  *" get secrets -l msaas-credentials=development -o name "*) [ -z "\${STUB_OUR_SECRET:-}" ] || echo "secret/\${STUB_OUR_SECRET}" ;;
  *" get secret redis-users "*"REDIS_REST_PASSWORD"*) printf '%s' "$(printf restpw | base64)" ;;
  *" get secret redis-users "*"REDIS_WORKER_PASSWORD"*) printf '%s' "$(printf workerpw | base64)" ;;
  *" get secret redis-users "*"REDIS_LOGS_PASSWORD"*) printf '%s' "$(printf logspw | base64)" ;;
  *" get secret minio-users "*"REST_ACCESS_KEY"*) printf '%s' "$(printf restkey | base64)" ;;
  *" get secret minio-users "*"REST_SECRET_KEY"*) printf '%s' "$(printf restsecret | base64)" ;;
  *" get secret minio-users "*"WORKER_ACCESS_KEY"*) printf '%s' "$(printf workerkey | base64)" ;;
  *" get secret minio-users "*"WORKER_SECRET_KEY"*) printf '%s' "$(printf workersecret | base64)" ;;
  *) : ;;
esac
`;

let dir: string;
let log: string;
let state: string;
const spawned = new Set<number>();

function run(args: string[] = [], env: Record<string, string> = {}) {
  const r = spawnSync('bash', [script, ...args], {
    encoding: 'utf8',
    timeout: 20_000,
    env: {
      ...process.env,
      PATH: `${path.join(dir, 'bin')}:${process.env.PATH}`,
      STUB_LOG: log,
      MSAAS_STATE_DIR: state,
      // CI runs a real Redis on 6379: the stub binds nothing, but keep clear of real ports anyway.
      REDIS_LOCAL_PORT: '16379',
      MINIO_LOCAL_PORT: '19000',
      MINIO_CONSOLE_LOCAL_PORT: '19001',
      ...env,
    },
  });
  return r;
}

function pids(): Record<string, number> {
  const file = path.join(state, 'port-forward-msaas-dev.pids');
  if (!existsSync(file)) return {};
  const out: Record<string, number> = {};
  for (const line of readFileSync(file, 'utf8').trim().split('\n')) {
    const [name, pid] = line.split(' ');
    out[name!] = Number(pid);
    spawned.add(Number(pid));
  }
  return out;
}

/** Running, not a zombie: the forwards outlive the script and get reparented, and in a container
 *  without an init that reaps, a killed one lingers as a zombie that kill(pid, 0) still finds. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no procfs: kill(pid, 0) is all we have
  }
}

async function waitDead(pid: number): Promise<boolean> {
  for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 20));
  return !alive(pid);
}

function calls(): string[] {
  return existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : [];
}

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'msaas-deploy-'));
  log = path.join(dir, 'kubectl.log');
  state = path.join(dir, 'state');
  spawnSync('mkdir', ['-p', path.join(dir, 'bin')]);
  writeFileSync(path.join(dir, 'bin', 'kubectl'), STUB);
  chmodSync(path.join(dir, 'bin', 'kubectl'), 0o755);
});

afterAll(() => {
  for (const pid of spawned) if (alive(pid)) process.kill(pid, 'SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

describe('deploy-local-dev.sh', () => {
  it('passes bash -n', () => {
    const r = spawnSync('bash', ['-n', script], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  shellcheck.it('passes shellcheck', () => {
    const r = spawnSync('shellcheck', ['--severity=style', script], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('uses strict mode', () => {
    expect(readFileSync(script, 'utf8')).toMatch(/^set -euo pipefail$/m);
  });

  it('--help explains itself and touches nothing', () => {
    writeFileSync(log, '');
    const r = run(['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Usage: deploy-local-dev\.sh/);
    expect(r.stdout).toMatch(/--stop/);
    expect(calls()).toEqual([]);
  });

  it('fails with a clear message when kubectl is missing', () => {
    const r = run([], { KUBECTL: 'kubectl-that-does-not-exist' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/kubectl not found/);
  });

  it('fails with a clear message when there is no current context, before applying anything', () => {
    writeFileSync(log, '');
    const r = run([], { STUB_NO_CONTEXT: '1' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/no current kube context/);
    expect(calls()).toEqual(['config current-context']);
  });

  it('fails with a clear message when the cluster cannot be reached, before applying anything', () => {
    writeFileSync(log, '');
    const r = run([], { STUB_UNREACHABLE: '1' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/cannot reach the API server of context 'kind-msaas'/);
    expect(calls().some((l) => l.includes('apply'))).toBe(false);
  });

  it.each(['kind-msaas', 'minikube', 'docker-desktop', 'k3d-dev', 'rancher-desktop', 'colima', 'orbstack', 'microk8s'])('accepts the local context %s (goes on to ask its API server)', (context) => {
    writeFileSync(log, '');
    const r = run([], { STUB_CONTEXT: context, STUB_UNREACHABLE: '1' });
    expect(r.stderr).not.toMatch(/does not look like a local cluster/);
    expect(r.stderr).toContain(`cannot reach the API server of context '${context}'`);
    expect(calls()).toContain(`--context ${context} --request-timeout=15s version`);
  });

  it('refuses a context that does not look local, before contacting its API server or applying anything', () => {
    for (const context of ['prod-eu', 'arn:aws:eks:eu-west-1:123456789012:cluster/msaas', 'gke_acme_europe-west1_msaas', 'kind']) {
      writeFileSync(log, '');
      const r = run([], { STUB_CONTEXT: context });
      expect(r.status, context).not.toBe(0);
      expect(r.stderr).toContain(`context '${context}' does not look like a local cluster`);
      expect(r.stderr).toMatch(/--force/);
      expect(calls(), context).toEqual(['config current-context']);
    }
  });

  it('deploys to such a context with --force, saying so', async () => {
    writeFileSync(log, '');
    const r = run(['--force'], { STUB_CONTEXT: 'prod-eu' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/--force: deploying development Redis and MinIO to context prod-eu/);
    expect(calls()).toContain(`--context prod-eu -n msaas-dev apply -k ${repoRoot}/minio`);
    const p = pids();
    expect(run(['--stop']).status).toBe(0);
    for (const pid of Object.values(p)) expect(await waitDead(pid)).toBe(true);
  });

  it.each(['minio-credentials', 'minio-users', 'redis-users'])('never replaces a %s Secret it did not create, even with --force', (secret) => {
    writeFileSync(log, '');
    const r = run(['--force'], { STUB_FOREIGN_SECRET: secret });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(`already has a Secret ${secret} that this script did not create`);
    expect(calls().some((l) => l.includes(' apply '))).toBe(false);
  });

  it('re-applies over the development Secrets it made itself (they carry its label)', async () => {
    writeFileSync(log, '');
    const r = run([], { STUB_OUR_SECRET: 'minio-credentials' });
    expect(r.status, r.stderr).toBe(0);
    expect(calls()).toContain('--context kind-msaas -n msaas-dev get secrets -l msaas-credentials=development -o name');
    const p = pids();
    expect(run(['--stop']).status).toBe(0);
    for (const pid of Object.values(p)) expect(await waitDead(pid)).toBe(true);
  });

  it('applies redis/ and minio/, waits for them, and port-forwards 6379, 9000 and 9001 in the background', () => {
    writeFileSync(log, '');
    const r = run();
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const c = calls();
    const pre = '--context kind-msaas -n msaas-dev';
    expect(c[0]).toBe('config current-context');
    expect(c).toContain(`${pre} apply -k ${repoRoot}/redis`);
    expect(c).toContain(`${pre} apply -k ${repoRoot}/minio`);
    expect(c).toContain(`${pre} rollout status statefulset/redis --timeout=180s`);
    expect(c).toContain(`${pre} rollout status statefulset/minio --timeout=180s`);
    expect(c).toContain(`${pre} wait --for=condition=complete job/minio-buckets --timeout=180s`);
    // waits happen after the applies, forwards after the waits
    const at = (s: string) => c.findIndex((l) => l.includes(s));
    expect(at('apply -k')).toBeLessThan(at('rollout status'));
    expect(at('job/minio-buckets')).toBeLessThan(at('port-forward'));
    expect(c).toContain(`${pre} port-forward --address 127.0.0.1 svc/redis 16379:6379`);
    expect(c).toContain(`${pre} port-forward --address 127.0.0.1 svc/minio 19000:9000 19001:9001`);
    const p = pids();
    expect(Object.keys(p).sort()).toEqual(['minio', 'redis']);
    for (const pid of Object.values(p)) expect(alive(pid)).toBe(true);
    expect(r.stdout).toContain(`redis: pid ${p.redis}`);
    expect(r.stdout).toContain(`minio: pid ${p.minio}`);
    expect(r.stdout).toMatch(/--stop/);
    // each service as its own Redis ACL user and MinIO user, from the development Secrets
    expect(r.stdout).toContain('REDIS_URL=redis://rest:restpw@127.0.0.1:16379 MINIO_ENDPOINT=127.0.0.1 MINIO_PORT=19000');
    expect(r.stdout).toContain('MINIO_ACCESS_KEY=restkey MINIO_SECRET_KEY=restsecret npm run rest');
    expect(r.stdout).toContain('REDIS_URL=redis://worker:workerpw@127.0.0.1:16379');
    expect(r.stdout).toContain('MINIO_ACCESS_KEY=workerkey MINIO_SECRET_KEY=workersecret npm run worker');
    expect(r.stdout).toContain('REDIS_URL=redis://logs:logspw@127.0.0.1:16379 npm run logs');
    expect(r.stdout).not.toMatch(/minioadmin|MINIO_ROOT/);
  });

  it('is idempotent: a second run re-applies and replaces the old forwards instead of piling up', async () => {
    const before = pids();
    writeFileSync(log, '');
    const r = run();
    expect(r.status).toBe(0);
    const c = calls();
    expect(c.filter((l) => l.includes(' apply -k '))).toHaveLength(2);
    expect(c.filter((l) => l.includes(' port-forward '))).toHaveLength(2);
    const after = pids();
    expect(Object.keys(after).sort()).toEqual(['minio', 'redis']);
    for (const name of ['redis', 'minio']) {
      expect(after[name]).not.toBe(before[name]);
      expect(await waitDead(before[name]!), `old ${name} forward stopped`).toBe(true);
      expect(alive(after[name]!)).toBe(true);
    }
  });

  it('--stop ends the forwards and removes the pidfile; a stale pidfile is harmless', async () => {
    const p = pids();
    const r = run(['--stop']);
    expect(r.status).toBe(0);
    for (const pid of Object.values(p)) expect(await waitDead(pid)).toBe(true);
    expect(existsSync(path.join(state, 'port-forward-msaas-dev.pids'))).toBe(false);
    // a pidfile naming a pid that is not a port-forward (here: this test process) must not kill it
    writeFileSync(path.join(state, 'port-forward-msaas-dev.pids'), `redis ${process.pid}\n`);
    expect(run(['--stop']).status).toBe(0);
    expect(alive(process.pid)).toBe(true);
  });
});
