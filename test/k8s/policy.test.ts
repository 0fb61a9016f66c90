// Policy over the rendered dev and prod overlays: resources, pod security, pinned images, probes,
// disruption budgets, Service wiring, referenced ConfigMaps/Secrets, RBAC and the services' config.
// Needs kubectl (test/k8s/render.ts). Memory, grace periods and body sizes: sizing.test.ts.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { ConfigSchema, loadConfig } from '@msaas/common';
import {
  allContainers, envValue, find, kubectl, lazyRendered, namespaceOf, type Obj, podOwners, quantityBytes, repoRoot, selectorMatches,
} from './render.ts';

/** Secrets prod expects to exist already (created out of band, docs/kubernetes.md), never rendered. */
const PROD_EXTERNAL_SECRETS = ['msaas-secrets', 'minio-credentials', 'minio-users', 'redis-users'];

/**
 * The environment a container gets, as the kubelet builds it: envFrom ConfigMaps/Secrets, then env
 * (values, ConfigMap/Secret keys, downward API) with $(VAR) expanded. A Secret prod creates out of
 * band yields `out-of-band-<key>` (strong and URL-safe, as docs/kubernetes.md has them made).
 * `inputs`: variables that only feed another one's $(VAR), which the services never read.
 */
function podEnv(objs: Obj[], c: Obj): { env: Record<string, string>; inputs: Set<string> } {
  const env: Record<string, string> = {};
  const secret = (name: string, key: string): string | undefined => {
    const s = find(objs, 'Secret', name);
    if (!s) return `out-of-band-${key.toLowerCase().replaceAll('_', '-')}`;
    return s.data?.[key] === undefined ? undefined : Buffer.from(String(s.data[key]), 'base64').toString();
  };
  for (const from of c.envFrom ?? []) {
    const src = from.configMapRef ? find(objs, 'ConfigMap', from.configMapRef.name) : from.secretRef ? find(objs, 'Secret', from.secretRef.name) : undefined;
    if (!src) continue; // prod's out-of-band secret
    for (const [k, v] of Object.entries(src.data ?? {})) env[k] = src.kind === 'Secret' ? Buffer.from(String(v), 'base64').toString() : String(v);
  }
  const inputs = new Set<string>();
  for (const e of c.env ?? []) {
    let value: string | undefined;
    if ('value' in e) {
      value = String(e.value).replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (_m, name: string) => {
        inputs.add(name);
        return env[name] ?? `$(${name})`;
      });
    } else if (e.valueFrom?.secretKeyRef) value = secret(e.valueFrom.secretKeyRef.name, e.valueFrom.secretKeyRef.key);
    else if (e.valueFrom?.configMapKeyRef) value = find(objs, 'ConfigMap', e.valueFrom.configMapKeyRef.name)?.data?.[e.valueFrom.configMapKeyRef.key];
    else value = `${c.name}-from-downward-api`;
    if (value === undefined && e.valueFrom?.secretKeyRef?.optional) continue; // unset, as in the pod
    if (value === undefined) throw new Error(`${c.name}: ${e.name} refers to a key that is not rendered`);
    env[e.name] = value;
  }
  for (const name of inputs) if (!(name in env)) throw new Error(`${c.name}: $(${name}) is not defined before its use`);
  return { env, inputs };
}
/** Long-running containers allowed without HTTP/exec probes, and why. */
const PROBE_EXEMPT: Record<string, string> = {
  logs: 'no listener: a pub/sub subscriber that exits on a lost Redis, so restartPolicy is its liveness',
};

const rendered = lazyRendered();

