/** Redis key names. Production uses the lab's bare names (`toWorker`, `logging`); tests set a prefix. */
export interface Keys {
  readonly toWorker: string;
  /** A split song's per-stem encoding units, waiting for a worker's side slot (issue 23 item 5). */
  readonly toEncoder: string;
  readonly dead: string;
  readonly workers: string;
  readonly logging: string;
  readonly loggingChannel: string;
  readonly events: string;
  processing(workerId: string): string;
  heartbeat(workerId: string): string;
  job(songhash: string): string;
  rate(key: string, window: number): string;
  /** Tenants holding a claim on the song (set). */
  claims(songhash: string): string;
  /** One tenant's claim: its filename, callback and view of the stems (hash). */
  claim(songhash: string, tenant: string): string;
  /** The tenant's library: every song it claims, by claim time (zset, ms; expired claims pruned when listed). */
  library(tenant: string): string;
  /** Songs the tenant has queued or processing (set; pruned lazily at submit). */
  active(tenant: string): string;
  /** Seconds of audio the tenant submitted on a UTC day (`YYYY-MM-DD`). */
  usage(tenant: string, day: string): string;
  /** Fair order: start tag of each waiting song, each tenant's last tag, the virtual time. */
  readonly order: string;
  readonly orderLast: string;
  readonly vtime: string;
  /** Finished songs by retention deadline (zset, ms). */
  readonly expiries: string;
  readonly sweepLock: string;
  /** Roots that Lua scripts extend with a songhash (and `:<tenant>`). */
  readonly jobRoot: string;
  readonly claimsRoot: string;
  readonly claimRoot: string;
  readonly libraryRoot: string;
}

export function makeKeys(prefix = ''): Keys {
  const p = prefix;
  return {
    toWorker: `${p}toWorker`,
    toEncoder: `${p}toEncoder`,
    dead: `${p}dead`,
    workers: `${p}workers`,
    logging: `${p}logging`,
    loggingChannel: `${p}logging`,
    events: `${p}job-events`,
    processing: (workerId) => `${p}processing:${workerId}`,
    heartbeat: (workerId) => `${p}heartbeat:${workerId}`,
    job: (songhash) => `${p}job:${songhash}`,
    rate: (key, window) => `${p}rate:${key}:${window}`,
    claims: (songhash) => `${p}claims:${songhash}`,
    claim: (songhash, tenant) => `${p}claim:${songhash}:${tenant}`,
    library: (tenant) => `${p}library:${tenant}`,
    active: (tenant) => `${p}active:${tenant}`,
    usage: (tenant, day) => `${p}usage:${tenant}:${day}`,
    order: `${p}queue-order`,
    orderLast: `${p}queue-last`,
    vtime: `${p}queue-vtime`,
    expiries: `${p}expiries`,
    sweepLock: `${p}retention-sweep`,
    jobRoot: `${p}job:`,
    claimsRoot: `${p}claims:`,
    claimRoot: `${p}claim:`,
    libraryRoot: `${p}library:`,
  };
}
