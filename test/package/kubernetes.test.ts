/**
 * contrib/kubernetes, offline: every manifest validates against the
 * Kubernetes and Prometheus Operator schemas shipped in npm packages
 * (kubernetes-models, @kubernetes-models/prometheus-operator: types, enums and
 * required fields; they accept unknown fields, so the fields that matter are
 * checked by name below), the DaemonSet has the unit's capabilities and no
 * more, and its configuration passes dropmon's own parser.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments, parse, stringify } from 'yaml';
import { ConfigMap, Namespace, Service } from 'kubernetes-models/v1';
import { DaemonSet } from 'kubernetes-models/apps/v1';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { PROJECT_ROOT } from '../helpers/dropgen.js';
import { applyConfig, checkExposure, DEFAULT_CONFIG, resolveToken } from '../../src/service/config.js';

const DIR = join(PROJECT_ROOT, 'contrib/kubernetes');
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = any;
const docs: Doc[] = parseAllDocuments(readFileSync(join(DIR, 'dropmon.yaml'), 'utf8')).map((d) => {
  assert.deepEqual(d.errors, [], 'YAML errors');
  return d.toJS();
});
const byKind = (kind: string): Doc => {
  const d = docs.find((x) => x.kind === kind);
  assert.ok(d, `a ${kind} in dropmon.yaml`);
  return d;
};

const MODELS: Record<string, { new (d: Doc): { validate(): void } }> = { Namespace, ConfigMap, DaemonSet, Service, ServiceMonitor };

test('every manifest validates against its schema', () => {
  assert.deepEqual(docs.map((d) => d.kind).sort(), Object.keys(MODELS).sort());
  for (const d of docs) {
    const Model = MODELS[d.kind];
    assert.doesNotThrow(() => new Model(d).validate(), `${d.kind} ${d.metadata?.name}`);
    if (d.kind !== 'Namespace') assert.equal(d.metadata.namespace, 'dropmon', `${d.kind} is in the dropmon namespace`);
  }
  // The validator is real: a wrong type is refused.
  const bad = structuredClone(byKind('DaemonSet'));
  bad.spec.template.spec.hostNetwork = 'yes';
  assert.throws(() => new DaemonSet(bad).validate(), /hostNetwork/);
});

test("the DaemonSet: host network and PID, the unit's capabilities and no more, state on a hostPath, a readiness probe on /metrics", () => {
  const spec = byKind('DaemonSet').spec.template.spec;
  assert.equal(spec.hostNetwork, true);
  assert.equal(spec.hostPID, true);
  const [c] = spec.containers;
  assert.equal(spec.containers.length, 1);
  const unit = readFileSync(join(PROJECT_ROOT, 'contrib/dropmon.service'), 'utf8');
  const unitCaps = /^CapabilityBoundingSet=(.+)$/m.exec(unit)![1].trim().split(/\s+/).map((s) => s.replace(/^CAP_/, '')).sort();
  assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
  assert.deepEqual([...c.securityContext.capabilities.add].sort(), unitCaps);
  assert.equal(c.securityContext.privileged, false);
  assert.equal(c.securityContext.allowPrivilegeEscalation, false);
  const mount = (path: string) => c.volumeMounts.find((m: Doc) => m.mountPath === path);
  const state = spec.volumes.find((v: Doc) => v.name === mount('/var/lib/dropmon')?.name);
  assert.equal(state?.hostPath?.path, '/var/lib/dropmon');
  assert.ok(spec.volumes.find((v: Doc) => v.name === mount('/sys/kernel/tracing')?.name)?.hostPath, 'tracefs from the host');
  assert.match(c.readinessProbe.exec.command.join(' '), /127\.0\.0\.1:9947\/metrics/);
  assert.equal(c.ports[0].containerPort, 9947);
  const config = parse(byKind('ConfigMap').data['dropmon.yaml']);
  assert.equal(config.recording.file.startsWith('/var/lib/dropmon/'), true, 'the recording is on the hostPath');
  assert.ok(c.env.some((e: Doc) => e.name === 'DROPMON_TOKEN' && e.valueFrom.secretKeyRef.name === 'dropmon-token'));
});

test('the configuration passes dropmon serve\'s parser, and needs the token it gets from the Secret', () => {
  const c = applyConfig(DEFAULT_CONFIG, parse(byKind('ConfigMap').data['dropmon.yaml']));
  assert.equal(c.listen, '0.0.0.0:9947');
  assert.throws(() => checkExposure(c, resolveToken(c, {})), /token/);
  assert.doesNotThrow(() => checkExposure(c, resolveToken(c, { DROPMON_TOKEN: 'a'.repeat(32) })));
});

test('Service and ServiceMonitor select the DaemonSet\'s pods and its metrics port, with the token', () => {
  const labels = byKind('DaemonSet').spec.template.metadata.labels;
  const svc = byKind('Service');
  for (const [k, v] of Object.entries(svc.spec.selector)) assert.equal(labels[k], v);
  assert.equal(svc.spec.ports[0].targetPort, 'metrics');
  const sm = byKind('ServiceMonitor');
  for (const [k, v] of Object.entries(sm.spec.selector.matchLabels)) assert.equal(svc.metadata.labels[k], v);
  assert.equal(sm.spec.endpoints[0].port, 'metrics');
  assert.equal(sm.spec.endpoints[0].authorization.credentials.name, 'dropmon-token');
});

test('the plain Prometheus scrape configuration passes promtool', (t) => {
  try {
    execFileSync('promtool', ['--version'], { stdio: 'ignore' });
  } catch {
    t.skip('promtool is not installed (scripts/setup.sh installs prometheus)');
    return;
  }
  const file = join(DIR, 'prometheus-scrape.yaml');
  const check = (f: string) => {
    try {
      return { ok: true, out: execFileSync('promtool', ['check', 'config', '--syntax-only', f], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) };
    } catch (e) {
      const err = e as { stdout: string; stderr: string };
      return { ok: false, out: `${err.stdout}${err.stderr}` };
    }
  };
  let r = check(file);
  if (!r.ok && /kubernetes_sd_configs not found/.test(r.out)) {
    // Debian's Prometheus is built without Kubernetes discovery: check the rest of the job
    // (authorization, relabelling) with static targets in its place.
    t.diagnostic("this promtool has no Kubernetes discovery (Debian's build): checking the job with static targets");
    const cfg = parse(readFileSync(file, 'utf8'));
    for (const job of cfg.scrape_configs) {
      delete job.kubernetes_sd_configs;
      job.static_configs = [{ targets: ['node:9947'] }];
    }
    const dir = mkdtempSync(join(tmpdir(), 'dropmon-promtool-'));
    try {
      writeFileSync(join(dir, 'prometheus.yml'), stringify(cfg));
      r = check(join(dir, 'prometheus.yml'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  assert.ok(r.ok, r.out);
  const out = r.out;
  assert.match(out, /SUCCESS/);
});
