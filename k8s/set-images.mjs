#!/usr/bin/env node
// Pin the three service images in an overlay's kustomization.yaml (used by `make pin`).
//   node k8s/set-images.mjs <overlay dir> <registry or ""> <image prefix> <tag>
// Keeps comments and layout (yaml Document API); refuses "latest" and empty tags.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';

const [dir, registry = '', prefix = 'msaas-', tag] = process.argv.slice(2);
if (!dir || !tag) {
  console.error('usage: set-images.mjs <overlay dir> <registry|""> <prefix> <tag>');
  process.exit(2);
}
if (tag === 'latest' || !/^[\w][\w.-]{0,127}$/.test(tag)) {
  console.error(`refusing tag "${tag}": use a version tag (make sets <version>-<sha>)`);
  process.exit(2);
}
const file = path.join(dir, 'kustomization.yaml');
const doc = parseDocument(readFileSync(file, 'utf8'));
for (const service of ['rest', 'worker', 'logs']) {
  const base = `msaas-${service}`;
  const newName = `${registry ? `${registry.replace(/\/+$/, '')}/` : ''}${prefix}${service}`;
  const images = doc.get('images') ?? doc.createNode([]);
  if (!doc.has('images')) doc.set('images', images);
  const entry = images.items.find((i) => i.get('name') === base);
  if (entry) {
    entry.set('newName', newName);
    entry.set('newTag', tag);
  } else {
    images.add(doc.createNode({ name: base, newName, newTag: tag }));
  }
  console.log(`${file}: ${base} → ${newName}:${tag}`);
}
writeFileSync(file, doc.toString());
