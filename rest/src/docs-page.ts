/**
 * `GET /docs`: the API document rendered as one static HTML page on the server — no script, no
 * CDN, its stylesheet from rest itself (`/docs.css`), so the page's Content-Security-Policy holds.
 */
import { API_ERRORS, statusesOf, type ErrorCode } from '@msaas/common';

type Json = Record<string, unknown>;

const esc = (s: unknown): string =>
  String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** `code` spans and paragraphs of the document's short Markdown-ish descriptions. */
const prose = (s: unknown): string =>
  esc(s)
    .split(/\n\n+/)
    .map((p) => `<p>${p.replace(/`([^`]+)`/g, '<code>$1</code>')}</p>`)
    .join('');

const anchor = (method: string, path: string): string => `${method}-${path.replace(/[^a-zA-Z0-9]+/g, '-')}`;

function schemaLink(schema: Json | undefined): string {
  if (!schema) return '';
  const ref = typeof schema.$ref === 'string' ? schema.$ref.replace('#/components/schemas/', '') : null;
  if (ref) return `<a href="#schema-${esc(ref)}">${esc(ref)}</a>`;
  if (Array.isArray(schema.oneOf)) return `one of ${(schema.oneOf as Json[]).map(schemaLink).join(', ')}`;
  if (Array.isArray(schema.enum)) return `one of ${(schema.enum as unknown[]).map((v) => `<code>${esc(v)}</code>`).join(', ')}`;
  const type = typeof schema.type === 'string' ? schema.type : 'any';
  const format = typeof schema.format === 'string' ? ` (${esc(schema.format)})` : '';
  const pattern = typeof schema.pattern === 'string' ? ` matching <code>${esc(schema.pattern)}</code>` : '';
  return `${esc(type)}${format}${pattern}`;
}

function contentList(content: Json | undefined): string {
  if (!content) return '';
  return Object.entries(content as Record<string, Json>)
    .map(([type, c]) => `<div><code>${esc(type)}</code> ${schemaLink(c.schema as Json | undefined)}</div>`)
    .join('');
}

function operationHtml(path: string, method: string, op: Json): string {
  const params = (op.parameters as Json[] | undefined) ?? [];
  const body = op.requestBody as Json | undefined;
  const responses = op.responses as Record<string, Json>;
  return `<section class="op" id="${anchor(method, path)}">
<h3><span class="method ${esc(method)}">${esc(method.toUpperCase())}</span> <code>${esc(path)}</code></h3>
<p class="summary">${esc(op.summary)}</p>${op.description ? prose(op.description) : ''}
${params.length ? `<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>schema</th><th>about</th></tr>${params.map((p) => `<tr><td><code>${esc(p.name)}</code>${p.required ? ' *' : ''}</td><td>${esc(p.in)}</td><td>${schemaLink(p.schema as Json)}</td><td>${esc(p.description ?? '')}</td></tr>`).join('')}</table>` : ''}
${body ? `<h4>Request body</h4>${prose(body.description)}${contentList(body.content as Json)}` : ''}
<h4>Responses</h4><table><tr><th>status</th><th>what</th><th>body</th></tr>${Object.entries(responses)
    .map(([status, r]) => `<tr><td>${esc(status)}</td><td>${prose(r.description)}</td><td>${contentList(r.content as Json | undefined)}</td></tr>`)
    .join('')}</table>
</section>`;
}

export function docsPage(doc: Json): string {
  const info = doc.info as Json;
  const paths = doc.paths as Record<string, Record<string, Json>>;
  const schemas = (doc.components as Json).schemas as Record<string, Json>;
  const ops = Object.entries(paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({ path, method, op })));
  const tags = (doc.tags as Json[]).map((t) => String(t.name));
  const byTag = (tag: string): typeof ops => ops.filter((o) => (o.op.tags as string[])[0] === tag);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(info.title)}: API reference</title><link rel="stylesheet" href="/docs.css"></head>
<body><header><h1>${esc(info.title)}</h1><p>API reference, version ${esc(info.version)}. The machine-readable document: <a href="/openapi.json">/openapi.json</a> (OpenAPI ${esc(doc.openapi)}). <a href="/">The page</a>.</p>${prose(info.description)}</header>
<nav><h2>Routes</h2>${tags
    .map((tag) => `<h3>${esc(tag)}</h3><ul>${byTag(tag).map((o) => `<li><a href="#${anchor(o.method, o.path)}"><b>${esc(o.method.toUpperCase())}</b> ${esc(o.path)}</a></li>`).join('')}</ul>`)
    .join('')}<h3><a href="#errors">Errors</a></h3><h3><a href="#schemas">Schemas</a></h3></nav>
<main>${tags.map((tag) => `<h2>${esc(tag)}</h2>${byTag(tag).map((o) => operationHtml(o.path, o.method, o.op)).join('\n')}`).join('\n')}
<h2 id="errors">Errors</h2><p>Every error is <code>{"error": "&lt;code&gt;", "detail": "&lt;sentence&gt;"}</code>.</p>
<table><tr><th>code</th><th>status</th><th>meaning</th></tr>${(Object.keys(API_ERRORS) as ErrorCode[])
    .map((code) => `<tr id="error-${code}"><td><code>${code}</code></td><td>${statusesOf(code).join(', ')}</td><td>${prose(API_ERRORS[code].meaning)}</td></tr>`)
    .join('')}</table>
<h2 id="schemas">Schemas</h2>${Object.entries(schemas)
    .map(([name, s]) => `<section id="schema-${esc(name)}"><h3>${esc(name)}</h3><pre>${esc(JSON.stringify(s, null, 2)).replace(/&quot;#\/components\/schemas\/(\w+)&quot;/g, '&quot;<a href="#schema-$1">#/components/schemas/$1</a>&quot;')}</pre></section>`)
    .join('\n')}
</main></body></html>`;
}

export const DOCS_CSS = `body{font:15px/1.45 system-ui,sans-serif;margin:0;display:grid;grid-template-columns:18rem 1fr;color:#1d2327}
header{grid-column:1/3;padding:1rem 2rem;background:#f3f5f7;border-bottom:1px solid #dde}
nav{padding:0 1rem;border-right:1px solid #dde;font-size:13px;position:sticky;top:0;align-self:start;max-height:100vh;overflow:auto}
nav ul{list-style:none;padding:0;margin:0}nav li{margin:.2rem 0}nav a{text-decoration:none;color:#1d4ed8}
main{padding:0 2rem 4rem;min-width:0}.op{border-top:1px solid #dde;padding:.5rem 0}
.method{display:inline-block;min-width:4.5em;text-align:center;border-radius:4px;color:#fff;font-size:12px;padding:2px 6px;background:#555}
.method.get{background:#2563eb}.method.post{background:#16a34a}.method.delete{background:#dc2626}
table{border-collapse:collapse;width:100%;font-size:13px}td,th{border:1px solid #dde;padding:4px 6px;vertical-align:top;text-align:left}td p{margin:0 0 .4em}
pre{background:#f6f8fa;padding:.6rem;overflow:auto;font-size:12px}code{font-size:90%}
@media (max-width:800px){body{display:block}nav{position:static;max-height:none;border:0}}`;
