import type { RequestHandler } from 'express';
import { badRequest } from './errors.ts';
import { ROUTES, type RouteSpec } from './api-routes.ts';

/**
 * Strict where a typo would mislead: a query parameter the route does not take (`mix?drum=0`) is a
 * 400 `unknown_field` naming it and the ones the route knows, instead of being ignored (and a full
 * mix answered). The known names are the route's query schema in the route list (api-routes.ts), the
 * one the API document describes. Values are checked by the handlers (with their own codes).
 */
interface Matcher {
  method: string;
  re: RegExp;
  known: string[];
  route: RouteSpec;
}

const matchers: Matcher[] = ROUTES.filter((r) => r.path.startsWith('/apiv1/')).map((route) => ({
  method: route.method.toUpperCase(),
  re: new RegExp(`^${route.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:\w+/g, '[^/]+')}/?$`),
  known: Object.keys(route.query?.shape ?? {}),
  route,
}));

/** The route spec a request goes to (HEAD as GET), if any. */
export function routeOf(method: string, path: string): RouteSpec | undefined {
  const m = method === 'HEAD' ? 'GET' : method;
  return matchers.find((x) => x.method === m && x.re.test(path))?.route;
}

/** The sentence for fields a request sent that `where` does not take. */
export function unknownFieldsDetail(unknown: readonly string[], known: readonly string[], where: string): string {
  const names = unknown.map((n) => `\`${n.slice(0, 40)}\``).join(', ');
  const takes = known.length ? `it takes ${known.join(', ')}` : 'it takes none';
  return `${unknown.length === 1 ? 'unknown' : 'unknown fields'} ${names}: not a ${where}; ${takes}`;
}

/** Throws 400 `unknown_field` when `given` holds a name outside `known`. */
export function refuseUnknownFields(given: Iterable<string>, known: readonly string[], where: string): void {
  const unknown = [...given].filter((k) => !known.includes(k));
  if (unknown.length > 0) throw badRequest('unknown_field', unknownFieldsDetail(unknown, known, where));
}

/** Mounted on /apiv1 (after access checks): unknown query parameters of a known route are refused. */
export const refuseUnknownQuery: RequestHandler = (req, _res, next) => {
  const path = `${req.baseUrl}${req.path}`;
  const m = matchers.find((x) => x.method === (req.method === 'HEAD' ? 'GET' : req.method) && x.re.test(path));
  if (!m) return next();
  const keys = Object.keys(req.query as Record<string, unknown>);
  if (keys.length === 0) return next();
  try {
    refuseUnknownFields(keys, m.known, `query parameter of ${m.method} ${m.route.path}`);
    next();
  } catch (err) {
    next(err);
  }
};
