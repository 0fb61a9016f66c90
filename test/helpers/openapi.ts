/**
 * Checks an HTTP response against the API document (GET /openapi.json): the status is documented
 * for the operation, the content type is one it lists, and a JSON body matches the schema (ajv,
 * JSON Schema 2020-12, the document's component references resolved). Used with supertest
 * responses and with fetch responses alike.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { expect } from 'vitest';

type Json = Record<string, unknown>;

export interface SeenResponse {
  status: number;
  contentType: string | undefined;
  /** The parsed JSON body (only read when the content type is JSON). */
  body: unknown;
}

const BASE = 'https://msaas.invalid/components/schemas/';

function rewriteRefs(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(rewriteRefs);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Json).map(([k, v]) => [k, k === '$ref' && typeof v === 'string' ? v.replace('#/components/schemas/', BASE) : rewriteRefs(v)]),
    );
  }
  return value;
}

export class DocumentChecker {
  private readonly ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  private readonly compiled = new Map<string, ValidateFunction>();
  private readonly templates: { method: string; template: string; re: RegExp }[] = [];
  /** Every (METHOD path-template status) a check has seen: what the tests exercised. */
  readonly seen = new Set<string>();

  constructor(readonly doc: Json) {
    const schemas = (doc.components as Json).schemas as Record<string, Json>;
    for (const [name, schema] of Object.entries(schemas)) this.ajv.addSchema({ ...(rewriteRefs(schema) as Json), $id: `${BASE}${name}` });
    for (const [template, ops] of Object.entries(doc.paths as Record<string, Json>)) {
      const re = new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{\w+\}/g, '[^/]+')}$`);
      for (const method of Object.keys(ops)) this.templates.push({ method, template, re });
    }
  }

  /** The path template of a concrete path (`/apiv1/jobs/abc…` → `/apiv1/jobs/{songhash}`). */
  templateOf(method: string, path: string): string | undefined {
    const m = method.toLowerCase() === 'head' ? 'get' : method.toLowerCase();
    const bare = path.split('?')[0]!;
    // The most specific: fewest parameters.
    return this.templates
      .filter((t) => t.method === m && t.re.test(bare))
      .sort((a, b) => (a.template.match(/\{/g)?.length ?? 0) - (b.template.match(/\{/g)?.length ?? 0))[0]?.template;
  }

  /** Asserts the response is one the document describes for `method path`. */
  check(method: string, path: string, res: SeenResponse): void {
    const template = this.templateOf(method, path);
    expect(template, `${method} ${path} is not in the API document`).toBeDefined();
    const op = ((this.doc.paths as Record<string, Json>)[template!] as Record<string, Json>)[method.toLowerCase() === 'head' ? 'get' : method.toLowerCase()]!;
    const responses = op.responses as Record<string, Json>;
    const documented = responses[String(res.status)];
    expect(documented, `${method} ${path} answered ${res.status}, which the document does not list (it lists ${Object.keys(responses).join(', ')}); body ${JSON.stringify(res.body)?.slice(0, 300)}`).toBeDefined();
    this.seen.add(`${method.toUpperCase()} ${template} ${res.status}`);
    const content = documented!.content as Record<string, Json> | undefined;
    if (!content || method.toUpperCase() === 'HEAD') return;
    const type = (res.contentType ?? '').split(';')[0]!.trim().toLowerCase();
    expect(Object.keys(content), `${method} ${path} ${res.status} answered ${type}`).toContain(type);
    if (type !== 'application/json') return;
    const schema = content[type]!.schema as Json | undefined;
    if (!schema) return;
    const key = `${template} ${method} ${res.status}`;
    let validate = this.compiled.get(key);
    if (!validate) {
      validate = this.ajv.compile(rewriteRefs(schema) as Json);
      this.compiled.set(key, validate);
    }
    const ok = validate(res.body);
    expect(ok, `${method} ${path} ${res.status}: the body does not match the document: ${this.ajv.errorsText(validate.errors)}; body ${JSON.stringify(res.body)?.slice(0, 500)}`).toBe(true);
  }
}

let shared: DocumentChecker | undefined;
/** A checker of the document rest serves (built from the same route list, without a request). */
export async function documentChecker(): Promise<DocumentChecker> {
  const { apiDocument } = await import('../../rest/src/api-document.ts');
  return (shared ??= new DocumentChecker(apiDocument({ version: 'test' })));
}

/**
 * Asserts a supertest response (its own method and path) is one the document describes. A path no
 * route serves (a 404 `not_found` for an unknown route) is outside the document: not checked.
 */
export async function expectDocumented(res: { status: number; headers: Record<string, string>; body: unknown; req?: { method?: string; path?: string } }): Promise<void> {
  const { method, path } = res.req ?? {};
  if (!method || !path) throw new Error('expectDocumented needs a supertest response (with its request)');
  const checker = await documentChecker();
  if (checker.templateOf(method, path) === undefined && res.status === 404) return;
  checker.check(method, path, fromSupertest(res));
}

/**
 * An `onResponse` hook for `@msaas/client` that checks every answer against the API document: the
 * status and content type, and a JSON body against its schema (read from a clone, so the caller's
 * body is untouched; streams are not read).
 */
export function contractHook(): (seen: { method: string; path: string; response: Response }) => Promise<void> {
  return async ({ method, path, response }) => {
    const checker = await documentChecker();
    const type = response.headers.get('content-type') ?? undefined;
    const body = type?.startsWith('application/json') ? await response.clone().json() : undefined;
    checker.check(method, path, { status: response.status, contentType: type, body });
  };
}

/** A supertest response as the checker reads it. */
export const fromSupertest = (res: { status: number; headers: Record<string, string>; body: unknown }): SeenResponse => ({
  status: res.status,
  contentType: res.headers['content-type'],
  body: res.body,
});
