import { readFileSync } from 'node:fs';
import { Router } from 'express';
import { apiDocument } from '../api-document.ts';
import { DOCS_CSS, docsPage } from '../docs-page.ts';

const VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** The document and its page depend on nothing but the code: built once per process, at the first request (≈ 0.1 s). */
let built: { text: string; page: string } | undefined;
function document(): { text: string; page: string } {
  if (!built) {
    const doc = apiDocument({ version: VERSION });
    built = { text: JSON.stringify(doc), page: docsPage(doc) };
  }
  return built;
}

/** `GET /openapi.json` (the API document), `GET /docs` (it, rendered) and the page's stylesheet. */
export function openapiRouter(): Router {
  const router = Router();
  router.get('/openapi.json', (_req, res) => {
    res.set({ 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'public, max-age=300' }).send(document().text);
  });
  router.get('/docs', (_req, res) => {
    res.set({ 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'public, max-age=300' }).send(document().page);
  });
  router.get('/docs.css', (_req, res) => {
    res.set({ 'Content-Type': 'text/css; charset=utf-8', 'Cache-Control': 'public, max-age=300' }).send(DOCS_CSS);
  });
  return router;
}
