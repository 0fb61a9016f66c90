import type { Request, RequestHandler } from 'express';
import { apiError } from './errors.ts';

/** GET (and HEAD, which Express routes to the same handler) requests that change state: the lab's stem removal. */
const STATE_CHANGING_GET = /^\/apiv1\/remove\//;

/** Whether the request changes state: every method but GET/HEAD/OPTIONS, plus the lab's GET /apiv1/remove/:h/:t. */
export function changesState(req: Request): boolean {
  if (req.method === 'OPTIONS') return false;
  if (req.method !== 'GET' && req.method !== 'HEAD') return true;
  return STATE_CHANGING_GET.test(`${req.baseUrl}${req.path}`); // req.path is relative to where the guard is mounted
}

/** A browser says where a request comes from: any `Origin`, or `Sec-Fetch-Site` other than same-origin / none (typed URL). */
function fromBrowserPage(req: Request): boolean {
  if (req.get('origin') !== undefined) return true;
  const site = req.get('sec-fetch-site')?.toLowerCase();
  return site === 'cross-site' || site === 'same-site';
}

/**
 * Something no web page can make a browser send to another site without a CORS preflight (which
 * this API never grants): an `X-Requested-With` header, or a JSON content type.
 */
function nonSimple(req: Request): boolean {
  if (req.get('x-requested-with')) return true;
  const type = req.get('content-type')?.split(';')[0]?.trim().toLowerCase() ?? '';
  return type === 'application/json' || /^application\/[\w.+-]+\+json$/.test(type);
}

/**
 * Cross-site request forgery guard. A page on another site can make a visitor's browser send a
 * form POST, a multipart upload or an `<img>` GET here, with no way for us to tell it from the
 * visitor — which matters when keys are off (no credential to lack). State changes that a browser
 * marks as coming from a page (Origin / Sec-Fetch-Site) must therefore be non-simple requests.
 * The lab's Python client sends neither header and is unaffected; our page sends X-Requested-With.
 */
export const refuseCrossSiteStateChanges: RequestHandler = (req, _res, next) => {
  if (!changesState(req) || !fromBrowserPage(req) || nonSimple(req)) return next();
  next(
    apiError('cross_site', 'a state-changing request from a web page needs an X-Requested-With header or a JSON body (cross-site request forgery guard); clients outside a browser are not affected',
    ),
  );
};
