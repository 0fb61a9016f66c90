import express from 'express';
import type { ClusterInfo } from '../cluster.ts';

/** GET /apiv1/cluster: worker replicas and queue length; always 200 with JSON, problems in `error`. */
export function clusterRouter(info: ClusterInfo): express.Router {
  const router = express.Router();
  router.get('/apiv1/cluster', async (_req, res) => {
    let status;
    try {
      status = await info.getStatus();
    } catch (err) {
      status = { inCluster: false, queueLength: null, error: err instanceof Error ? err.message : String(err) };
    }
    res.set('Cache-Control', 'no-store').json(status);
  });
  return router;
}
