/**
 * What counts as a correct answer to one fuzz request: a 2xx/3xx where the input is valid, else a
 * 4xx JSON `{error, detail}` from Express; never a 5xx, a hang or a stack trace. Requests Node's HTTP
 * parser rejects before Express sees them get its own bodiless 4xx, allowed only where the request
 * was built to reach the parser (Spec.mayHitParser). The tally is what the run summary reports.
 */
import type { RawOutcome } from '../helpers/raw-http.ts';
import type { Spec } from './arbitraries.ts';

const STACK_RE = /\n\s+at |node_modules|\/work\/|\.ts:\d+|root:x:0:0/;

export interface Tally {
  total: number;
  byCat: Record<string, number>;
  msByCat: Record<string, number>;
  byStatus: Record<string, number>;
  byError: Record<string, number>;
  parser: number;
  accepted: Set<string>;
  deleted: Set<string>;
}

export const newTally = (): Tally => ({ total: 0, byCat: {}, msByCat: {}, byStatus: {}, byError: {}, parser: 0, accepted: new Set(), deleted: new Set() });

/** null when the answer is acceptable, else what is wrong with it. Counts the answer in `t`. */
export function judge(s: Spec, o: RawOutcome, t: Tally): string | null {
  t.total++;
  t.byCat[s.cat] = (t.byCat[s.cat] ?? 0) + 1;
  t.msByCat[s.cat] = (t.msByCat[s.cat] ?? 0) + o.ms;
  if (s.deletes) t.deleted.add(s.deletes);
  if (o.kind === 'hung') return 'no answer and no close: the server hung';
  if (o.kind === 'closed') {
    t.byStatus.closed = (t.byStatus.closed ?? 0) + 1;
    return s.mayClose || s.mayHitParser ? null : `closed without a response (${o.error ?? 'eof'})`;
  }
  t.byStatus[o.status] = (t.byStatus[o.status] ?? 0) + 1;
  if (o.status >= 500) return `status ${o.status}: ${o.body.toString('utf8').slice(0, 300)}`;
  const text = /json|text|html|javascript|svg/.test(o.headers['content-type'] ?? '') ? o.body.toString('utf8') : '';
  if (STACK_RE.test(text)) return `leaks internals: ${text.slice(0, 300)}`;
  const fromExpress = 'content-security-policy' in o.headers;
  if (!fromExpress) {
    t.parser++;
    if (!s.mayHitParser) return `answered below Express (status ${o.status}) for a request Express should see`;
    return o.status >= 400 && o.status < 500 ? null : `parser answered ${o.status}`;
  }
  if (o.status >= 400) {
    if (!/^application\/json/.test(o.headers['content-type'] ?? '')) return `${o.status} without a JSON content type (${o.headers['content-type']})`;
    if (s.bytes.subarray(0, 5).toString() === 'HEAD ') return null;
    let body: { error?: unknown; detail?: unknown };
    try {
      body = JSON.parse(o.body.toString('utf8'));
    } catch {
      return `${o.status} with a body that is not JSON: ${o.body.toString('utf8').slice(0, 200)}`;
    }
    if (typeof body.error !== 'string' || typeof body.detail !== 'string') return `${o.status} without {error, detail}: ${JSON.stringify(body).slice(0, 200)}`;
    t.byError[body.error] = (t.byError[body.error] ?? 0) + 1;
    if (process.env.FUZZ_DEBUG && s.cat === process.env.FUZZ_DEBUG) console.log(`[debug] ${s.label} -> ${o.status} ${JSON.stringify(body).slice(0, 200)} :: ${s.bytes.subarray(s.bytes.indexOf("\r\n\r\n") + 4).toString("latin1").slice(0, 80)}`);
    return null;
  }
  if (s.cat.startsWith('separate') && o.status === 200) {
    const body = JSON.parse(o.body.toString('utf8')) as { hash?: string; reason?: string };
    if (!/^[0-9a-f]{56}$/.test(body.hash ?? '')) return `200 without a songhash: ${JSON.stringify(body).slice(0, 200)}`;
    t.accepted.add(body.hash!);
  }
  return null;
}
