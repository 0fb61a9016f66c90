import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import express from 'express';
import request from 'supertest';
import { KubeConfig } from '@kubernetes/client-node';
import { createClusterInfo, loadInClusterKubeConfig, NOT_IN_CLUSTER } from '../src/cluster.ts';
import { clusterRouter } from '../src/routes/cluster.ts';

// A loopback stand-in for the Kubernetes API: answers only the one read the feature makes.
interface Seen { method: string; url: string; auth: string | undefined }
let server: http.Server;
let base: string;
let seen: Seen[] = [];
let mode: 'ok' | 'forbidden' | 'hang' = 'ok';

beforeAll(async () => {
  server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', auth: req.headers.authorization });
    if (mode === 'hang') return; // never answers: the timeout must save the request
    res.setHeader('Content-Type', 'application/json');
    if (mode === 'forbidden') {
      res.statusCode = 403;
      res.end(JSON.stringify({
        kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Forbidden', code: 403,
        message: 'deployments.apps "worker" is forbidden: User "system:serviceaccount:msaas-test:rest" cannot get resource',
      }));
      return;
    }
    if (req.method === 'GET' && req.url?.startsWith('/apis/apps/v1/namespaces/msaas-test/deployments/worker')) {
      res.end(JSON.stringify({
        apiVersion: 'apps/v1', kind: 'Deployment',
        metadata: { name: 'worker', namespace: 'msaas-test' },
        spec: { replicas: 3, selector: { matchLabels: { app: 'worker' } }, template: { spec: { containers: [] } } },
        status: { replicas: 3, readyReplicas: 2, availableReplicas: 1 },
      }));
      return;
    }
    res.statusCode = 404;
    res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404, message: `no route ${req.url}` }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  seen = [];
  mode = 'ok';
});

function fakeKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'fake', server: base, skipTLSVerify: true }],
    users: [{ name: 'sa', token: 'test-token' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'sa', namespace: 'msaas-test' }],
    currentContext: 'fake',
  });
  return kc;
}

function appWith(info: ReturnType<typeof createClusterInfo>) {
  const app = express();
  app.use(clusterRouter(info));
  return app;
}

