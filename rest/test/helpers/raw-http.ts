import net from 'node:net';

/** What came back for one raw request. */
export type RawOutcome =
  | { kind: 'response'; status: number; headers: Record<string, string>; body: Buffer; ms: number }
  /** The server closed the connection without a status line. */
  | { kind: 'closed'; ms: number; error?: string }
  /** Nothing happened within the client's own deadline: the server hung. */
  | { kind: 'hung'; ms: number };

function parseHead(head: string): { status: number; headers: Record<string, string> } | null {
  const lines = head.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  if (!m) return null;
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(m[1]), headers };
}

function dechunk(buf: Buffer): Buffer {
  const out: Buffer[] = [];
  let i = 0;
  while (i < buf.length) {
    const eol = buf.indexOf('\r\n', i);
    if (eol < 0) break;
    const size = parseInt(buf.subarray(i, eol).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    out.push(buf.subarray(eol + 2, eol + 2 + size));
    i = eol + 2 + size + 2;
  }
  return Buffer.concat(out);
}

/**
 * Sends bytes exactly as given over a fresh loopback socket (no client-side normalisation of the
 * path, headers or body) and reads until the server closes. Event streams resolve as soon as their
 * headers arrive. `trickle` sends the bytes in pieces with pauses, then optionally stops early.
 */
export function rawRequest(
  port: number,
  data: Buffer,
  opts: { deadlineMs?: number; trickle?: { pieces: number; pauseMs: number; stopAfter?: number } } = {},
): Promise<RawOutcome> {
  const started = Date.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let settled = false;
    let lastError: string | undefined;
    const socket = net.connect(port, '127.0.0.1');
    const settle = (o: RawOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      socket.destroy();
      resolve(o);
    };
    const deadline = setTimeout(() => settle({ kind: 'hung', ms: Date.now() - started }), opts.deadlineMs ?? 20_000);
    const finish = (): void => {
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      const head = end >= 0 ? parseHead(all.subarray(0, end).toString('latin1')) : null;
      if (!head) return settle({ kind: 'closed', ms: Date.now() - started, ...(lastError ? { error: lastError } : {}) });
      let body: Buffer = all.subarray(end + 4);
      if (/chunked/i.test(head.headers['transfer-encoding'] ?? '')) body = dechunk(body);
      settle({ kind: 'response', ...head, body, ms: Date.now() - started });
    };
    const isHead = data.subarray(0, 5).toString('latin1') === 'HEAD ';
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) return;
      // A complete answer ends the exchange even when the server would keep the connection alive.
      const head = all.subarray(0, end).toString('latin1');
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      const bodyBytes = all.length - end - 4;
      if (
        /\r\ncontent-type:\s*text\/event-stream/i.test(head) ||
        isHead ||
        /^HTTP\/1\.[01] (204|304)/.test(head) ||
        (length && bodyBytes >= Number(length[1])) ||
        (/\r\ntransfer-encoding:\s*chunked/i.test(head) && all.subarray(-5).toString('latin1') === '0\r\n\r\n')
      ) {
        finish();
      }
    });
    socket.on('error', (err) => {
      lastError = (err as NodeJS.ErrnoException).code ?? err.message;
    });
    socket.on('close', finish);
    socket.on('connect', () => {
      if (!opts.trickle) {
        socket.write(data, () => undefined);
        return;
      }
      const { pieces, pauseMs, stopAfter } = opts.trickle;
      const size = Math.ceil(data.length / pieces);
      let i = 0;
      const next = (): void => {
        if (settled || socket.destroyed) return;
        if (stopAfter !== undefined && i >= stopAfter) return; // go quiet, keep the socket open
        const piece = data.subarray(i * size, (i + 1) * size);
        if (piece.length === 0) return;
        socket.write(piece, () => undefined);
        i++;
        setTimeout(next, pauseMs);
      };
      next();
    });
  });
}

/** A request as bytes: request line, Host, Connection: close, the given headers, Content-Length when a body is given without one. */
export function buildRequest(method: string, target: string, headers: [string, string][] = [], body?: Buffer): Buffer {
  const lines = [`${method} ${target} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close'];
  const names = new Set(headers.map(([k]) => k.toLowerCase()));
  for (const [k, v] of headers) lines.push(`${k}: ${v}`);
  if (body && !names.has('content-length') && !names.has('transfer-encoding')) lines.push(`Content-Length: ${body.length}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8'), body ?? Buffer.alloc(0)]);
}
