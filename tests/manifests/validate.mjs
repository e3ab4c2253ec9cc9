#!/usr/bin/env node
// validate.mjs — every manifest under deploy/k8s, checked against the
// Kubernetes schemas (npm kubernetes-models) and KEDA's (npm
// @kubernetes-models/keda), as `meson test manifests` runs it:
//
//   node tests/manifests/validate.mjs [DIR]        DIR defaults to deploy/k8s
//   node tests/manifests/validate.mjs --self-test  broken manifests must fail
//
// Each YAML document (npm yaml, pinned with the models in package.json and
// package-lock.json; `npm ci` here, scripts/install-deps.sh does it) is
// validated with the model its apiVersion and kind name (.validate(), the
// models' JSON schemas); a kind with no model fails, so a new manifest
// cannot go unchecked. Kustomize's own files (Kustomization, Component)
// have no schema there: what they name must exist. And what the schemas
// cannot see: each autoscaler and the PodDisruptionBudget point at the
// Deployment that is there, and the KEDA trigger's query uses max by
// (tenant, queue) on lanework_queue_jobs.
//
// Exit 0: all valid; 1: a manifest is broken (each problem on a line); 77
// (meson's "skipped"): the npm modules are not installed.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');

let YAML;
try {
  YAML = (await import('yaml')).default;
  await import('kubernetes-models/apps/v1');
  await import('@kubernetes-models/keda/keda.sh/v1alpha1');
} catch (e) {
  console.log(`SKIP: tests/manifests/node_modules is missing or broken (${e.message.split('\n')[0]}): ` +
    'run `npm ci` in tests/manifests (scripts/install-deps.sh does)');
  process.exit(77);
}

// apiVersion -> the module of its models.
function moduleOf(apiVersion) {
  if (apiVersion.startsWith('keda.sh/')) return `@kubernetes-models/keda/${apiVersion}`;
  if (!apiVersion.includes('/')) return `kubernetes-models/${apiVersion}`; // core: v1
  return `kubernetes-models/${apiVersion}`;
}

const KUSTOMIZE = new Set(['kustomize.config.k8s.io/v1beta1 Kustomization',
  'kustomize.config.k8s.io/v1alpha1 Component']);

function yamlFiles(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...yamlFiles(p));
    else if (/\.ya?ml$/.test(e.name)) out.push(p);
  }
  return out.sort();
}

