/** The 1, 5 and 15 minute load averages as /proc/loadavg prints them, for the benchmarks' headers. */
import { readFileSync } from 'node:fs';

export const loadAverage = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
