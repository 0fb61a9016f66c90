// The kustomize render of every overlay and component, and each object checked against the
// Kubernetes schemas (required fields, types, unknown fields) and, for the KEDA CRD and the
// optional components, field by field. Needs kubectl (test/k8s/render.ts).
import { spawnSync } from 'node:child_process';
import { BlockList, isIP } from 'node:net';
import path from 'node:path';
import { expect, it } from 'vitest';
import { isPrivateAddress } from '@msaas/common';
import {
  find, kubectl, lazyRendered, namespaceOf, type Obj, type Overlay, overlays, podOwners, render, schemaErrors, unknownFields,
} from './render.ts';

const rendered = lazyRendered();
/** Kinds without a namespace (the PriorityClasses of redis/ and minio/). */
const CLUSTER_SCOPED = ['Namespace', 'PriorityClass'];
/** Custom resources: no schema in kubernetes-models; each is checked field by field (here, production.test.ts, monitoring.test.ts). */
const CRD_GROUPS = ['keda.sh/', 'monitoring.coreos.com/', 'gateway.networking.k8s.io/', 'gateway.nginx.org/'];

kubectl.describe('kustomize render', () => {
  it.each(Object.keys(overlays) as Overlay[])('renders k8s/overlays/%s with every object namespaced to the overlay', (ov) => {
    const objs = rendered[ov];
    expect(objs.length).toBeGreaterThan(10);
    const ns = namespaceOf(objs);
    for (const o of objs.filter((x) => !CLUSTER_SCOPED.includes(x.kind))) expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe(ns);
    for (const o of objs.filter((x) => CLUSTER_SCOPED.includes(x.kind))) expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBeUndefined();
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
    expect(find(minio, 'Secret', 'minio-users')).toBeDefined();
    expect(find(redis, 'Secret', 'redis-users')).toBeDefined();
    // The bases (what prod uses) carry no Secret.
    expect(render('redis/base').filter((o) => o.kind === 'Secret')).toEqual([]);
    expect(render('minio/base').filter((o) => o.kind === 'Secret')).toEqual([]);
    const job = find(minio, 'Job', 'minio-buckets')!;
    const script = job.spec.template.spec.containers[0].args.join('\n');
    expect(script).toMatch(/for bucket in queue output/);
    expect(script).toMatch(/mb --ignore-existing/);
    // leftover uploads (failed jobs) expire; stems expire after the services' retention
    expect(script).toMatch(/ilm rule add --expire-days "\$QUEUE_UPLOAD_EXPIRE_DAYS" local\/queue\n/);
    expect(script).toMatch(/ilm rule add --expire-days "\$OUTPUT_EXPIRE_DAYS" local\/output\n/);
    const env = (name: string): number => Number(job.spec.template.spec.containers[0].env.find((e: Obj) => e.name === name).value);
    expect(env('QUEUE_UPLOAD_EXPIRE_DAYS')).toBeGreaterThanOrEqual(1);
    const config = render('k8s/base').find((o: Obj) => o.kind === 'ConfigMap' && String(o.metadata.name).startsWith('msaas-config'))!;
    const retention = Number(config.data.RETENTION_DAYS);
    expect(retention).toBeGreaterThan(0);
    expect(env('OUTPUT_EXPIRE_DAYS'), 'stems expire when the records do (whole days, as mc takes them)').toBe(Math.ceil(retention));
  });
});

