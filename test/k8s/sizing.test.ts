// Sizing: k8s/sizing.json (measured peak RSS and separation time) against itself, and the rendered
// dev and prod worker memory, grace periods and the Ingress body size against it and the config.
// The renders need kubectl (test/k8s/render.ts).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { envValue, find, kubectl, lazyRendered, nginxSizeBytes, type Obj, quantityBytes, repoRoot } from './render.ts';

interface Sizing {
  timing: { secondsPerSegment: { ortMemoryArenaOff: number; ortMemoryArenaOn: number }; audioSecondsPerSegment: number; headroom: number };
  peakRssMiB: { ortMemoryArenaOff: number; ortMemoryArenaOn: number };
  pipelineOverheadMiB: number;
  marginFraction: number;
  requiredMiB: { ortMemoryArenaOff: number; ortMemoryArenaOn: number };
  observed: { ortMemoryArena: boolean; peakRssMiB: number }[];
}
const sizing = JSON.parse(readFileSync(path.join(repoRoot, 'k8s/sizing.json'), 'utf8')) as Sizing;

const rendered = lazyRendered();

describe('sizing.json', () => {
  it('sizing.json is self-consistent: required = (peak + pipeline overhead) × (1 + margin)', () => {
    for (const k of ['ortMemoryArenaOff', 'ortMemoryArenaOn'] as const) {
      const need = Math.ceil((sizing.peakRssMiB[k] + sizing.pipelineOverheadMiB) * (1 + sizing.marginFraction));
      expect(sizing.requiredMiB[k], k).toBeGreaterThanOrEqual(need);
      expect(sizing.requiredMiB[k], `${k} exceeds measured peak`).toBeGreaterThan(sizing.peakRssMiB[k]);
    }
    // Every later observation of a whole worker must stay inside the assumption the limit is built on.
    for (const o of sizing.observed) {
      const k = o.ortMemoryArena ? 'ortMemoryArenaOn' : 'ortMemoryArenaOff';
      expect(o.peakRssMiB, `observed ${o.peakRssMiB} MiB (${k}) exceeds peak + pipeline overhead: raise the sizing`)
        .toBeLessThanOrEqual(sizing.peakRssMiB[k] + sizing.pipelineOverheadMiB);
    }
    // 2.9 GB and 5.3 GB (sizing.json measured.*.peakRssGB), read as GiB.
    expect(sizing.peakRssMiB.ortMemoryArenaOff).toBeGreaterThanOrEqual(Math.round(2.9 * 1024));
    expect(sizing.peakRssMiB.ortMemoryArenaOn).toBeGreaterThanOrEqual(Math.round(5.3 * 1024));
  });

});

kubectl.describe('sizing', () => {
  const both = ['dev', 'prod'] as const;

  it.each(both)('%s: worker memory request and limit ≥ measured peak RSS + margin for its ORT_MEMORY_ARENA setting', (ov) => {
    const objs = rendered[ov];
    const c = find(objs, 'Deployment', 'worker')!.spec.template.spec.containers[0];
    const arena = envValue(objs, c, 'ORT_MEMORY_ARENA');
    expect(['true', 'false'], 'ORT_MEMORY_ARENA is set explicitly').toContain(arena);
    const requiredMiB = arena === 'true' ? sizing.requiredMiB.ortMemoryArenaOn : sizing.requiredMiB.ortMemoryArenaOff;
    expect(quantityBytes(c.resources.limits.memory) / 2 ** 20).toBeGreaterThanOrEqual(requiredMiB);
    // request = limit: scheduling reserves what the worker will really use.
    expect(quantityBytes(c.resources.requests.memory)).toBe(quantityBytes(c.resources.limits.memory));
    // The measurement ran with 2 ORT threads; the CPU given matches the threads asked for.
    expect(Number(c.resources.requests.cpu)).toBeGreaterThanOrEqual(Number(envValue(objs, c, 'ORT_THREADS')));
    expect(envValue(objs, c, 'MODEL_PATH')).toBe('/models/htdemucs.onnx');
  });

  it.each(both)('%s: worker has a grace period long enough to finish the longest accepted song, then hand back', (ov) => {
    const objs = rendered[ov];
    const d = find(objs, 'Deployment', 'worker')!;
    const c = d.spec.template.spec.containers[0];
    const arena = envValue(objs, c, 'ORT_MEMORY_ARENA') === 'true' ? 'ortMemoryArenaOn' : 'ortMemoryArenaOff';
    const maxDurationSec = Number(envValue(objs, c, 'MAX_DURATION_SEC'));
    expect(maxDurationSec, 'MAX_DURATION_SEC is set explicitly').toBeGreaterThan(0);
    const segments = Math.ceil(maxDurationSec / sizing.timing.audioSecondsPerSegment);
    const longestJobSec = segments * sizing.timing.secondsPerSegment[arena] * sizing.timing.headroom;
    const shutdownGrace = Number(envValue(objs, c, 'SHUTDOWN_GRACE_SEC'));
    expect(shutdownGrace, `SHUTDOWN_GRACE_SEC vs a ${maxDurationSec} s song`).toBeGreaterThanOrEqual(longestJobSec);
    // after the app's own deadline: time to hand the job back, close and exit before SIGKILL
    expect(d.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(shutdownGrace + 30);
    expect(c.env.find((e: Obj) => e.name === 'WORKER_ID').valueFrom.fieldRef.fieldPath).toBe('metadata.name');
  });

  it.each(both)('%s: rest drains in-flight requests within its grace period (preStop + SHUTDOWN_GRACE_SEC)', (ov) => {
    const objs = rendered[ov];
    const pod = find(objs, 'Deployment', 'rest')!.spec.template.spec;
    const c = pod.containers[0];
    const preStop = Number(c.lifecycle?.preStop?.exec?.command?.[1] ?? 0);
    const shutdownGrace = Number(envValue(objs, c, 'SHUTDOWN_GRACE_SEC') ?? 25);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(preStop + shutdownGrace + 5);
    expect(c.env.find((e: Obj) => e.name === 'KUBE_NAMESPACE').valueFrom.fieldRef.fieldPath).toBe('metadata.namespace');
  });

  it.each(both)('%s: the Ingress body size fits a multipart upload of MAX_UPLOAD_MB and the base64 JSON body of JSON_UPLOAD_MAX_MB (× 4/3)', (ov) => {
    const objs = rendered[ov];
    const ing = find(objs, 'Ingress', 'rest')!;
    const rest = find(objs, 'Deployment', 'rest')!.spec.template.spec.containers[0];
    const maxUploadMb = Number(envValue(objs, rest, 'MAX_UPLOAD_MB'));
    const jsonMb = Math.min(maxUploadMb, Number(envValue(objs, rest, 'JSON_UPLOAD_MAX_MB') ?? 64));
    expect(maxUploadMb).toBeGreaterThan(0);
    const body = nginxSizeBytes(ing.metadata.annotations['nginx.ingress.kubernetes.io/proxy-body-size']);
    // Conservative: the caps read as MiB, plus 1 MiB for the JSON envelope / multipart framing.
    expect(body).toBeGreaterThanOrEqual(Math.max(maxUploadMb * 2 ** 20, Math.ceil(jsonMb * 2 ** 20 * 4 / 3)) + 2 ** 20);
    const backend = ing.spec.rules[0].http.paths[0].backend.service;
    const svc = find(objs, 'Service', backend.name)!;
    expect(svc.spec.ports.some((p: Obj) => p.name === backend.port.name || p.port === backend.port.number)).toBe(true);
  });
});
