// The alert rules and the Grafana dashboard shipped beside the manifests (k8s/components/monitoring):
// the rules as rendered into the PrometheusRule go through `promtool check rules` (Debian package
// prometheus; scripts/ci-prereqs.sh installs it), the dashboard through a JSON schema of Grafana's
// dashboard model and promtool again for every panel's query, and every msaas_* metric either
// names is one the services really register.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Ajv } from 'ajv';
import { expect, it } from 'vitest';
import { stringify } from 'yaml';
import { requireTool } from '../helpers/env.ts';
import { createWorkerMetrics } from '../../worker/src/metrics.ts';
import { createMetrics } from '../../rest/src/metrics.ts';
import { find, kubectl, lazyRendered, namespaceOf, type Obj, repoRoot } from './render.ts';

const promtool = requireTool('promtool', {
  probe: ['--version'],
  neededFor: 'the alert-rule and dashboard query checks (test/k8s/monitoring.test.ts)',
  install: 'apt-get install prometheus (Debian ships promtool in it), as scripts/ci-prereqs.sh does',
});

const rendered = lazyRendered();
const DASHBOARD = path.join(repoRoot, 'k8s/components/monitoring/grafana-dashboard.json');

/** `promtool check rules` on a rule file holding `groups`; its exit status and output. */
function checkRules(groups: Obj[]): { status: number | null; out: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'msaas-rules-'));
  try {
    const file = path.join(dir, 'rules.yaml');
    writeFileSync(file, stringify({ groups }));
    const r = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Metric names the services register (their real registries), histogram series included. */
async function registeredNames(): Promise<Set<string>> {
  const names = new Set<string>();
  const worker = createWorkerMetrics();
  const rest = createMetrics(async () => 0);
  for (const reg of [worker.registry, rest.registry]) {
    for (const m of await reg.getMetricsAsJSON()) {
      names.add(m.name);
      if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(`${m.name}${s}`);
    }
  }
  return names;
}

/** Metric names in a PromQL expression: identifiers followed by `{` or that start with msaas_/kube_. */
const metricsIn = (expr: string): string[] => [...new Set([...expr.matchAll(/\b((?:msaas|kube)_[a-zA-Z0-9_]+)\b/g)].map((m) => m[1]!))];

/** kube-state-metrics series the rules and dashboard use (not ours: a cluster's standard exporter). */
const KUBE_STATE_METRICS = ['kube_pod_container_status_restarts_total', 'kube_pod_container_status_last_terminated_reason', 'kube_statefulset_status_replicas_ready'];

/** The parts of Grafana's dashboard model (schemaVersion 39) that a dashboard must get right to load and to query. */
const dashboardSchema = {
  type: 'object',
  required: ['title', 'uid', 'schemaVersion', 'panels', 'templating', 'time'],
  properties: {
    title: { type: 'string', minLength: 1 },
    uid: { type: 'string', pattern: '^[a-zA-Z0-9_-]{1,40}$' },
    schemaVersion: { type: 'integer', minimum: 30 },
    time: { type: 'object', required: ['from', 'to'], properties: { from: { type: 'string' }, to: { type: 'string' } } },
    templating: {
      type: 'object',
      required: ['list'],
      properties: {
        list: {
          type: 'array',
          items: { type: 'object', required: ['name', 'type'], properties: { name: { type: 'string' }, type: { enum: ['datasource', 'query', 'custom', 'constant', 'interval', 'textbox'] } } },
        },
      },
    },
    panels: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['id', 'type', 'title', 'gridPos', 'datasource', 'targets'],
        properties: {
          id: { type: 'integer', minimum: 1 },
          type: { enum: ['timeseries', 'stat', 'gauge', 'bargauge', 'table', 'heatmap', 'text'] },
          title: { type: 'string', minLength: 1 },
          gridPos: {
            type: 'object',
            required: ['x', 'y', 'w', 'h'],
            properties: { x: { type: 'integer', minimum: 0, maximum: 23 }, y: { type: 'integer', minimum: 0 }, w: { type: 'integer', minimum: 1, maximum: 24 }, h: { type: 'integer', minimum: 1 } },
          },
          datasource: { type: 'object', required: ['type', 'uid'], properties: { type: { const: 'prometheus' }, uid: { const: '${datasource}' } } },
          targets: {
            type: 'array',
            minItems: 1,
            items: { type: 'object', required: ['refId', 'expr'], properties: { refId: { type: 'string', pattern: '^[A-Z]$' }, expr: { type: 'string', minLength: 1 } } },
          },
        },
      },
    },
  },
};

interface Panel {
  id: number;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets: { refId: string; expr: string }[];
}

