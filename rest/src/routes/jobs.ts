import { Router } from 'express';
import { IMPLICIT_TENANT, type DeleteSongResponse } from '@msaas/common';
import type { AppDeps } from '../deps.ts';
import { notFound } from '../errors.ts';
import { claimedOr404, jobView } from '../job-view.ts';
import { tenantOf } from '../auth.ts';
import { songhashParam } from '../params.ts';

export function jobsRouter(deps: AppDeps): Router {
  const { queue, store, logger } = deps;
  const router = Router();

  const noJob = (hash: string): string => `no job for ${hash}`;

  router.get('/apiv1/jobs/:songhash', async (req, res) => {
    const hash = songhashParam(req.params.songhash);
    res.json(await jobView(queue, await claimedOr404(queue, hash, tenantOf(res).id, noJob(hash))));
  });

  /**
   * Deleting removes the caller's claim; the song (record, upload, stems) goes with the last claim.
   * A worker running it meanwhile finds no claim when it finishes and removes what it uploaded.
   * The implicit tenant may also delete objects of a song no record knows (the lab's behaviour).
   */
  router.delete('/apiv1/jobs/:songhash', async (req, res) => {
    const hash = songhashParam(req.params.songhash);
    const tenant = tenantOf(res).id;
    const outcome = await queue.dropClaim(hash, tenant);
    if (outcome === 'absent' && tenant !== IMPLICIT_TENANT.id) throw notFound(`no song ${hash}`);
    let stems = 0;
    if (outcome !== 'kept') {
      const hadUpload = await store.hasUpload(hash);
      stems = await store.removeAllStems(hash);
      if (outcome === 'absent' && !hadUpload && stems === 0) throw notFound(`no song ${hash}`);
      if (hadUpload) await store.removeUpload(hash);
    }
    logger.info({ job: hash, tenant }, outcome === 'kept' ? 'song removed for this tenant (others keep it)' : `song removed (${stems} stems)`);
    const body: DeleteSongResponse = { hash, removed: true, stems };
    res.json(body);
  });

  return router;
}
