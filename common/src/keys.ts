/** Redis key names. Production uses the lab's bare names (`toWorker`, `logging`); tests set a prefix. */
export interface Keys {
  readonly toWorker: string;
  readonly dead: string;
  readonly workers: string;
  readonly logging: string;
  readonly loggingChannel: string;
  readonly events: string;
  processing(workerId: string): string;
  heartbeat(workerId: string): string;
  job(songhash: string): string;
  rate(key: string, window: number): string;
}

export function makeKeys(prefix = ''): Keys {
  const p = prefix;
  return {
    toWorker: `${p}toWorker`,
    dead: `${p}dead`,
    workers: `${p}workers`,
    logging: `${p}logging`,
    loggingChannel: `${p}logging`,
    events: `${p}job-events`,
    processing: (workerId) => `${p}processing:${workerId}`,
    heartbeat: (workerId) => `${p}heartbeat:${workerId}`,
    job: (songhash) => `${p}job:${songhash}`,
    rate: (key, window) => `${p}rate:${key}:${window}`,
  };
}