kubectl.describe('policy', () => {
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
    const restEnv = restPod.containers[0].env;
    const workerDeployment = restEnv.find((e: Obj) => e.name === 'WORKER_DEPLOYMENT').value;
    expect(find(objs, 'Deployment', workerDeployment)).toBeDefined();
    // get on the worker Deployment by name: no list, no other Deployment, no other verb.
    expect(role.rules).toEqual([{ apiGroups: ['apps'], resources: ['deployments'], resourceNames: [workerDeployment], verbs: ['get'] }]);
    expect(objs.filter((o) => o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding')).toEqual([]);
    for (const n of ['worker', 'logs']) {
      expect(find(objs, 'Deployment', n)!.spec.template.spec.automountServiceAccountToken, n).toBe(false);
    }
  });

  it.each(both)('%s: config the services read is set: Redis and MinIO point at the in-cluster Services', (ov) => {
    const objs = rendered[ov];
    const c = find(objs, 'Deployment', 'rest')!.spec.template.spec.containers[0];
    expect(envValue(objs, c, 'REDIS_URL')).toBe('redis://rest:$(REDIS_REST_PASSWORD)@redis:6379');
    expect(envValue(objs, c, 'MINIO_ENDPOINT')).toBe('minio');
    expect(envValue(objs, c, 'MINIO_PORT')).toBe('9000');
    expect(envValue(objs, c, 'QUEUE_BUCKET')).toBe('queue');
    expect(envValue(objs, c, 'OUTPUT_BUCKET')).toBe('output');
    expect(envValue(objs, c, 'PORT')).toBe(String(c.ports[0].containerPort));
  });

  it.each(both)('%s: each service is its own Redis ACL user and MinIO user, its passwords from Secrets, never the MinIO root pair', (ov) => {
    const objs = rendered[ov];
    const users: Record<string, { redis: string; minio: string | null }> = {
      rest: { redis: 'REDIS_REST_PASSWORD', minio: 'REST' },
      worker: { redis: 'REDIS_WORKER_PASSWORD', minio: 'WORKER' },
      logs: { redis: 'REDIS_LOGS_PASSWORD', minio: null },
    };
    for (const [name, u] of Object.entries(users)) {
      const c = find(objs, 'Deployment', name)!.spec.template.spec.containers[0];
      const envOf = (n: string): Obj | undefined => (c.env ?? []).find((e: Obj) => e.name === n);
      expect(envOf(u.redis)?.valueFrom?.secretKeyRef, name).toEqual({ name: 'redis-users', key: u.redis });
      expect(envOf('REDIS_URL')?.value, name).toBe(`redis://${name}:$(${u.redis})@redis:6379`);
      if (u.minio) {
        expect(envOf('MINIO_ACCESS_KEY')?.valueFrom?.secretKeyRef, name).toEqual({ name: 'minio-users', key: `${u.minio}_ACCESS_KEY` });
        expect(envOf('MINIO_SECRET_KEY')?.valueFrom?.secretKeyRef, name).toEqual({ name: 'minio-users', key: `${u.minio}_SECRET_KEY` });
      } else {
        const { env } = podEnv(objs, c);
        expect(Object.keys(env).filter((k) => k.startsWith('MINIO_')), `${name} has no object-store settings`).toEqual([]);
      }
      // Nothing that could carry the root pair reaches a service.
      const refs = [...(c.envFrom ?? []).map((f: Obj) => f.secretRef?.name), ...(c.env ?? []).map((e: Obj) => e.valueFrom?.secretKeyRef?.name)].filter(Boolean);
      expect(refs, name).not.toContain('minio-credentials');
    }
    if (ov === 'dev') {
      const dec = (s: string, k: string) => Buffer.from(find(objs, 'Secret', s)!.data[k], 'base64').toString();
      expect(dec('minio-users', 'REST_ACCESS_KEY')).not.toBe(dec('minio-credentials', 'MINIO_ROOT_USER'));
      expect(dec('minio-users', 'WORKER_ACCESS_KEY')).not.toBe(dec('minio-credentials', 'MINIO_ROOT_USER'));
      expect(find(objs, 'Secret', 'msaas-secrets')!.data ?? {}, 'no MinIO keys left in msaas-secrets').toEqual({});
    }
  });

  it.each(both)('%s: no MinIO default credential (minioadmin) anywhere in the render', (ov) => {
    const objs = rendered[ov];
    const secretValues = objs.filter((o) => o.kind === 'Secret').flatMap((s) => Object.values(s.data ?? {}).map((v) => Buffer.from(String(v), 'base64').toString()));
    expect(secretValues.filter((v) => v === 'minioadmin')).toEqual([]);
    for (const { name, podSpec } of podOwners(objs)) {
      for (const c of allContainers(podSpec)) {
        for (const e of c.env ?? []) expect(String(e.value ?? ''), `${name}/${c.name} ${e.name}`).not.toMatch(/minioadmin/);
      }
    }
    for (const cm of objs.filter((o) => o.kind === 'ConfigMap')) {
      for (const [k, v] of Object.entries(cm.data ?? {})) {
        // the bucket Job's script names minioadmin only to refuse it
        const text = String(v).replace(/\[ "\$key" = minioadmin \]/g, '');
        expect(text, `${cm.metadata.name}/${k}`).not.toMatch(/minioadmin/);
      }
    }
  });

  it.each(both)('%s: every variable given to rest, worker and logs is one the config schema knows, and the set parses as in a pod', (ov) => {
    const objs = rendered[ov];
    const known = new Set(Object.keys(ConfigSchema.shape));
    for (const name of ['rest', 'worker', 'logs']) {
      const c = find(objs, 'Deployment', name)!.spec.template.spec.containers[0];
      const { env, inputs } = podEnv(objs, c);
      const unknown = Object.keys(env).filter((k) => !known.has(k) && !inputs.has(k));
      expect(unknown, `${name}: variables the services would ignore`).toEqual([]);
      // The kubelet sets KUBERNETES_SERVICE_HOST in every pod: loadConfig then refuses default MinIO keys.
      const config = loadConfig({ ...env, KUBERNETES_SERVICE_HOST: '10.96.0.1' });
      if (name !== 'logs') expect(config.MINIO_ENDPOINT).toBe('minio');
      const url = new URL(config.REDIS_URL);
      expect([url.username, url.hostname, url.port]).toEqual([name, 'redis', '6379']);
      expect(url.password.length, `${name}: a password in REDIS_URL`).toBeGreaterThanOrEqual(16);
    }
  });

  it.each(both)('%s: rest serves probes and metrics on ADMIN_PORT, a port neither its Service nor the Ingress routes', (ov) => {
    const objs = rendered[ov];
    const dep = find(objs, 'Deployment', 'rest')!;
    const c = dep.spec.template.spec.containers[0];
    const adminPort = Number(envValue(objs, c, 'ADMIN_PORT'));
    const apiPort = Number(envValue(objs, c, 'PORT'));
    expect(adminPort).toBeGreaterThan(0);
    expect(adminPort).not.toBe(apiPort);
    const portNamed = (n: string): number => c.ports.find((p: Obj) => p.name === n).containerPort;
    expect(portNamed('admin')).toBe(adminPort);
    expect(portNamed('http')).toBe(apiPort);
    for (const p of ['startupProbe', 'livenessProbe', 'readinessProbe']) expect(c[p].httpGet.port, p).toBe('admin');
    expect(dep.spec.template.metadata.annotations['prometheus.io/port']).toBe(String(adminPort));
    const svc = find(objs, 'Service', 'rest')!;
    expect(svc.spec.ports.map((p: Obj) => p.targetPort)).toEqual(['http']);
    const ingress = find(objs, 'Ingress', 'rest')!;
    const backends = ingress.spec.rules.flatMap((r: Obj) => r.http.paths.map((p: Obj) => p.backend.service));
    expect(backends.length).toBeGreaterThan(0);
    for (const b of backends) {
      expect(b.name).toBe('rest');
      const port = svc.spec.ports.find((p: Obj) => p.name === b.port.name || p.port === b.port.number);
      expect(port.targetPort).toBe('http');
    }
    expect(ingress.spec.defaultBackend).toBeUndefined();
    // The proxy in front of rest is one hop: X-Forwarded-For's last entry is the client (docs/kubernetes.md).
    expect(envValue(objs, c, 'TRUST_PROXY')).toBe('1');
  });

  it('redis persists with AOF and never evicts queue keys', () => {
    const conf = readFileSync(path.join(repoRoot, 'redis/base/redis.conf'), 'utf8');
    expect(conf).toMatch(/^appendonly yes$/m);
    expect(conf).toMatch(/^maxmemory-policy noeviction$/m);
    const sts = find(rendered.prod, 'StatefulSet', 'redis')!;
    expect(sts.spec.volumeClaimTemplates[0].metadata.name).toBe('data');
    expect(sts.spec.template.spec.containers[0].volumeMounts.find((m: Obj) => m.name === 'data').mountPath).toBe('/data');
  });
});