kubectl.describe('schema validation', () => {
  it.each(['dev', 'prod', 'prodHpa'] as const)('every object in %s validates against the Kubernetes schemas, with no unknown fields', (ov) => {
    const problems: string[] = [];
    for (const o of rendered[ov]) {
      if (CRD_GROUPS.some((g) => String(o.apiVersion).startsWith(g))) continue; // a CRD: checked field by field
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

  it('the KEDA ScaledObject (prod) scales the worker Deployment 0 → N, waking on the Redis list toWorker in this namespace', () => {
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
    expect(s.spec.triggers.map((x: Obj) => x.type)).toEqual(['redis', 'prometheus']);
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
    // It authenticates as the Redis ACL user keda, its password from the Secret the redis init container reads.
    expect(t.metadata.username).toBe('keda');
    expect(t.metadata.password, 'no password in the manifest').toBeUndefined();
    const auth = find(objs, 'TriggerAuthentication', t.authenticationRef.name)!;
    expect(auth.apiVersion).toBe('keda.sh/v1alpha1');
    expect(auth.spec.secretTargetRef).toEqual([{ parameter: 'password', name: 'redis-users', key: 'REDIS_KEDA_PASSWORD' }]);
    // KEDA owns the count: a replicas field in the Deployment would fight it on every apply.
    expect(find(objs, 'Deployment', 'worker')!.spec.replicas).toBeUndefined();
  });

  it('prod includes the network policies; dev (a laptop cluster) does not', () => {
    const names = rendered.prod.filter((o) => o.kind === 'NetworkPolicy').map((o) => o.metadata.name).sort();
    expect(names).toEqual([
      'cert-manager-http01-solver', 'default-deny-ingress', 'logs-egress', 'minio-clients', 'redis-clients', 'rest-admin', 'rest-egress', 'rest-http',
      'stores-no-egress', 'worker-egress', 'worker-health',
    ]);
    expect(rendered.dev.filter((o) => o.kind === 'NetworkPolicy')).toEqual([]);
  });

  it('prod network policies deny ingress by default and open exactly the ports the services use, to whom uses them', () => {
    const objs = rendered.prod;
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
    /**
     * Can a pod reach a pod with `to` labels on `port`? `from`: a pod's labels in this namespace, or
     * `{ namespace }` for any pod of another namespace, or null for an address outside the cluster.
     */
    const allowed = (from: Obj | { namespace: string } | null, to: Obj, port: number) =>
      pols.some((p) => matches(p.spec.podSelector, to) && (p.spec.ingress ?? []).some((rule: Obj) =>
        (rule.ports ?? []).some((pp: Obj) => pp.port === port) &&
        (!rule.from || (from !== null && rule.from.some((f: Obj) => {
          if ('namespace' in from && typeof from.namespace === 'string') {
            return !f.podSelector && f.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === from.namespace;
          }
          return f.podSelector && !f.namespaceSelector && matches(f.podSelector, from);
        })))));
    const [rest, worker, logs, redis, minio, job] = [labelsOf('rest'), labelsOf('worker'), labelsOf('logs'), labelsOf('redis'), labelsOf('minio', 'object-store'), labelsOf('minio', 'bucket-setup')];
    // The API: the ingress controller's namespace only; not other pods, not the outside, not other namespaces.
    expect(allowed({ namespace: 'ingress-nginx' }, rest, 5000)).toBe(true);
    expect(allowed(null, rest, 5000)).toBe(false);
    expect(allowed(worker, rest, 5000)).toBe(false);
    expect(allowed({ namespace: 'default' }, rest, 5000)).toBe(false);
    // Probes and metrics: never through the ingress controller; Prometheus' namespace only.
    const adminPort = find(objs, 'Deployment', 'rest')!.spec.template.spec.containers[0].ports.find((p: Obj) => p.name === 'admin').containerPort;
    expect(allowed({ namespace: 'ingress-nginx' }, rest, adminPort)).toBe(false);
    expect(allowed({ namespace: 'monitoring' }, rest, adminPort)).toBe(true);
    expect(allowed({ namespace: 'monitoring' }, rest, 5000)).toBe(false);
    expect(allowed({ namespace: 'monitoring' }, worker, 9100)).toBe(true);
    expect(allowed({ namespace: 'ingress-nginx' }, worker, 9100)).toBe(false);
    for (const c of [rest, worker, logs]) expect(allowed(c, redis, 6379)).toBe(true);
    expect(allowed({ namespace: 'ingress-nginx' }, redis, 6379)).toBe(false);
    expect(allowed({ namespace: 'ingress-nginx' }, minio, 9000)).toBe(false);
    for (const c of [rest, worker, job]) expect(allowed(c, minio, 9000)).toBe(true);
    expect(allowed(logs, minio, 9000)).toBe(false);
    expect(allowed(rest, minio, 9001)).toBe(false);
    expect(allowed(null, redis, 6379)).toBe(false);
    // KEDA: its operator's pods only, not the whole keda namespace (webhooks, metrics server)
    const keda = pols.find((p) => p.metadata.name === 'redis-clients')!.spec.ingress[0].from.find((f: Obj) => f.namespaceSelector);
    expect(keda.namespaceSelector.matchLabels['kubernetes.io/metadata.name']).toBe('keda');
    expect(keda.podSelector.matchLabels).toEqual({ 'app.kubernetes.io/name': 'keda-operator' });
  });

  it('the network policies let the worker reach Redis, MinIO, DNS and public addresses only (the callback SSRF rule)', () => {
    const pol = find(rendered.prod, 'NetworkPolicy', 'worker-egress')!;
    expect(pol.spec.podSelector.matchLabels).toEqual({ 'app.kubernetes.io/name': 'worker' });
    expect(pol.spec.policyTypes).toEqual(['Egress']);
    const rules = pol.spec.egress as Obj[];
    const portsTo = (pred: (to: Obj) => boolean): string[] =>
      rules.filter((r) => r.to.some(pred)).flatMap((r) => (r.ports ?? []).map((p: Obj) => `${p.protocol}/${p.port}`));
    expect(portsTo((t) => t.podSelector?.matchLabels?.['app.kubernetes.io/name'] === 'redis')).toEqual(['TCP/6379']);
    expect(portsTo((t) => t.podSelector?.matchLabels?.['app.kubernetes.io/component'] === 'object-store')).toEqual(['TCP/9000']);
    expect(portsTo((t) => t.podSelector?.matchLabels?.['k8s-app'] === 'kube-dns').sort()).toEqual(['TCP/53', 'UDP/53']);
    // NodeLocal DNSCache answers on 169.254.20.10 (inside the excepted link-local range): DNS only
    expect(portsTo((t) => t.ipBlock?.cidr === '169.254.20.10/32').sort()).toEqual(['TCP/53', 'UDP/53']);
    const blocks = rules.filter((r) => !r.ports).flatMap((r) => r.to).filter((t: Obj) => t.ipBlock).map((t: Obj) => t.ipBlock as { cidr: string; except: string[] });
    expect(blocks.map((b) => b.cidr).sort()).toEqual(['0.0.0.0/0', '::/0']);
    const excepted = new BlockList();
    for (const cidr of blocks.flatMap((b) => b.except)) {
      const [net, bits] = cidr.split('/');
      expect(isPrivateAddress(net!), cidr).toBe(true);
      excepted.addSubnet(net!, Number(bits), isIP(net!) === 6 ? 'ipv6' : 'ipv4');
    }
    const inExcept = (ip: string) => excepted.check(ip, isIP(ip) === 6 ? 'ipv6' : 'ipv4');
    for (const ip of ['10.1.2.3', '172.20.1.1', '192.168.1.10', '169.254.169.254', '127.0.0.1', '100.64.0.1', 'fd00::1', 'fe80::1', '::1', '64:ff9b::a00:1', '64:ff9b:1::1', '2002:a00:1::1', '::a00:1', 'fec0::1']) {
      expect(isPrivateAddress(ip)).toBe(true);
      expect(inExcept(ip), ip).toBe(true);
    }
    for (const ip of ['93.184.216.34', '8.8.8.8', '2606:4700::1111']) expect(inExcept(ip), ip).toBe(false);
  });

  it('dev runs one fixed worker and needs no KEDA; the HPA fallback replaces the ScaledObject', () => {
    expect(rendered.dev.filter((o) => o.kind === 'ScaledObject' || o.kind === 'TriggerAuthentication')).toEqual([]);
    expect(rendered.prodHpa.filter((o) => o.apiVersion.startsWith('keda.sh/')), 'no KEDA object is left for a cluster without its CRDs').toEqual([]);
    expect(find(rendered.dev, 'Deployment', 'worker')!.spec.replicas).toBe(1);
    const hpa = rendered.prodHpa;
    expect(hpa.filter((o) => o.kind === 'ScaledObject')).toEqual([]);
    const h = find(hpa, 'HorizontalPodAutoscaler', 'worker')!;
    expect(h.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'worker' });
    expect(h.spec.minReplicas).toBeGreaterThanOrEqual(1);
  });
});

kubectl.describe('credentials in the manifests', () => {
  type Statement = { Effect: string; Action: string[]; Resource: string[] };
  /** Actions a policy allows per resource ARN. */
  function grants(policyJson: string): Record<string, string[]> {
    const doc = JSON.parse(policyJson) as { Version: string; Statement: Statement[] };
    expect(doc.Version).toBe('2012-10-17');
    const out: Record<string, string[]> = {};
    for (const st of doc.Statement) {
      expect(st.Effect).toBe('Allow');
      for (const r of st.Resource) out[r] = [...(out[r] ?? []), ...st.Action].sort();
    }
    return out;
  }

  it('MinIO: rest and worker users are scoped to the two buckets, each to the operations its service performs', () => {
    const cm = rendered.prod.find((o) => o.kind === 'ConfigMap' && String(o.metadata.name).startsWith('minio-policies'))!;
    const put = ['s3:AbortMultipartUpload', 's3:ListMultipartUploadParts', 's3:PutObject'];
    // rest: stores uploads (and checks/deletes them), reads and deletes stems, sees that the buckets exist (/readyz).
    expect(grants(cm.data['msaas-rest.json'])).toEqual({
      'arn:aws:s3:::queue': ['s3:ListBucket'],
      'arn:aws:s3:::output': ['s3:ListBucket'],
      'arn:aws:s3:::queue/*': [...put, 's3:DeleteObject', 's3:GetObject'].sort(),
      'arn:aws:s3:::output/*': ['s3:DeleteObject', 's3:GetObject'],
    });
    // worker: reads and deletes uploads, writes stems (and removes its own when the song was deleted meanwhile).
    expect(grants(cm.data['msaas-worker.json'])).toEqual({
      'arn:aws:s3:::queue/*': ['s3:DeleteObject', 's3:GetObject'],
      'arn:aws:s3:::output/*': [...put, 's3:DeleteObject', 's3:GetObject'].sort(),
    });
    for (const f of ['msaas-rest.json', 'msaas-worker.json']) expect(cm.data[f], f).not.toMatch(/"\*"|s3:\*|admin:/);
    // The buckets the policies name are the ones the services use.
    const config = rendered.prod.find((o) => o.kind === 'ConfigMap' && String(o.metadata.name).startsWith('msaas-config'))!;
    expect([config.data.QUEUE_BUCKET, config.data.OUTPUT_BUCKET]).toEqual(['queue', 'output']);
  });

  it('MinIO: the bucket Job creates both users from minio-users and attaches their policies (mc admin user add / policy create / attach)', () => {
    const job = find(rendered.prod, 'Job', 'minio-buckets')!;
    const c = job.spec.template.spec.containers[0];
    const script: string = c.args.join('\n');
    const mc = 'mc --config-dir /tmp/mc admin';
    expect(script).toContain(`${mc} policy create local msaas-rest /policies/msaas-rest.json`);
    expect(script).toContain(`${mc} policy create local msaas-worker /policies/msaas-worker.json`);
    expect(script).toContain(`${mc} user add local "$REST_ACCESS_KEY" "$REST_SECRET_KEY"`);
    expect(script).toContain(`${mc} user add local "$WORKER_ACCESS_KEY" "$WORKER_SECRET_KEY"`);
    expect(script).toContain('attach msaas-rest "$REST_ACCESS_KEY"');
    expect(script).toContain('attach msaas-worker "$WORKER_ACCESS_KEY"');
    expect(script).toMatch(/admin policy attach local "\$1" --user "\$2"/);
    // policies are created before they are attached; users exist before the attach too
    expect(script.indexOf('policy create local msaas-rest')).toBeLessThan(script.indexOf('attach msaas-rest "'));
    expect(script.indexOf('user add local "$REST_ACCESS_KEY"')).toBeLessThan(script.indexOf('attach msaas-rest "'));
    expect(c.envFrom).toEqual([{ secretRef: { name: 'minio-users' } }]);
    const mount = c.volumeMounts.find((m: Obj) => m.mountPath === '/policies');
    const vol = job.spec.template.spec.volumes.find((v: Obj) => v.name === mount.name);
    expect(vol.configMap.name).toMatch(/^minio-policies/);
    // the script is valid sh, and refuses a service key equal to the root user
    const r = spawnSync('sh', ['-n', '-c', script]);
    expect(r.status).toBe(0);
    expect(script).toMatch(/\[ "\$key" = "\$MINIO_ROOT_USER" \]/);
  });

  it('Redis: the init container renders users.acl into the aclfile redis.conf names, from the Secret redis-users', () => {
    const sts = find(rendered.prod, 'StatefulSet', 'redis')!;
    const pod = sts.spec.template.spec;
    const init = pod.initContainers.find((c: Obj) => c.name === 'acl');
    const main = pod.containers[0];
    const cm = rendered.prod.find((o) => o.kind === 'ConfigMap' && String(o.metadata.name).startsWith('redis-config'))!;
    expect(Object.keys(cm.data).sort()).toEqual(['redis.conf', 'render-acl.sh', 'users.acl']);
    const aclfile = /^aclfile (\S+)$/m.exec(cm.data['redis.conf'])![1]!;
    expect(cm.data['redis.conf']).toMatch(/^protected-mode yes$/m);
    expect(init.command).toEqual(['sh', '/usr/local/etc/redis/render-acl.sh', '/usr/local/etc/redis/users.acl', aclfile]);
    expect(init.envFrom).toEqual([{ secretRef: { name: 'redis-users' } }]);
    expect(init.image).toBe(main.image);
    const aclDir = path.posix.dirname(aclfile);
    const initMount = init.volumeMounts.find((m: Obj) => m.mountPath === aclDir);
    const mainMount = main.volumeMounts.find((m: Obj) => m.mountPath === aclDir);
    expect(initMount.name).toBe(mainMount.name);
    expect(mainMount.readOnly).toBe(true);
    expect(pod.volumes.find((v: Obj) => v.name === mainMount.name).emptyDir.medium).toBe('Memory');
    // every {{VAR}} of the template is a key the services' and KEDA's references agree on
    const rules = String(cm.data['users.acl']).split('\n').filter((l) => !l.startsWith('#')).join('\n');
    const vars = [...new Set([...rules.matchAll(/\{\{([A-Z0-9_]+)\}\}/g)].map((m) => m[1]))].sort();
    expect(vars).toEqual(['REDIS_KEDA_PASSWORD', 'REDIS_LOGS_PASSWORD', 'REDIS_REST_PASSWORD', 'REDIS_WORKER_PASSWORD']);
    const refs = new Set<string>();
    for (const d of rendered.prod.filter((o) => o.kind === 'Deployment')) {
      for (const e of d.spec.template.spec.containers[0].env ?? []) if (e.valueFrom?.secretKeyRef?.name === 'redis-users') refs.add(e.valueFrom.secretKeyRef.key);
    }
    refs.add(find(rendered.prod, 'TriggerAuthentication', 'redis-keda')!.spec.secretTargetRef[0].key);
    expect([...refs].sort()).toEqual(vars);
    // the dev Secret has every one, as the init container needs
    const dev = find(render('redis'), 'Secret', 'redis-users')!;
    expect(Object.keys(dev.data).sort()).toEqual(vars);
    expect(dev.metadata.labels['msaas-credentials']).toBe('development');
  });
});
