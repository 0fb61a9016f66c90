import { Router } from 'express';
import { withTimeout, type ErrorCode } from '@msaas/common';
import type { AppDeps } from '../deps.ts';

const answersWithin = <T>(p: Promise<T>, ms: number, what: string): Promise<T> => withTimeout(p, ms, `${what} did not answer within ${ms} ms`);

/**
 * /healthz, always on the API port (the lab and the tests ask it there). /readyz and /metrics join
 * it only without ADMIN_PORT; with one they are served by adminRouter on that port alone, which the
 * Service and Ingress do not route (k8s/base/rest.yaml).
 */
export function healthRouter(deps: AppDeps): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  if (deps.config.ADMIN_PORT === undefined) router.use(operatorRoutes(deps));
  return router;
}

/** What the admin port serves: the probes' /healthz and /readyz, and Prometheus' /metrics. */
export function adminRouter(deps: AppDeps): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.use(operatorRoutes(deps));
  return router;
}

function operatorRoutes(deps: AppDeps): Router {
  const { queue, store, metrics, cluster } = deps;
  const router = Router();
  router.get('/readyz', async (_req, res) => {
    const checks: Record<string, string> = {};
    const [redis, objects] = await Promise.allSettled([answersWithin(queue.redis.ping(), 2000, 'redis'), answersWithin(store.ping(), 2000, 'object store')]);
    checks.redis = redis.status === 'fulfilled' ? 'ok' : String(redis.reason?.message ?? redis.reason);
    checks.objectStore = objects.status === 'fulfilled' ? 'ok' : String(objects.reason?.message ?? objects.reason);
    const ready = checks.redis === 'ok' && checks.objectStore === 'ok';
    const body: Record<string, unknown> = { status: ready ? 'ready' : 'not ready', checks };
    if (cluster && ready) body.cluster = await cluster.getStatus();
    if (ready) res.json(body);
    else res.status(503).json({ error: 'not_ready' satisfies ErrorCode, detail: Object.entries(checks).filter(([, v]) => v !== 'ok').map(([k, v]) => `${k}: ${v}`).join('; '), ...body });
  });
  router.get('/metrics', async (_req, res) => {
    res.set('Content-Type', metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  return router;
}
