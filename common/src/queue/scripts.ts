import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { luaPrelude } from './lua-prelude.ts';

/**
 * Each atomic queue transition is one Lua script in ./lua, named `<operation>-<number of keys>.lua`.
 * Every script that changes a job record publishes the job's songhash on the events channel itself.
 */
const SCRIPTS = [
  'submit-12',
  'start-4',
  'progress-3',
  'record-stems-3',
  'complete-6',
  'fail-10',
  'release-6',
  'reap-9',
  'remove-stem-4',
  'set-callback-status-3',
  'drop-claim-11',
  'expire-song-5',
  'heartbeat-2',
  'charge-decoded-4',
  'upload-gone-2',
  'split-8',
  'range-start-5',
  'range-done-3',
  'range-piece-2',
  'range-fail-11',
  'range-release-7',
  'reap-ranges-9',
] as const;
export type ScriptName = (typeof SCRIPTS)[number];

export interface ScriptSource {
  lua: string;
  numberOfKeys: number;
}

const read = (path: string): string => readFileSync(new URL(`./lua/${path}.lua`, import.meta.url), 'utf8');

/**
 * A script whose first line is `-- uses: <lib>` gets ./lua/lib/<lib>.lua in front of it: helpers
 * written once; before them, the output formats' table generated from formats.ts (lua-prelude.ts).
 */
function withLibraries(lua: string): string {
  // `-- uses: songs, ranges`: several libraries, in that order (a later one may use an earlier one's helpers)
  const uses = /^-- uses: ([a-z-]+(?:, [a-z-]+)*)\n/.exec(lua);
  return uses ? `${luaPrelude()}${uses[1]!.split(', ').map((lib) => `${read(`lib/${lib}`)}\n`).join('')}${lua}` : lua;
}

const sources = Object.fromEntries(
  SCRIPTS.map((name) => [name, { lua: withLibraries(read(name)), numberOfKeys: Number(name.split('-').pop()) }]),
) as Record<ScriptName, ScriptSource>;

/** A script's source, for code that cannot import this module (the worker's heartbeat thread). */
export function scriptSource(name: ScriptName): ScriptSource {
  return sources[name];
}

function scriptCommand(name: ScriptName): string {
  return `msaas_${name.replaceAll('-', '_')}`;
}

export type ScriptReply = string | number | null | ScriptReply[];

/** Runs a queue script by name (EVALSHA with EVAL fallback, via ioredis defineCommand). */
export async function runScript(redis: Redis, name: ScriptName, keys: string[], args: (string | number)[]): Promise<ScriptReply> {
  const command = scriptCommand(name);
  const callable = redis as unknown as Record<string, ((...a: (string | number)[]) => Promise<ScriptReply>) | undefined>;
  if (typeof callable[command] !== 'function') redis.defineCommand(command, sources[name]);
  const fn = callable[command] as (...a: (string | number)[]) => Promise<ScriptReply>;
  return fn.call(redis, ...keys, ...args);
}
