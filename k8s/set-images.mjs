#!/usr/bin/env node
// Pin the three service images in an overlay's kustomization.yaml (used by `make pin`).
//   node k8s/set-images.mjs <overlay dir> <registry or ""> <image prefix> <tag> [<service>=sha256:<64 hex> ...]
// Keeps comments and layout (yaml Document API); refuses "latest" and empty tags. With a digest for
// a service (`make pin DIGESTS=1` reads them from the pushed images), its entry also gets
// `digest:`, so the cluster pulls exactly those bytes (kustomize renders name:tag@sha256:…) —
// a tag can be pushed again, a digest cannot.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';

const SERVICES = ['rest', 'worker', 'logs'];
const [dir, registry = '', prefix = 'msaas-', tag, ...pins] = process.argv.slice(2);
if (!dir || !tag) {
  console.error('usage: set-images.mjs <overlay dir> <registry|""> <prefix> <tag> [<service>=sha256:<digest> ...]');
  process.exit(2);
}
if (tag === 'latest' || !/^[\w][\w.-]{0,127}$/.test(tag)) {
  console.error(`refusing tag "${tag}": use a version tag (make sets <version>-<sha>)`);
  process.exit(2);
}
const digests = {};
for (const pin of pins) {
  const m = /^([a-z]+)=(sha256:[0-9a-f]{64})$/.exec(pin);
  if (!m || !SERVICES.includes(m[1])) {
    console.error(`refusing digest "${pin}": expected <${SERVICES.join('|')}>=sha256:<64 hex digits>`);
    process.exit(2);
  }
  digests[m[1]] = m[2];
}
const file = path.join(dir, 'kustomization.yaml');
const doc = parseDocument(readFileSync(file, 'utf8'));
for (const service of SERVICES) {
  const base = `msaas-${service}`;
  const newName = `${registry ? `${registry.replace(/\/+$/, '')}/` : ''}${prefix}${service}`;
  const images = doc.get('images') ?? doc.createNode([]);
  if (!doc.has('images')) doc.set('images', images);
  let entry = images.items.find((i) => i.get('name') === base);
  if (!entry) {
    entry = doc.createNode({ name: base });
    images.add(entry);
  }
  entry.set('newName', newName);
  entry.set('newTag', tag);
  if (digests[service]) entry.set('digest', digests[service]);
  else entry.delete('digest'); // a digest of an older tag would pin the old image
  console.log(`${file}: ${base} → ${newName}:${tag}${digests[service] ? `@${digests[service]}` : ''}`);
}
writeFileSync(file, doc.toString());