describe('GET /apiv1/cluster', () => {
  it('reports worker replicas from the Deployment and the queue length when in a cluster', async () => {
    const info = createClusterInfo({ kubeConfig: fakeKubeConfig(), getQueueLength: async () => 7 });
    const res = await request(appWith(info)).get('/apiv1/cluster').expect(200);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    expect(res.body).toEqual({
      inCluster: true,
      namespace: 'msaas-test',
      workers: { desired: 3, ready: 2, available: 1 },
      queueLength: 7,
    });
    expect(seen).toHaveLength(1);
    expect(seen[0]!.method).toBe('GET');
    expect(seen[0]!.url).toMatch(/^\/apis\/apps\/v1\/namespaces\/msaas-test\/deployments\/worker/);
    expect(seen[0]!.auth).toBe('Bearer test-token');
  });

  it('uses the namespace and deployment name it is given over the context namespace', async () => {
    const info = createClusterInfo({
      kubeConfig: fakeKubeConfig(), namespace: 'other', workerDeployment: 'separator', getQueueLength: async () => 0,
    });
    const res = await request(appWith(info)).get('/apiv1/cluster').expect(200);
    expect(seen[0]!.url).toMatch(/^\/apis\/apps\/v1\/namespaces\/other\/deployments\/separator/);
    expect(res.body.inCluster).toBe(true);
    expect(res.body.error).toMatch(/HTTP 404/);
  });

  it('says "not in a cluster" without a kubeconfig and still reports the queue', async () => {
    const info = createClusterInfo({ kubeConfig: null, getQueueLength: async () => 2 });
    const res = await request(appWith(info)).get('/apiv1/cluster').expect(200);
    expect(res.body).toEqual({ inCluster: false, queueLength: 2, error: NOT_IN_CLUSTER });
    expect(seen).toHaveLength(0);
  });

  it('answers 200 with the API error in `error` when the Kubernetes API refuses', async () => {
    mode = 'forbidden';
    const info = createClusterInfo({ kubeConfig: fakeKubeConfig(), getQueueLength: async () => 4 });
    const res = await request(appWith(info)).get('/apiv1/cluster').expect(200);
    expect(res.body.inCluster).toBe(true);
    expect(res.body.workers).toBeUndefined();
    expect(res.body.queueLength).toBe(4);
    expect(res.body.error).toMatch(/HTTP 403/);
    expect(res.body.error).toMatch(/forbidden/);
  });

  it('answers 200 with an error when the API server does not answer in time', async () => {
    mode = 'hang';
    const info = createClusterInfo({ kubeConfig: fakeKubeConfig(), getQueueLength: async () => 1, timeoutMs: 150 });
    const res = await request(appWith(info)).get('/apiv1/cluster').expect(200);
    expect(res.body.error).toMatch(/timed out/);
    expect(res.body.queueLength).toBe(1);
  });

  it('reports a Redis failure as queueLength null plus an error, never a 500', async () => {
    const info = createClusterInfo({ kubeConfig: fakeKubeConfig(), getQueueLength: async () => { throw new Error('ECONNREFUSED'); } });
    const res = await request(appWith(info)).get('/apiv1/cluster').expect(200);
    expect(res.body.queueLength).toBeNull();
    expect(res.body.workers).toEqual({ desired: 3, ready: 2, available: 1 });
    expect(res.body.error).toMatch(/queue: ECONNREFUSED/);
  });

  it('caches the status for cacheMs and shares one round trip between concurrent requests', async () => {
    let t = 1_000;
    let calls = 0;
    const info = createClusterInfo({
      kubeConfig: fakeKubeConfig(), cacheMs: 5_000, now: () => t, getQueueLength: async () => ++calls,
    });
    const app = appWith(info);
    const [a, b] = await Promise.all([request(app).get('/apiv1/cluster'), request(app).get('/apiv1/cluster')]);
    expect(a.body.queueLength).toBe(1);
    expect(b.body.queueLength).toBe(1);
    t += 4_000;
    expect((await request(app).get('/apiv1/cluster')).body.queueLength).toBe(1);
    expect(seen).toHaveLength(1);
    t += 2_000;
    expect((await request(app).get('/apiv1/cluster')).body.queueLength).toBe(2);
    expect(seen).toHaveLength(2);
  });
});

describe('loadInClusterKubeConfig', () => {
  it('returns null when KUBERNETES_SERVICE_HOST was not set', () => {
    expect(loadInClusterKubeConfig({ kubernetesServiceHost: undefined })).toBeNull();
    expect(loadInClusterKubeConfig({ kubernetesServiceHost: '' })).toBeNull();
  });

  it('loads the pod service-account config when it was, and a failing API still answers 200', async () => {
    // What the kubelet sets in every pod; client-node's loadFromCluster reads these itself.
    const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
    process.env.KUBERNETES_SERVICE_HOST = '127.0.0.1';
    process.env.KUBERNETES_SERVICE_PORT = '1'; // nothing listens: the call fails fast
    try {
      const kc = loadInClusterKubeConfig({ kubernetesServiceHost: '127.0.0.1' })!;
      expect(kc).not.toBeNull();
      expect(kc.getCurrentCluster()?.server).toBe('https://127.0.0.1:1');
      expect(kc.getCurrentUser()?.name).toBe('inClusterUser');
      const info = createClusterInfo({ kubeConfig: kc, namespace: 'msaas', getQueueLength: async () => 0, timeoutMs: 1_000 });
      const res = await request(appWith(info)).get('/apiv1/cluster').expect(200);
      expect(res.body).toMatchObject({ inCluster: true, namespace: 'msaas', queueLength: 0 });
      expect(res.body.error).toMatch(/deployment msaas\/worker/);
    } finally {
      if (saved.host === undefined) delete process.env.KUBERNETES_SERVICE_HOST; else process.env.KUBERNETES_SERVICE_HOST = saved.host;
      if (saved.port === undefined) delete process.env.KUBERNETES_SERVICE_PORT; else process.env.KUBERNETES_SERVICE_PORT = saved.port;
    }
  });
});
