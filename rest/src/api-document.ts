/**
 * The OpenAPI 3.1 document of the API, generated from the route list (api-routes.ts), the zod
 * schemas of common/src/contract.ts and the error table (common/src/errors.ts): nothing in it is
 * written twice. `GET /openapi.json` serves it; `GET /docs` renders it (docs-page.ts).
 */
import { z } from 'zod';
import { API_ERRORS, NAMED_SCHEMAS, statusesOf, type ErrorCode } from '@msaas/common';
import { ROUTES, errorsOf, type Body, type RouteSpec } from './api-routes.ts';

type Json = Record<string, unknown>;

const REF_BASE = '#/components/schemas/';

/** A schema of its own (params, query): inline, its named parts as references. */
function inline(schema: z.ZodType): Json {
  const out = z.toJSONSchema(schema, { target: 'draft-2020-12', unrepresentable: 'any', io: 'output' }) as Json;
  delete out.$schema;
  return out;
}

/** A body schema: a reference when it is a named one, else inline. */
function schemaOf(schema: z.ZodType): Json {
  const id = z.globalRegistry.get(schema)?.id;
  return id ? { $ref: `${REF_BASE}${id}` } : inline(schema);
}

/** The named schemas (every zod schema with an `id`: contract.ts, ingest-contract.ts), each once, their references to each other by `$ref`. */
function components(): Record<string, Json> {
  void NAMED_SCHEMAS; // imported for its registrations
  const { schemas } = z.toJSONSchema(z.globalRegistry, { target: 'draft-2020-12', unrepresentable: 'any', io: 'output', uri: (id) => `${REF_BASE}${id}` }) as { schemas: Record<string, Json> };
  for (const s of Object.values(schemas)) {
    delete s.$schema;
    delete s.$id; // a fragment is no $id in JSON Schema 2020-12; the component's name says it
  }
  return schemas;
}

const openApiPath = (path: string): string => path.replace(/:(\w+)/g, '{$1}');

function content(body: Body): Json {
  if ('json' in body) return { 'application/json': { schema: schemaOf(body.json) } };
  return Object.fromEntries(Object.entries(body.media).map(([type, m]) => [type, { ...(m.schema ? { schema: m.schema } : {}) }]));
}

/** The error responses of a route, one per status, each listing its codes and their meanings. */
function errorResponses(codes: readonly ErrorCode[]): Record<string, Json> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) for (const status of statusesOf(code)) byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  const out: Record<string, Json> = {};
  for (const [status, list] of [...byStatus].sort(([a], [b]) => a - b)) {
    out[String(status)] = {
      description: list.map((c) => `\`${c}\`: ${API_ERRORS[c].meaning}`).join('\n\n'),
      ...(status === 429 || status === 503 ? { headers: { 'Retry-After': { description: 'seconds to wait before retrying', schema: { type: 'string' } } } } : {}),
      content: { 'application/json': { schema: { $ref: `${REF_BASE}Error` } } },
    };
  }
  return out;
}

function parameters(route: RouteSpec): Json[] {
  const out: Json[] = [];
  for (const [name, schema] of Object.entries(route.params ?? {})) {
    out.push({ name, in: 'path', required: true, schema: inline(schema), ...(z.globalRegistry.get(schema)?.description ? { description: z.globalRegistry.get(schema)?.description } : {}) });
  }
  for (const [name, field] of Object.entries(route.query?.shape ?? {})) {
    const schema = field as z.ZodType;
    const s = inline(schema);
    const description = typeof s.description === 'string' ? s.description : undefined;
    out.push({ name, in: 'query', required: !schema.safeParse(undefined).success, schema: s, ...(description ? { description } : {}) });
  }
  for (const [name, h] of Object.entries(route.headers ?? {})) {
    out.push({ name, in: 'header', required: false, description: h.description, schema: h.schema ? inline(h.schema) : { type: 'string' } });
  }
  return out;
}

function operation(route: RouteSpec): Json {
  const responses: Record<string, Json> = {};
  for (const [status, r] of Object.entries(route.responses)) {
    responses[status] = {
      description: r.description,
      ...(r.headers ? { headers: Object.fromEntries(Object.entries(r.headers).map(([h, d]) => [h, { description: d, schema: { type: 'string' } }])) } : {}),
      ...(r.body ? { content: content(r.body) } : {}),
    };
  }
  Object.assign(responses, errorResponses(errorsOf(route)));
  const params = parameters(route);
  return {
    operationId: `${route.method}${route.path.replace(/[^a-zA-Z0-9]+(\w)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : '')) || 'Root'}`,
    tags: [route.tag],
    summary: route.summary,
    ...(route.description ? { description: route.description } : {}),
    ...(params.length ? { parameters: params } : {}),
    ...(route.requestBody
      ? {
          requestBody: {
            required: route.requestBody.required ?? true,
            description: route.requestBody.description,
            content: Object.fromEntries(Object.entries(route.requestBody.content).map(([t, s]) => [t, { schema: Array.isArray(s) ? { oneOf: s.map(schemaOf) } : schemaOf(s) }])),
          },
        }
      : {}),
    responses,
    // Keys are optional (API_KEYS unset: open, as the lab); `{}` says the call may go without.
    ...(route.path.startsWith('/apiv1/') ? { security: [{ bearer: [] }, { apiKey: [] }, {}] } : {}),
  };
}

export interface DocumentOptions {
  version: string;
  /** The server URL the document names (default: relative, the origin it was fetched from). */
  serverUrl?: string;
}

export function apiDocument(opts: DocumentOptions): Json {
  const paths: Record<string, Record<string, Json>> = {};
  for (const route of ROUTES) (paths[openApiPath(route.path)] ??= {})[route.method] = operation(route);
  return {
    openapi: '3.1.0',
    info: {
      title: 'MSaaS-TS: music separation as a service',
      version: opts.version,
      description:
        'Separates a song into drums, bass, other and vocals (HTDemucs) behind a Redis queue. Every error is JSON `{"error": "<code>", "detail": "<sentence>"}`; ' +
        'the codes, their statuses and meanings are in the error table (`x-error-codes`, and on /docs). Unknown query parameters and body fields are refused (400 `unknown_field`).',
      license: { name: 'MIT (the code; the model weights have terms of their own: GET /apiv1/info `weights`)', identifier: 'MIT' },
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    servers: [{ url: opts.serverUrl ?? '/' }],
    tags: [
      { name: 'lab', description: 'the original lab\'s routes, unchanged' },
      { name: 'songs', description: 'jobs, the library, progress' },
      { name: 'audio', description: 'stems, mixes, zips, live streams' },
      { name: 'service', description: 'information, health, this document' },
      { name: 'page', description: 'the web page' },
    ],
    paths,
    components: {
      schemas: components(),
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'an API key (when API_KEYS / API_KEYS_FILE are set)' },
        apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'the same key in a header of its own' },
      },
    },
    'x-error-codes': Object.fromEntries(Object.entries(API_ERRORS).map(([code, e]) => [code, { status: statusesOf(code as ErrorCode), meaning: e.meaning }])),
  };
}
