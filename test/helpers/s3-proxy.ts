/**
 * An HTTP proxy in front of the S3-compatible store that lets a test stop a worker's request at a
 * chosen point: hold a request before it reaches the store, or stall a download after some bytes.
 * The worker is pointed at the proxy (MINIO_PORT) and knows nothing of it. Requests are forwarded
 * with their headers unchanged (Host included), so S3 signatures stay valid.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Match {
  method: string;
  path: RegExp;
}

interface Rule extends Match {
  kind: 'hold' | 'stall';
  /** stall: bytes of the response body let through before the stall. */
  afterBytes: number;
  hit: () => void;
  released: boolean;
  release: () => void;
}

export interface Trap {
  /** Resolves when a matching request is held (hold) or has received `afterBytes` (stall). */
  hit: Promise<void>;
  /** Lets the held request through / lets the stalled response finish (if its client still waits). */
  release(): void;
}

export interface S3Proxy {
  port: number;
  /** Requests seen, in order ("PUT /output/<hash>-drums.mp3"). */
  log: string[];
  /** The next matching request is held until release() (dropped if its client goes away first). */
  holdOnce(match: Match): Trap;
  /** The next matching request's response stalls after `afterBytes` body bytes until release(). */
  stallOnce(match: Match & { afterBytes: number }): Trap;
  /**
   * Every matching request is answered with an S3 error (403 AccessDenied, a refusal no client
   * retries) without reaching the store, until the returned function is called. Counts the refusals.
   */
  refuse(match: Match): { count: () => number; stop: () => void };
  close(): Promise<void>;
}

export async function startS3Proxy(upstream: { host?: string; port: number }): Promise<S3Proxy> {
  const rules: Rule[] = [];
  const log: string[] = [];
  const sockets = new Set<import('node:net').Socket>();

  const take = (method: string, url: string): Rule | undefined => {
    const i = rules.findIndex((r) => r.method === method && r.path.test(url));
    return i < 0 ? undefined : rules.splice(i, 1)[0];
  };

  const forward = (req: http.IncomingMessage, res: http.ServerResponse, rule: Rule | undefined): void => {
    const up = http.request(
      { host: upstream.host ?? '127.0.0.1', port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        if (rule?.kind !== 'stall') {
          upRes.pipe(res);
          return;
        }
        let sent = 0;
        let stalled = false;
        const queued: Buffer[] = [];
        let ended = false;
        upRes.on('data', (chunk: Buffer) => {
          if (stalled) {
            queued.push(chunk);
            return;
          }
          const room = rule.afterBytes - sent;
          if (chunk.length < room) {
            sent += chunk.length;
            res.write(chunk);
            return;
          }
          res.write(chunk.subarray(0, room));
          sent += room;
          queued.push(chunk.subarray(room));
          stalled = true;
          upRes.pause();
          rule.hit();
          rule.release = () => {
            if (res.destroyed) return;
            for (const q of queued) res.write(q);
            queued.length = 0;
            stalled = false;
            upRes.resume();
            if (ended) res.end();
          };
          if (rule.released) rule.release();
        });
        upRes.on('end', () => {
          ended = true;
          if (!stalled) res.end();
        });
      },
    );
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  };

  const refusals: { match: Match; count: number }[] = [];
  const server = http.createServer((req, res) => {
    log.push(`${req.method} ${req.url}`);
    const refusal = refusals.find((r) => r.match.method === req.method && r.match.path.test(req.url ?? ''));
    if (refusal) {
      refusal.count++;
      req.resume();
      res.writeHead(403, { 'Content-Type': 'application/xml' });
      res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied (test proxy)</Message></Error>');
      return;
    }
    const rule = take(req.method ?? '', req.url ?? '');
    if (rule?.kind === 'hold') {
      // Nothing reaches the store until release(); a client that dies meanwhile leaves no trace.
      req.pause();
      let gone = false;
      res.on('close', () => (gone = true));
      rule.release = () => {
        if (!gone) forward(req, res, undefined);
      };
      rule.hit();
      if (rule.released) rule.release();
      return;
    }
    forward(req, res, rule);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));

  const trap = (kind: Rule['kind'], match: Match, afterBytes = 0): Trap => {
    let hit!: () => void;
    const hitP = new Promise<void>((r) => (hit = r));
    const rule: Rule = {
      ...match,
      kind,
      afterBytes,
      hit,
      released: false,
      release: () => {
        rule.released = true;
      },
    };
    rules.push(rule);
    return {
      hit: hitP,
      release: () => {
        const pending = rules.indexOf(rule);
        if (pending >= 0) rules.splice(pending, 1);
        rule.released = true;
        rule.release();
      },
    };
  };

  return {
    port: (server.address() as AddressInfo).port,
    log,
    holdOnce: (match) => trap('hold', match),
    stallOnce: (match) => trap('stall', match, match.afterBytes),
    refuse: (match) => {
      const r = { match, count: 0 };
      refusals.push(r);
      return { count: () => r.count, stop: () => void refusals.splice(refusals.indexOf(r), 1) };
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