kubectl.describe('alert rules (PrometheusRule msaas)', () => {
  const rule = (): Obj => find(rendered.prod, 'PrometheusRule', 'msaas')!;

  promtool.it('pass `promtool check rules` as rendered, and promtool does reject a broken rule', () => {
    const groups = rule().spec.groups as Obj[];
    const ok = checkRules(groups);
    expect(ok.out).toMatch(/SUCCESS: \d+ rules found/);
    expect(ok.status, ok.out).toBe(0);
    const broken = structuredClone(groups);
    broken[0].rules[0].expr = 'sum(msaas_queue_length{namespace="msaas"}'; // unbalanced
    expect(checkRules(broken).status).not.toBe(0);
  });

  it('cover queue age, dead jobs, reaped jobs and worker restarts, each with a severity and a summary, in the rendered namespace', () => {
    const objs = rendered.prod;
    const r = rule();
    expect(r.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(Object.keys(r.spec)).toEqual(['groups']);
    const alerts = (r.spec.groups as Obj[]).flatMap((g) => g.rules as Obj[]);
    const byName = Object.fromEntries(alerts.map((a) => [a.alert, a]));
    expect(byName.MsaasQueueWaiting.expr).toMatch(/min_over_time\(.*msaas_queue_length/); // queue age
    expect(byName.MsaasJobsFailing.expr).toMatch(/msaas_worker_jobs_total\{[^}]*result="failed"/); // dead jobs
    expect(byName.MsaasJobsReaped.expr).toMatch(/msaas_worker_jobs_total\{[^}]*result=~"lost\|released"/); // reaped
    expect(byName.MsaasWorkerRestarting.expr).toMatch(/kube_pod_container_status_restarts_total\{[^}]*container="worker"/);
    const ns = namespaceOf(objs);
    for (const a of alerts) {
      expect(['warning', 'critical']).toContain(a.labels.severity);
      expect(a.annotations.summary, a.alert).toBeTruthy();
      const filters = [...String(a.expr).matchAll(/namespace="([^"]+)"/g)].map((m) => m[1]);
      expect(filters.length, `${a.alert} filters by namespace`).toBeGreaterThan(0);
      for (const f of filters) expect(f, a.alert).toBe(ns);
    }
  });

  it('name only metrics the services register (or kube-state-metrics)', async () => {
    const known = await registeredNames();
    const exprs = (rule().spec.groups as Obj[]).flatMap((g) => (g.rules as Obj[]).map((a) => String(a.expr)));
    for (const m of exprs.flatMap(metricsIn)) expect(known.has(m) || KUBE_STATE_METRICS.includes(m), m).toBe(true);
    expect(known.has('msaas_worker_busy')).toBe(true); // the registries were read
  });
});

kubectl.describe('Grafana dashboard', () => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[] } & Obj;

  it('follows the dashboard model: required fields, a Prometheus datasource variable, panels on the 24-column grid without overlap', () => {
    const ajv = new Ajv({ allErrors: true, strict: false });
    const validate = ajv.compile(dashboardSchema);
    expect(validate(dashboard), ajv.errorsText(validate.errors)).toBe(true);
    // the schema does reject a broken dashboard
    expect(validate({ ...dashboard, panels: [{ ...dashboard.panels[0], gridPos: { x: 30, y: 0, w: 12, h: 8 } }] })).toBe(false);
    expect(dashboard.templating.list).toContainEqual(expect.objectContaining({ name: 'datasource', type: 'datasource', query: 'prometheus' }));
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Set<string>();
    for (const p of dashboard.panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
        for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
          expect(cells.has(`${x},${y}`), `${p.title} overlaps another panel`).toBe(false);
          cells.add(`${x},${y}`);
        }
      }
    }
  });

  promtool.it("every panel's query is valid PromQL (promtool parses each as a recording rule)", () => {
    const rules = dashboard.panels.flatMap((p) => p.targets.map((t) => ({ record: `msaas:panel_${p.id}_${t.refId.toLowerCase()}`, expr: t.expr })));
    const r = checkRules([{ name: 'dashboard', rules }]);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it('queries only metrics the services register (or kube-state-metrics), and shows what KEDA scales on', async () => {
    const known = await registeredNames();
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
    for (const m of exprs.flatMap(metricsIn)) expect(known.has(m) || KUBE_STATE_METRICS.includes(m), m).toBe(true);
    const so = find(rendered.prod, 'ScaledObject', 'worker')!;
    const q = String(so.spec.triggers.find((t: Obj) => t.type === 'prometheus').metadata.query);
    for (const m of metricsIn(q)) expect(exprs.some((e) => e.includes(m)), m).toBe(true);
  });

  it('ships in prod as the ConfigMap the Grafana sidecar loads (label grafana_dashboard), holding the file as is', () => {
    const cm = find(rendered.prod, 'ConfigMap', 'msaas-grafana-dashboard')!;
    expect(cm.metadata.labels.grafana_dashboard).toBe('1');
    expect(JSON.parse(cm.data['msaas.json'])).toEqual(dashboard);
  });
});
