import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

/** Each atomic queue transition is one Lua script in ./lua, named `<operation>-<number of keys>.lua`. */
const SCRIPTS = ['enqueue-2', 'start-1', 'progress-2', 'complete-3', 'fail-4', 'release-3', 'reap-5'] as const;
type ScriptName = (typeof SCRIPTS)[number];

const sources: Record<ScriptName, { lua: string; numberOfKeys: number }> = Object.fromEntries(
  SCRIPTS.map((name) => [
    name,
    {
      lua: readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8'),
      numberOfKeys: Number(name.split('-').pop()),
    },
  ]),
) as Record<ScriptName, { lua: string; numberOfKeys: number }>;

export type ScriptReply = string | number | null | ScriptReply[];

/** Runs a queue script by name (EVALSHA with EVAL fallback, via ioredis defineCommand). */
export async function runScript(redis: Redis, name: ScriptName, keys: string[], args: (string | number)[]): Promise<ScriptReply> {
  const command = `msaas_${name.replace('-', '_')}`;
  const callable = redis as unknown as Record<string, ((...a: (string | number)[]) => Promise<ScriptReply>) | undefined>;
  if (typeof callable[command] !== 'function') {
    const { lua, numberOfKeys } = sources[name];
    redis.defineCommand(command, { lua, numberOfKeys });
  }
  const fn = callable[command] as (...a: (string | number)[]) => Promise<ScriptReply>;
  return fn.call(redis, ...keys, ...args);
}
