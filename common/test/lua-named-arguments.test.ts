import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

// Every queue script names its inputs at its top (`local jobKey = KEYS[1]`, BullMQ style) and says
// what it emits; its body reads the names, never a raw KEYS[n] / ARGV[n].
const dir = new URL('../src/queue/lua/', import.meta.url);
const scripts = readdirSync(dir).filter((f) => f.endsWith('.lua'));

describe('queue scripts name their KEYS and ARGV at the top', () => {
  it('finds the scripts', () => expect(scripts.length).toBeGreaterThan(10));

  it.each(scripts)('%s: inputs bound to named locals before the body, none indexed in it', (file) => {
    const lines = readFileSync(new URL(file, dir), 'utf8').split('\n');
    const binding = /^local [A-Za-z_]\w* = (?:tonumber\()?(KEYS|ARGV)\[\d+\]/;
    const raw = /\b(KEYS|ARGV)\[\d+\]/;
    const lastBinding = lines.reduce((last, line, i) => (binding.test(line) ? i : last), -1);
    const usesInputs = lines.some((l) => raw.test(l.replace(/--.*$/, '')));
    if (!usesInputs) return;
    expect(lastBinding).toBeGreaterThanOrEqual(0);
    const header = lines.slice(0, lastBinding + 1);
    // the header is comments and bindings only
    for (const line of header) expect(line === '' || line.startsWith('--') || binding.test(line)).toBe(true);
    expect(header.join('\n')).toMatch(/-- (Emits|.*\bEmits\b)/);
    const body = lines.slice(lastBinding + 1).map((l) => l.replace(/--.*$/, ''));
    expect(body.filter((l) => raw.test(l))).toEqual([]);
  });

  it('each KEYS count matches the number in the file name', () => {
    for (const file of scripts) {
      const keys = Number(/-(\d+)\.lua$/.exec(file)?.[1]);
      const text = readFileSync(new URL(file, dir), 'utf8');
      const used = new Set([...text.matchAll(/KEYS\[(\d+)\]/g)].map((m) => Number(m[1])));
      expect(Math.max(0, ...used), file).toBeLessThanOrEqual(keys);
    }
  });
});
