// The production pass (issue 26) on the rendered overlays: patched backing stores that are the last
// to go, workers that node scale-down leaves alone and KEDA scales on queued + running work, probes
// that split liveness from dependencies, TLS that can be issued, scraping of every metrics port, the
// Gateway API alternative, and egress limited per workload. Needs kubectl (render.ts).
import { mkdtempSync, copyFileSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { loadConfig } from '@msaas/common';
import { envValue, find, kubectl, lazyRendered, namespaceOf, type Obj, podOwners, render, repoRoot, renderProdWith } from './render.ts';

const rendered = lazyRendered();

/** [major, minor, patch] of an image tag like redis:7.4.6-alpine. */
function semver(image: string): [number, number, number] {
  const m = /:(\d+)\.(\d+)\.(\d+)/.exec(image);
  if (!m) throw new Error(`no x.y.z version in ${image}`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}
const atLeast = (v: [number, number, number], min: [number, number, number]): boolean =>
  v[0] !== min[0] ? v[0] > min[0] : v[1] !== min[1] ? v[1] > min[1] : v[2] >= min[2];

/** Labels of the pods a Service or monitor selector picks, per pod owner. */
const selects = (selector: Obj, labels: Obj): boolean => Object.entries(selector).every(([k, v]) => labels[k] === v);

/** The prod overlay with one more component, its own patches applied after it (as an operator would add it to prod's `components:`). */
function renderProdAdding(component: string): Obj[] {
  const dir = mkdtempSync(path.join(repoRoot, 'k8s/overlays/.render-'));
  try {
    for (const f of ['kustomization.yaml', 'namespace.yaml']) copyFileSync(path.join(repoRoot, 'k8s/overlays/prod', f), path.join(dir, f));
    // after prod's own components (its patches of the network policies need them rendered first)
    const text = readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8').replace(/^(components:\n(?:(?:  - .*|  #.*)\n)*)/m, `$1  - ../../components/${component}\n`);
    expect(text).toContain(`  - ../../components/${component}\n`);
    writeFileSync(path.join(dir, 'kustomization.yaml'), text);
    return render(path.relative(repoRoot, dir));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

kubectl.describe('production: backing stores', () => {
  it.each(['dev', 'prod'] as const)('%s: Redis runs ≥ 7.4.6 (CVE-2025-49844 Lua use-after-free, CVE-2025-46818 cross-user scripts, CVE-2025-21605)', (ov) => {
    const pod = find(rendered[ov], 'StatefulSet', 'redis')!.spec.template.spec;
    for (const c of [...pod.initContainers, ...pod.containers]) {
      expect(c.image).toMatch(/^redis:/);
      expect(atLeast(semver(c.image), [7, 4, 6]), c.image).toBe(true);
    }
  });

  it.each(['dev', 'prod'] as const)('%s: Redis and MinIO carry a PriorityClass above the application and Guaranteed resources in every container', (ov) => {
    const objs = rendered[ov];
    for (const name of ['redis', 'minio']) {
      const pod = find(objs, 'StatefulSet', name)!.spec.template.spec;
      const pc = find(objs, 'PriorityClass', pod.priorityClassName);
      expect(pc, `${name}: PriorityClass ${pod.priorityClassName} is rendered`).toBeDefined();
      expect(pc!.apiVersion).toBe('scheduling.k8s.io/v1');
      expect(pc!.value).toBeGreaterThan(0); // the application's pods have none: priority 0
      expect(pc!.value).toBeLessThan(1_000_000_000); // user classes stay below the system ones
      expect(pc!.globalDefault ?? false).toBe(false);
      for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
        for (const r of ['cpu', 'memory']) {
          expect(c.resources.requests[r], `${name}/${c.name} ${r} request`).toBeDefined();
          expect(String(c.resources.requests[r]), `${name}/${c.name} ${r}: request = limit`).toBe(String(c.resources.limits[r]));
        }
      }
    }
    // the workers (Guaranteed too) must not outrank them
    expect(find(objs, 'Deployment', 'worker')!.spec.template.spec.priorityClassName).toBeUndefined();
  });

  it('prod: MinIO runs the image built from source at the 2025-10-15 security release, not the last community image', () => {
    const c = find(rendered.prod, 'StatefulSet', 'minio')!.spec.template.spec.containers[0];
    expect(c.image).toMatch(/\/msaas-minio:RELEASE\.(\d{4}-\d{2}-\d{2})T/);
    expect(/RELEASE\.(\d{4}-\d{2}-\d{2})/.exec(c.image)![1]! >= '2025-10-15').toBe(true);
    const dockerfile = readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^FROM \S+ AS minio$/m);
    const release = /^ARG MINIO_RELEASE=(\S+)$/m.exec(dockerfile)![1];
    expect(c.image.endsWith(`:${release}`)).toBe(true);
  });

  it.each(['dev', 'prod'] as const)('%s: the bucket Job gives up (deadline, bounded retries and waits), and the MinIO Service never selects its pods', (ov) => {
    const objs = rendered[ov];
    const job = find(objs, 'Job', 'minio-buckets')!;
    expect(job.spec.activeDeadlineSeconds).toBeGreaterThan(0);
    expect(job.spec.activeDeadlineSeconds).toBeLessThanOrEqual(3600);
    expect(job.spec.backoffLimit).toBeLessThanOrEqual(6);
    const script: string = job.spec.template.spec.containers[0].args.join('\n');
    expect(script, 'the wait for MinIO is bounded').toMatch(/if \[ "\$tries" -ge \d+ \]; then .*exit 1; fi/);
    const svc = find(objs, 'Service', 'minio')!;
    expect(selects(svc.spec.selector, job.spec.template.metadata.labels)).toBe(false);
    expect(selects(svc.spec.selector, find(objs, 'StatefulSet', 'minio')!.spec.template.metadata.labels)).toBe(true);
  });
});

kubectl.describe('production: workers', () => {
  it.each(['dev', 'prod'] as const)('%s: node scale-down leaves workers alone (Cluster Autoscaler safe-to-evict, Karpenter do-not-disrupt)', (ov) => {
    const tpl = find(rendered[ov], 'Deployment', 'worker')!.spec.template;
    expect(tpl.metadata.annotations['cluster-autoscaler.kubernetes.io/safe-to-evict']).toBe('false');
    expect(tpl.metadata.annotations['karpenter.sh/do-not-disrupt']).toBe('true');
    // the grace period these protect is longer than Cluster Autoscaler's default max-graceful-termination-sec
    expect(tpl.spec.terminationGracePeriodSeconds).toBeGreaterThan(600);
  });

  it('prod: KEDA scales on queued + running work (busy workers from Prometheus), wakes on toWorker, and falls back when a scaler fails', () => {
    const objs = rendered.prod;
    const so = find(objs, 'ScaledObject', 'worker')!;
    const ns = namespaceOf(objs);
    const prom = so.spec.triggers.find((t: Obj) => t.type === 'prometheus');
    expect(prom).toBeDefined();
    const allowedMeta = ['serverAddress', 'query', 'threshold', 'activationThreshold', 'namespace', 'customHeaders', 'ignoreNullValues', 'unsafeSsl', 'queryParameters'];
    expect(Object.keys(prom.metadata).filter((k) => !allowedMeta.includes(k))).toEqual([]);
    for (const v of Object.values(prom.metadata)) expect(typeof v).toBe('string');
    expect(prom.metadata.serverAddress).toMatch(/^https?:\/\/[\w.-]+(:\d+)?$/);
    expect(prom.metadata.threshold).toBe('1'); // one worker per job
    const q: string = prom.metadata.query;
    // running: the workers' busy gauge summed; queued: rest's gauge of toWorker; both in this namespace
    expect(q).toMatch(new RegExp(`sum\\(msaas_worker_busy\\{namespace="${ns}"\\}\\)`));
    expect(q).toMatch(new RegExp(`max\\(msaas_queue_length\\{namespace="${ns}"\\}\\)`));
    expect(q).toMatch(/\+/);
    expect(q.match(/or vector\(0\)/g), 'an absent series (no worker yet) counts 0').toHaveLength(2);
    // the metrics it sums are real: registered by the services
    const sources = ['worker/src/metrics.ts', 'rest/src/metrics.ts'].map((f) => readFileSync(path.join(repoRoot, f), 'utf8')).join('\n');
    for (const m of ['msaas_worker_busy', 'msaas_queue_length']) expect(sources).toContain(`name: '${m}'`);
    // and scraped (monitoring component)
    expect(objs.filter((o) => o.kind === 'ServiceMonitor').length).toBeGreaterThan(0);
    expect(so.spec.fallback.failureThreshold).toBeGreaterThanOrEqual(1);
    expect(so.spec.fallback.replicas).toBeGreaterThanOrEqual(1);
    expect(['static', 'currentReplicas', 'currentReplicasIfHigher', 'currentReplicasIfLower']).toContain(so.spec.fallback.behavior ?? 'static');
    expect(so.spec.fallback.behavior, 'a blind scaler keeps the workers it has').toBe('currentReplicasIfHigher');
  });

  it.each(['dev', 'prod'] as const)('%s: liveness has no dependency (/healthz), readiness carries them (/readyz); the worker gets no API_KEYS', (ov) => {
    const objs = rendered[ov];
    const c = find(objs, 'Deployment', 'worker')!.spec.template.spec.containers[0];
    expect(c.livenessProbe.httpGet.path).toBe('/healthz');
    expect(c.startupProbe.httpGet.path).toBe('/healthz');
    expect(c.readinessProbe.httpGet.path).toBe('/readyz');
    // the liveness probe tolerates longer than a Redis restart takes the heartbeat to lapse: it would not matter anyway
    expect((c.envFrom ?? []).some((f: Obj) => f.secretRef?.name === 'msaas-secrets'), 'not the whole msaas-secrets (API_KEYS)').toBe(false);
    expect((c.env ?? []).map((e: Obj) => e.name)).not.toContain('API_KEYS');
    expect((c.env ?? []).find((e: Obj) => e.name === 'CALLBACK_SECRET')?.valueFrom.secretKeyRef).toMatchObject({ name: 'msaas-secrets', key: 'CALLBACK_SECRET', optional: true });
  });

  it.each(['dev', 'prod'] as const)('%s: rest and worker spread over zones and nodes; the rest PDB allows one pod down at any replica count', (ov) => {
    const objs = rendered[ov];
    for (const name of ['rest', 'worker']) {
      const spread = find(objs, 'Deployment', name)!.spec.template.spec.topologySpreadConstraints as Obj[];
      const keys = spread.map((s) => s.topologyKey);
      expect(keys, name).toContain('topology.kubernetes.io/zone');
      expect(keys, name).toContain('kubernetes.io/hostname');
      for (const s of spread) expect(s.labelSelector.matchLabels['app.kubernetes.io/name']).toBe(name);
    }
    const pdb = find(objs, 'PodDisruptionBudget', 'rest')!;
    expect(pdb.spec.maxUnavailable).toBe(1);
    expect(pdb.spec.minAvailable).toBeUndefined();
  });

  it.each(['dev', 'prod'] as const)('%s: rest requests the memory its worst case needs (uploads held at once), as the docs say', (ov) => {
    const objs = rendered[ov];
    const c = find(objs, 'Deployment', 'rest')!.spec.template.spec.containers[0];
    const uploads = Number(envValue(objs, c, 'MAX_CONCURRENT_UPLOADS'));
    const perUploadMiB = 166; // one maximal upload, decoded in place (rest.yaml, docs/security.md)
    const worstMiB = 235 + uploads * perUploadMiB;
    const mi = (q: string) => Number(/^(\d+)Gi$/.exec(q)?.[1] ?? NaN) * 1024 || Number(/^(\d+)Mi$/.exec(q)?.[1]);
    expect(mi(c.resources.requests.memory)).toBeGreaterThanOrEqual(worstMiB);
    expect(mi(c.resources.limits.memory)).toBeGreaterThanOrEqual(mi(c.resources.requests.memory));
    const docs = readFileSync(path.join(repoRoot, 'docs/kubernetes.md'), 'utf8');
    expect(docs).toContain(`MAX_CONCURRENT_UPLOADS=${uploads}`);
    expect(docs).toContain(`${perUploadMiB} MiB`);
  });

  it.each(['dev', 'prod'] as const)('%s: the shipped config sets a minutes-per-day quota', (ov) => {
    const objs = rendered[ov];
    const c = find(objs, 'Deployment', 'rest')!.spec.template.spec.containers[0];
    const v = envValue(objs, c, 'MAX_AUDIO_MINUTES_PER_DAY');
    expect(v).toBeDefined();
    const config = loadConfig({}, { MAX_AUDIO_MINUTES_PER_DAY: v! });
    expect(config.MAX_AUDIO_MINUTES_PER_DAY).toBeGreaterThan(0);
    // the worker reconciles the charge against the decoded length with the same limit
    const w = find(objs, 'Deployment', 'worker')!.spec.template.spec.containers[0];
    expect(envValue(objs, w, 'MAX_AUDIO_MINUTES_PER_DAY')).toBe(v);
  });
});

kubectl.describe('production: network', () => {
  const pols = (): Obj[] => rendered.prod.filter((o) => o.kind === 'NetworkPolicy');
  /** Does some policy admit `from` (a namespace name) to pods labelled `to` on `port`? */
  const admits = (namespace: string, to: Obj, port: number, objs = pols()): boolean =>
    objs.some((p) => selects(p.spec.podSelector.matchLabels ?? {}, to) && Object.keys(p.spec.podSelector.matchLabels ?? {}).length > 0 &&
      (p.spec.ingress ?? []).some((r: Obj) => (r.ports ?? []).some((pp: Obj) => pp.port === port) &&
        (r.from ?? []).some((f: Obj) => f.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === namespace && !f.podSelector)));

  it("prod: cert-manager's HTTP-01 solver pod is reachable from the ingress controller, so the certificate can be issued", () => {
    const solver = { 'acme.cert-manager.io/http01-solver': 'true' };
    expect(admits('ingress-nginx', solver, 8089)).toBe(true);
    expect(admits('default', solver, 8089)).toBe(false);
    // and the Ingress asks cert-manager for it
    const ing = find(rendered.prod, 'Ingress', 'rest')!;
    expect(ing.metadata.annotations['cert-manager.io/cluster-issuer']).toBeDefined();
    expect(ing.spec.tls[0].secretName).toBe('msaas-tls');
  });

  it('prod: rest, logs, Redis and MinIO have their egress limited (the worker too, as before)', () => {
    const pods = podOwners(rendered.prod);
    const labels = (name: string, component?: string) =>
      pods.find((p) => p.podLabels['app.kubernetes.io/name'] === name && (!component || p.podLabels['app.kubernetes.io/component'] === component))!.podLabels;
    const egressOf = (l: Obj) =>
      pols().filter((p) => (p.spec.policyTypes ?? []).includes('Egress') && selects(p.spec.podSelector.matchLabels ?? {}, l) &&
        (p.spec.podSelector.matchExpressions ?? []).every((e: Obj) => e.operator === 'In' && e.values.includes(l[e.key])));
    for (const [name, component] of [['rest'], ['logs'], ['worker'], ['redis'], ['minio', 'object-store']] as [string, string?][]) {
      expect(egressOf(labels(name, component)).length, `${name} has an egress policy`).toBeGreaterThan(0);
    }
    for (const l of [labels('redis'), labels('minio', 'object-store')]) {
      expect(egressOf(l).flatMap((p) => p.spec.egress ?? []), 'the stores open no connection').toEqual([]);
    }
    const logsRules = egressOf(labels('logs')).flatMap((p) => p.spec.egress);
    expect(logsRules.flatMap((r: Obj) => (r.ports ?? []).map((pp: Obj) => pp.port)).sort()).toEqual([53, 53, 6379]);
    const restRules = egressOf(labels('rest')).flatMap((p) => p.spec.egress);
    expect(restRules.every((r: Obj) => (r.ports ?? []).length > 0), 'every rest egress rule names its ports').toBe(true);
    expect(restRules.flatMap((r: Obj) => r.ports.map((pp: Obj) => pp.port)).sort((a: number, b: number) => a - b)).toEqual([53, 53, 443, 6379, 6443, 9000]);
    // NodeLocal DNSCache for every restricted pod that resolves names
    for (const name of ['rest', 'logs', 'worker']) {
      const dns = egressOf(labels(name)).flatMap((p) => p.spec.egress).filter((r: Obj) => (r.ports ?? []).some((pp: Obj) => pp.port === 53));
      expect(dns.some((r: Obj) => r.to.some((t: Obj) => t.ipBlock?.cidr === '169.254.20.10/32')), name).toBe(true);
    }
  });

  it('prod: a ServiceMonitor scrapes every metrics port (worker 9100, rest admin 9101) through a Service that exposes it', () => {
    const objs = rendered.prod;
    const monitors = objs.filter((o) => o.kind === 'ServiceMonitor' || o.kind === 'PodMonitor');
    for (const m of monitors) expect(m.apiVersion).toBe('monitoring.coreos.com/v1');
    const scraped = new Set<string>();
    for (const m of monitors.filter((x) => x.kind === 'ServiceMonitor')) {
      const services = objs.filter((o) => o.kind === 'Service' && selects(m.spec.selector.matchLabels, o.metadata.labels ?? {}));
      expect(services.length, `ServiceMonitor/${m.metadata.name} selects a Service`).toBeGreaterThan(0);
      for (const svc of services) {
        for (const ep of m.spec.endpoints) {
          const port = svc.spec.ports.find((p: Obj) => p.name === ep.port);
          expect(port, `${svc.metadata.name} has port ${ep.port}`).toBeDefined();
          for (const owner of podOwners(objs).filter((p) => selects(svc.spec.selector, p.podLabels))) {
            const cport = owner.podSpec.containers.flatMap((c: Obj) => c.ports ?? []).find((p: Obj) => p.name === port.targetPort || p.containerPort === port.targetPort);
            if (cport) scraped.add(`${owner.name}:${cport.containerPort}`);
          }
        }
      }
    }
    // every port a pod announces for scraping (prometheus.io/port) is covered
    const announced = podOwners(objs)
      .filter((p) => p.obj.spec.template.metadata.annotations?.['prometheus.io/port'])
      .map((p) => `${p.name}:${p.obj.spec.template.metadata.annotations['prometheus.io/port']}`);
    expect(announced.sort()).toEqual(['Deployment/rest:9101', 'Deployment/worker:9100']);
    for (const a of announced) expect(scraped.has(a), a).toBe(true);
  });
});

kubectl.describe('production: ingress flavours', () => {
  it('the Gateway API component replaces the Ingress by a Gateway and an HTTPRoute with the same body size and stream-safe timeouts', () => {
    const objs = renderProdAdding('gateway-api');
    expect(objs.filter((o) => o.kind === 'Ingress')).toEqual([]);
    const ns = namespaceOf(objs);
    const gw = find(objs, 'Gateway', 'msaas')!;
    const route = find(objs, 'HTTPRoute', 'rest')!;
    for (const o of [gw, route]) {
      expect(o.apiVersion).toBe('gateway.networking.k8s.io/v1');
      expect(o.metadata.namespace).toBe(ns);
    }
    expect(Object.keys(gw.spec).sort()).toEqual(['gatewayClassName', 'listeners']);
    const https = gw.spec.listeners.find((l: Obj) => l.protocol === 'HTTPS');
    expect(https.port).toBe(443);
    expect(https.tls.certificateRefs[0].name).toBe('msaas-tls');
    expect(gw.spec.listeners.find((l: Obj) => l.protocol === 'HTTP').port, 'port 80 for the HTTP-01 challenge').toBe(80);
    // the overlay's host, on the listeners and the route (the same as the Ingress had)
    const host = find(rendered.prod, 'Ingress', 'rest')!.spec.rules[0].host;
    for (const l of gw.spec.listeners) expect(l.hostname).toBe(host);
    expect(route.spec.hostnames).toEqual([host]);
    expect(Object.keys(route.spec).sort()).toEqual(['hostnames', 'parentRefs', 'rules']);
    expect(route.spec.parentRefs).toEqual([{ name: 'msaas', sectionName: 'https' }]);
    const rule = route.spec.rules[0];
    expect(Object.keys(rule).sort()).toEqual(['backendRefs', 'matches', 'timeouts']);
    expect(rule.matches).toEqual([{ path: { type: 'PathPrefix', value: '/' } }]);
    const svc = find(objs, 'Service', 'rest')!;
    expect(rule.backendRefs).toEqual([{ name: 'rest', port: svc.spec.ports.find((p: Obj) => p.name === 'http').port }]);
    expect(rule.timeouts.request, 'no total timeout: it would cut SSE and live streams').toBe('0s');
    // the body limit: the Ingress's proxy-body-size
    const csp = find(objs, 'ClientSettingsPolicy', 'rest-body')!;
    expect(csp.spec.targetRef).toEqual({ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: 'rest' });
    expect(csp.spec.body.maxSize).toBe(find(rendered.prod, 'Ingress', 'rest')!.metadata.annotations['nginx.ingress.kubernetes.io/proxy-body-size']);
    // the API port and the HTTP-01 solver admit the Gateway's data plane
    for (const name of ['rest-http', 'cert-manager-http01-solver']) {
      const from = find(objs, 'NetworkPolicy', name)!.spec.ingress[0].from as Obj[];
      expect(from.some((f) => f.podSelector?.matchLabels?.['gateway.networking.k8s.io/gateway-name'] === 'msaas'), name).toBe(true);
    }
    // nothing else changed: the rest of prod renders the same objects
    const ids = (list: Obj[]) => list.filter((o) => !['Ingress', 'Gateway', 'HTTPRoute', 'ClientSettingsPolicy'].includes(o.kind)).map((o) => `${o.kind}/${o.metadata.name}`).sort();
    expect(ids(objs)).toEqual(ids(rendered.prod));
  });

  it('the Gateway API component also renders on prod as a separate overlay layer (renderProdWith)', () => {
    const objs = renderProdWith('gateway-api');
    expect(find(objs, 'HTTPRoute', 'rest')).toBeDefined();
    expect(objs.filter((o) => o.kind === 'Ingress')).toEqual([]);
  });
});
