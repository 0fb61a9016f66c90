import { readFileSync } from 'node:fs';
import { Router } from 'express';
import { apiDocument } from '../api-document.ts';
import { DOCS_CSS, docsPage } from '../docs-page.ts';

const VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** `GET /openapi.json` (the API document), `GET /docs` (it, rendered) and the page's stylesheet. Built once. */
export function openapiRouter(): Router {
  const doc = apiDocument({ version: VERSION });
  const text = JSON.stringify(doc);
  const page = docsPage(doc);
  const router = Router();
  router.get('/openapi.json', (_req, res) => {
    res.set({ 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'public, max-age=300' }).send(text);
  });
  router.get('/docs', (_req, res) => {
    res.set({ 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'public, max-age=300' }).send(page);
  });
  router.get('/docs.css', (_req, res) => {
    res.set({ 'Content-Type': 'text/css; charset=utf-8', 'Cache-Control': 'public, max-age=300' }).send(DOCS_CSS);
  });
  return router;
}
