// What the operator wants to see from inside the cluster: how many worker
// replicas are up and how long the queue is. Backed by the Kubernetes API
// when the process runs in a pod; degrades to "not in a cluster" elsewhere.
import { AppsV1Api, ApiException, KubeConfig } from '@kubernetes/client-node';
import { withTimeout } from '@msaas/common';

export interface WorkerReplicas {
  desired: number;
  ready: number;
  available: number;
}

export interface ClusterStatus {
  inCluster: boolean;
  namespace?: string;
  workers?: WorkerReplicas;
  /** Jobs waiting on `toWorker`; null when Redis could not be asked (see error). */
  queueLength: number | null;
  error?: string;
}

export interface ClusterInfo {
  /** Never rejects: failures are reported in `error`. */
  getStatus(): Promise<ClusterStatus>;
}

export interface ClusterInfoOptions {
  /** null/undefined → not in a cluster. */
  kubeConfig?: KubeConfig | null;
  /** Defaults to the kubeconfig context's namespace (in a pod: the service account's), else "default". */
  namespace?: string;
  /** Name of the worker Deployment; default "worker". */
  workerDeployment?: string;
  getQueueLength: () => Promise<number>;
  /** How long a status is reused; default 5 s (the page polls, the API server should not notice). */
  cacheMs?: number;
  /** Per-call timeout for the Kubernetes API and the queue length; default 2 s. */
  timeoutMs?: number;
  now?: () => number;
}

export const NOT_IN_CLUSTER = 'not in a cluster';

/**
 * In-cluster config when the pod environment says so, else null.
 * The caller passes KUBERNETES_SERVICE_HOST as read from its config;
 * client-node's loadFromCluster reads the service account files and port itself.
 */
export function loadInClusterKubeConfig(opts: { kubernetesServiceHost?: string | undefined }): KubeConfig | null {
  if (!opts.kubernetesServiceHost) return null;
  const kc = new KubeConfig();
  kc.loadFromCluster();
  return kc;
}

const timedOut = <T>(p: Promise<T>, ms: number, what: string): Promise<T> => withTimeout(p, ms, `${what} timed out after ${ms} ms`);

function describeError(err: unknown): string {
  if (err instanceof ApiException) {
    let detail = '';
    const body: unknown = err.body;
    if (typeof body === 'string') {
      try {
        const parsed = JSON.parse(body) as { message?: unknown };
        if (typeof parsed.message === 'string') detail = parsed.message;
      } catch {
        detail = body;
      }
    } else if (body && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string') {
      detail = (body as { message: string }).message;
    }
    return `kubernetes API HTTP ${err.code}${detail ? `: ${detail}` : ''}`.slice(0, 300);
  }
  return (err instanceof Error ? err.message : String(err)).slice(0, 300);
}

export function createClusterInfo(opts: ClusterInfoOptions): ClusterInfo {
  const cacheMs = opts.cacheMs ?? 5_000;
  const timeoutMs = opts.timeoutMs ?? 2_000;
  const now = opts.now ?? Date.now;
  const workerDeployment = opts.workerDeployment ?? 'worker';
  const kc = opts.kubeConfig ?? null;
  const apps = kc ? kc.makeApiClient(AppsV1Api) : null;
  const contextNamespace = kc?.getContextObject(kc.getCurrentContext())?.namespace?.trim();
  const namespace = opts.namespace || contextNamespace || 'default';

  let cached: { at: number; status: ClusterStatus } | undefined;
  let inFlight: Promise<ClusterStatus> | undefined;

  async function queueLength(errors: string[]): Promise<number | null> {
    try {
      return await timedOut(opts.getQueueLength(), timeoutMs, 'queue length');
    } catch (err) {
      errors.push(`queue: ${describeError(err)}`);
      return null;
    }
  }

  async function workers(errors: string[]): Promise<WorkerReplicas | undefined> {
    if (!apps) return undefined;
    try {
      const d = await timedOut(
        apps.readNamespacedDeployment({ name: workerDeployment, namespace }),
        timeoutMs,
        'kubernetes API',
      );
      return {
        desired: d.spec?.replicas ?? 0,
        ready: d.status?.readyReplicas ?? 0,
        available: d.status?.availableReplicas ?? 0,
      };
    } catch (err) {
      errors.push(`deployment ${namespace}/${workerDeployment}: ${describeError(err)}`);
      return undefined;
    }
  }

  async function compute(): Promise<ClusterStatus> {
    const errors: string[] = [];
    const [w, q] = await Promise.all([workers(errors), queueLength(errors)]);
    const status: ClusterStatus = apps
      ? { inCluster: true, namespace, queueLength: q }
      : { inCluster: false, queueLength: q, error: NOT_IN_CLUSTER };
    if (w) status.workers = w;
    if (errors.length) status.error = [status.error, ...errors].filter(Boolean).join('; ');
    return status;
  }

  return {
    async getStatus() {
      if (cached && now() - cached.at < cacheMs) return cached.status;
      // Concurrent requests share one round trip.
      inFlight ??= compute()
        .catch((err: unknown): ClusterStatus => ({ inCluster: apps !== null, queueLength: null, error: describeError(err) }))
        .then((status) => {
          cached = { at: now(), status };
          return status;
        })
        .finally(() => {
          inFlight = undefined;
        });
      return inFlight;
    },
  };
}