// Validates the documents of the files; returns the problems (strings).
async function check(dir, files) {
  const problems = [];
  const docs = [];
  for (const file of files) {
    const rel = path.relative(dir, file);
    let parsed;
    try {
      parsed = YAML.parseAllDocuments(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      problems.push(`${rel}: ${e.message}`);
      continue;
    }
    for (const [i, d] of parsed.entries()) {
      const where = parsed.length > 1 ? `${rel} (document ${i + 1})` : rel;
      if (d.errors.length) {
        problems.push(`${where}: YAML: ${d.errors.map((e) => e.message).join('; ')}`);
        continue;
      }
      const obj = d.toJS();
      if (obj === null || obj === undefined) continue;
      if (typeof obj !== 'object' || !obj.apiVersion || !obj.kind) {
        problems.push(`${where}: not a manifest (no apiVersion and kind)`);
        continue;
      }
      docs.push({ where, file, obj });
    }
  }
  for (const { where, file, obj } of docs) {
    const id = `${obj.apiVersion} ${obj.kind}`;
    if (KUSTOMIZE.has(id)) {
      const names = {};
      for (const key of ['resources', 'components']) names[key] = [...(obj[key] || [])];
      // The optional components, offered commented out ("# components:"
      // and "#   - NAME" lines): they must be there to be enabled.
      const text = fs.readFileSync(file, 'utf8');
      const m = text.match(/^# components:\n((?:#\s+- \S+\n)+)/m);
      if (m) names.components.push(...[...m[1].matchAll(/- (\S+)/g)].map((x) => x[1]));
      for (const [key, list] of Object.entries(names)) {
        for (const r of list) {
          const p = path.join(path.dirname(file), r);
          if (!fs.existsSync(p)) {
            problems.push(`${where}: ${key} names ${r}, which is not there`);
            continue;
          }
          if (key === 'components') {
            const k = path.join(p, 'kustomization.yaml');
            const c = fs.existsSync(k) && YAML.parse(fs.readFileSync(k, 'utf8'));
            if (!c || c.kind !== 'Component')
              problems.push(`${where}: component ${r} has no kustomization.yaml of kind Component`);
          }
        }
      }
      continue;
    }
    let mod;
    try {
      mod = await import(moduleOf(obj.apiVersion));
    } catch {
      problems.push(`${where}: no schema for apiVersion ${obj.apiVersion}`);
      continue;
    }
    const Model = mod[obj.kind];
    if (typeof Model !== 'function') {
      problems.push(`${where}: no schema for ${id}`);
      continue;
    }
    try {
      new Model(obj).validate();
    } catch (e) {
      problems.push(`${where}: ${id}: ${e.message}`);
    }
  }
  // What the schemas cannot see.
  const deployments = docs.filter((d) => d.obj.kind === 'Deployment');
  const names = new Set(deployments.map((d) => d.obj.metadata && d.obj.metadata.name));
  for (const { where, obj } of docs) {
    if (obj.kind === 'ScaledObject' || obj.kind === 'HorizontalPodAutoscaler') {
      const ref = (obj.spec && obj.spec.scaleTargetRef) || {};
      if ((ref.kind || 'Deployment') !== 'Deployment' || !names.has(ref.name))
        problems.push(`${where}: scaleTargetRef ${ref.kind || 'Deployment'}/${ref.name} is no Deployment here`);
    }
    if (obj.kind === 'ScaledObject') {
      const triggers = (obj.spec && obj.spec.triggers) || [];
      const prom = triggers.filter((t) => t.type === 'prometheus');
      if (!prom.length) problems.push(`${where}: no prometheus trigger`);
      for (const t of prom) {
        const q = (t.metadata && t.metadata.query) || '';
        if (!/lanework_queue_jobs/.test(q) || !/max by \(tenant, queue\)/.test(q))
          problems.push(`${where}: the query does not take max by (tenant, queue) of lanework_queue_jobs`);
      }
    }
    if (obj.kind === 'PodDisruptionBudget') {
      const want = (obj.spec && obj.spec.selector && obj.spec.selector.matchLabels) || {};
      const hit = deployments.some(({ obj: d }) => {
        const labels = (d.spec && d.spec.template && d.spec.template.metadata &&
          d.spec.template.metadata.labels) || {};
        return Object.entries(want).every(([k, v]) => labels[k] === v);
      });
      if (!hit) problems.push(`${where}: its selector matches no Deployment's pods`);
    }
  }
  if (!docs.some((d) => d.obj.kind === 'ScaledObject')) problems.push('no KEDA ScaledObject among the manifests');
  if (!docs.some((d) => d.obj.kind === 'HorizontalPodAutoscaler')) problems.push('no HorizontalPodAutoscaler among the manifests');
  return { problems, count: docs.length };
}

// Copies of the real manifests, each broken one way: every one must fail.
async function selfTest(dir) {
  const files = yamlFiles(dir);
  const tmp = fs.mkdtempSync(path.join(fs.realpathSync('/tmp'), 'lw-manifests-'));
  const breaks = [
    ['autoscaling/keda/scaledobject.yaml', (s) => s.replace('minReplicaCount: 1', 'minReplicaCount: one')],
    ['autoscaling/keda/scaledobject.yaml', (s) => s.replace('threshold: "16"', 'threshold: 16')],
    ['autoscaling/keda/scaledobject.yaml', (s) => s.replace('  triggers:', '  trigers:')],
    ['autoscaling/keda/scaledobject.yaml', (s) => s.replace(/name: lanework-worker\n(\s*# At least)/, 'name: lanework-wrker\n$1')],
    ['autoscaling/keda/scaledobject.yaml', (s) => s.replace(/max by \(tenant, queue\)/g, 'sum')],
    ['autoscaling/hpa/hpa.yaml', (s) => s.replace('maxReplicas: 30', 'maxReplicas: "30"')],
    ['autoscaling/hpa/hpa.yaml', (s) => s.replace('type: AverageValue', 'type: 16')],
    ['deployment.yaml', (s) => s.replace('replicas: 3', 'replicas: three')],
    ['deployment.yaml', (s) => s.replace('containerPort: 9090', 'containerPort: "http"')],
    ['pdb.yaml', (s) => s.replace('apiVersion: policy/v1', 'apiVersion: policy/v7')],
    ['kustomization.yaml', (s) => s.replace('  - pdb.yaml', '  - pdb2.yaml')],
    ['kustomization.yaml', (s) => s.replace('#   - autoscaling/keda', '#   - autoscaling/kedaa')],
    ['autoscaling/hpa/kustomization.yaml', (s) => s.replace('kind: Component', 'kind: Kustomization')],
  ];
  let bad = 0;
  const clean = await check(dir, files);
  if (clean.problems.length) {
    console.log(`self-test: the real manifests already fail:\n  ${clean.problems.join('\n  ')}`);
    return 1;
  }
  for (const [i, [rel, brk]] of breaks.entries()) {
    const root = path.join(tmp, String(i));
    for (const f of files) {
      const dst = path.join(root, path.relative(dir, f));
      fs.mkdirSync(path.dirname(dst), { recursive: true });
      fs.copyFileSync(f, dst);
    }
    const target = path.join(root, rel);
    const before = fs.readFileSync(target, 'utf8');
    const after = brk(before);
    if (after === before) {
      console.log(`self-test ${i}: the break of ${rel} changed nothing (manifest changed?)`);
      bad++;
      continue;
    }
    fs.writeFileSync(target, after);
    const got = await check(root, yamlFiles(root));
    if (!got.problems.length) {
      console.log(`self-test ${i}: ${rel} broken, yet it passed`);
      bad++;
    } else {
      console.log(`ok   self-test ${i}: ${rel}: ${got.problems[0].slice(0, 160)}`);
    }
  }
  fs.rmSync(tmp, { recursive: true, force: true });
  console.log(`${breaks.length - bad} passed, ${bad} failed`);
  return bad ? 1 : 0;
}

const args = process.argv.slice(2);
const dir = path.resolve(args.find((a) => !a.startsWith('--')) || path.join(ROOT, 'deploy', 'k8s'));
if (args.includes('--self-test')) {
  process.exit(await selfTest(dir));
}
const { problems, count } = await check(dir, yamlFiles(dir));
for (const p of problems) console.log(`FAIL ${p}`);
console.log(`${count} manifests in ${path.relative(process.cwd(), dir) || '.'}: ` +
  `${problems.length ? 'broken' : 'valid'}`);
console.log(`${problems.length ? 0 : 1} passed, ${problems.length ? 1 : 0} failed`);
process.exit(problems.length ? 1 : 0);
