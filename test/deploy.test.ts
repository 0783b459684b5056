// Deployment artefacts: the Kubernetes manifests validated against the
// Kubernetes schemas (kubernetes-models) and checked for consistency with each
// other and with the service's config; the Dockerfile linted (dockerfile-utils)
// and checked to run the same compiled entry points the tests run.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { parseEnv } from "node:util";
import { parseAllDocuments } from "yaml";
import { validate as lintDockerfile } from "dockerfile-utils";
import { Copy, DockerfileParser, Env, type Instruction } from "dockerfile-ast";
import { Deployment } from "kubernetes-models/apps/v1";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { ConfigMap, Namespace, Service, ServiceAccount } from "kubernetes-models/v1";
import type { IContainer, IProbe } from "kubernetes-models/v1";
import { parseServerConfig, usage } from "../src/server/config.js";
import { createClient } from "../src/client/client.js";
import { freePort } from "./helpers/net.js";
import { mrImage, startTestServer } from "./helpers/service.js";

const K8S = "deploy/k8s";
const SECURE = join(K8S, "secure");

type Manifest = { apiVersion: string; kind: string; metadata: { name: string }; [key: string]: unknown };

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  "apps/v1/Deployment": Deployment,
  "autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "v1/ConfigMap": ConfigMap,
  "v1/Namespace": Namespace,
  "v1/Service": Service,
  "v1/ServiceAccount": ServiceAccount,
};

function readYaml(path: string): unknown[] {
  return parseAllDocuments(readFileSync(path, "utf8")).map((doc) => {
    assert.deepEqual(doc.errors, [], `${path}: YAML errors`);
    return doc.toJS();
  });
}

function schemaCheck(manifest: Manifest, where: string): void {
  const Model = MODELS[`${manifest.apiVersion}/${manifest.kind}`];
  assert.ok(Model, `${where}: no schema for ${manifest.apiVersion} ${manifest.kind}`);
  assert.doesNotThrow(() => new Model(manifest as never).validate(), `${where}: ${manifest.kind} fails its schema`);
}

interface Kustomization {
  kind?: string;
  resources?: string[];
  patches?: { path: string }[];
  configMapGenerator?: { name: string; behavior?: string; envs?: string[]; literals?: string[] }[];
  images?: { name: string; newName?: string; newTag?: string }[];
}

const kustomization = (dir: string): Kustomization => readYaml(join(dir, "kustomization.yaml"))[0] as Kustomization;

/** Files a kustomization reads from its own directory (not other kustomizations). */
function filesReferenced(k: Kustomization): string[] {
  return [
    ...(k.resources ?? []).filter((r) => !r.startsWith("..")),
    ...(k.patches ?? []).map((p) => p.path),
    ...(k.configMapGenerator ?? []).flatMap((g) => g.envs ?? []),
  ];
}

/** The base as `kubectl apply -k deploy/k8s` creates it (generated ConfigMap included). */
function base(): { manifests: Manifest[]; config: Record<string, string> } {
  const k = kustomization(K8S);
  const manifests = (k.resources ?? []).flatMap((file) => readYaml(join(K8S, file)) as Manifest[]);
  const generator = k.configMapGenerator?.find((g) => g.name === "medsynth-config");
  assert.ok(generator?.envs?.length, "kustomization generates medsynth-config from an env file");
  const config: Record<string, string> = {};
  for (const file of generator.envs) {
    const text = readFileSync(join(K8S, file), "utf8");
    for (const line of text.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("#"))) {
      // kustomize keeps everything after "=" (no quotes, no inline comments).
      assert.match(line, /^MEDSYNTH_[A-Z0-9_]+=[^\s#"']*$/, `${file}: "${line}"`);
    }
    Object.assign(config, parseEnv(text));
  }
  manifests.push({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: generator.name }, data: config });
  return { manifests, config };
}

function find<T>(manifests: Manifest[], kind: string, name = "medsynth"): T {
  const found = manifests.find((m) => m.kind === kind && m.metadata.name === name);
  assert.ok(found, `${kind}/${name} is in the kustomization`);
  return found as T;
}

const serverContainer = (d: Deployment): IContainer => {
  const container = d.spec?.template.spec?.containers.find((c) => c.name === "medsynth");
  assert.ok(container, "Deployment has the medsynth container");
  return container;
};

const portNumber = (c: IContainer, name: string): number => {
  const port = c.ports?.find((p) => p.name === name);
  assert.ok(port, `container port "${name}"`);
  return port.containerPort;
};

/**
 * Strategic merge as kustomize applies it to these kinds: objects merge key by
 * key; lists of named objects (containers, volumes, volumeMounts, env) merge
 * by name; anything else is replaced.
 */
function strategicMerge(target: unknown, patch: unknown): unknown {
  const named = (v: unknown): v is { name: string }[] =>
    Array.isArray(v) && v.every((x) => typeof x === "object" && x !== null && "name" in x);
  if (named(target) && named(patch)) {
    const merged = [...target];
    for (const item of patch) {
      const at = merged.findIndex((x) => x.name === item.name);
      if (at < 0) merged.push(item);
      else merged[at] = strategicMerge(merged[at], item) as { name: string };
    }
    return merged;
  }
  if (typeof target === "object" && target && !Array.isArray(target) && typeof patch === "object" && patch && !Array.isArray(patch)) {
    const merged: Record<string, unknown> = { ...(target as Record<string, unknown>) };
    for (const [key, value] of Object.entries(patch)) merged[key] = strategicMerge(merged[key], value);
    return merged;
  }
  return patch;
}

test("every manifest in deploy/k8s passes its Kubernetes schema", () => {
  const { manifests } = base();
  assert.ok(manifests.length >= 7);
  for (const m of manifests) schemaCheck(m, `${m.kind}/${m.metadata.name}`);
  const kinds = new Set(manifests.map((m) => m.kind));
  for (const kind of ["Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap", "ServiceAccount"]) {
    assert.ok(kinds.has(kind), `the kustomization includes a ${kind}`);
  }
});

test("each kustomization lists every file in its directory, and each listed file exists", () => {
  for (const dir of [K8S, SECURE]) {
    const k = kustomization(dir);
    const listed = filesReferenced(k).sort();
    const present = readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isFile() && e.name !== "kustomization.yaml")
      .map((e) => e.name)
      .sort();
    assert.deepEqual(listed, present, `${dir}/kustomization.yaml lists exactly the files beside it`);
  }
  assert.deepEqual(kustomization(SECURE).resources, [".."], "the secure overlay builds on the base");
});

test("probes call grpc.health.v1 on the health port that the config opens, and the ports match the config", () => {
  const { manifests, config } = base();
  const deployment = find<Deployment>(manifests, "Deployment");
  const c = serverContainer(deployment);
  assert.deepEqual(c.envFrom, [{ configMapRef: { name: "medsynth-config" } }]);
  assert.equal(portNumber(c, "grpc"), Number(config.MEDSYNTH_PORT));
  assert.equal(portNumber(c, "metrics"), Number(config.MEDSYNTH_METRICS_PORT));
  assert.equal(portNumber(c, "health"), Number(config.MEDSYNTH_HEALTH_PORT));
  assert.equal(deployment.spec?.template.metadata?.annotations?.["prometheus.io/port"], config.MEDSYNTH_METRICS_PORT);

  const probes: Record<string, IProbe | undefined> = {
    startup: c.startupProbe,
    readiness: c.readinessProbe,
    liveness: c.livenessProbe,
  };
  for (const [kind, probe] of Object.entries(probes)) {
    assert.ok(probe?.grpc, `${kind} probe is a gRPC health probe`);
    assert.equal(probe.grpc.port, Number(config.MEDSYNTH_HEALTH_PORT), `${kind} probe targets the health port`);
  }
  // Readiness follows the Translator (NOT_SERVING while draining or warming up).
  assert.equal(probes.readiness?.grpc?.service, "medsynth.v1.Translator");
  assert.equal(probes.liveness?.grpc?.service ?? "", "");
});

test("termination grace covers the preStop delay plus the drain timeout", () => {
  const { manifests, config } = base();
  const deployment = find<Deployment>(manifests, "Deployment");
  const preStop = serverContainer(deployment).lifecycle?.preStop?.exec?.command;
  assert.ok(preStop && preStop[0] === "sleep", "preStop sleeps while endpoints drop the pod");
  const preStopSeconds = Number(preStop[1]);
  const drainSeconds = Number(config.MEDSYNTH_DRAIN_TIMEOUT_MS) / 1000;
  assert.ok(preStopSeconds > 0 && drainSeconds > 0);
  const grace = deployment.spec?.template.spec?.terminationGracePeriodSeconds ?? 30;
  // + 5 s past the drain timeout for the open streams' accepted slices (DRAIN_ANSWER_GRACE_MS), + 5 s to exit.
  assert.ok(grace >= preStopSeconds + drainSeconds + 10, `grace ${grace}s < preStop ${preStopSeconds}s + drain ${drainSeconds}s + 10s`);
});

test("the pod asks for a GPU, runs as non-root with a read-only root filesystem, and selects CUDA", () => {
  const { manifests, config } = base();
  const deployment = find<Deployment>(manifests, "Deployment");
  const c = serverContainer(deployment);
  assert.equal(String(c.resources?.requests?.["nvidia.com/gpu"]), "1");
  assert.equal(String(c.resources?.limits?.["nvidia.com/gpu"]), "1", "extended resources need limit == request");
  assert.equal(config.MEDSYNTH_DEVICE, "cuda");
  const pod = deployment.spec?.template.spec;
  assert.equal(pod?.securityContext?.runAsNonRoot, true);
  assert.ok((pod?.securityContext?.runAsUser ?? 0) > 0);
  assert.equal(pod?.automountServiceAccountToken, false);
  assert.equal(pod?.serviceAccountName, find<ServiceAccount>(manifests, "ServiceAccount").metadata?.name);
  assert.equal(c.securityContext?.readOnlyRootFilesystem, true);
  assert.equal(c.securityContext?.allowPrivilegeEscalation, false);
  assert.deepEqual(c.securityContext?.capabilities?.drop, ["ALL"]);
});

test("the Service is headless and routes its ports to the Deployment's pods", () => {
  const { manifests } = base();
  const deployment = find<Deployment>(manifests, "Deployment");
  const service = find<Service>(manifests, "Service");
  assert.equal(service.spec?.clusterIP, "None", "headless: DNS answers with every ready pod for dns:/// round robin");
  assert.deepEqual(service.spec?.selector, deployment.spec?.selector.matchLabels);
  for (const [key, value] of Object.entries(deployment.spec?.selector.matchLabels ?? {})) {
    assert.equal(deployment.spec?.template.metadata?.labels?.[key], value, `pod template carries selector label ${key}`);
  }
  const c = serverContainer(deployment);
  for (const port of service.spec?.ports ?? []) {
    assert.equal(typeof port.targetPort, "string", "target ports by name");
    // Headless Services do not remap ports: clients dial pod IP:port directly.
    assert.equal(port.port, portNumber(c, String(port.targetPort)));
  }
  assert.ok(service.spec?.ports?.some((p) => p.name === "grpc"));
});

test("the HPA scales the Deployment on metrics that the prometheus-adapter rules provide", () => {
  const { manifests } = base();
  const hpa = find<HorizontalPodAutoscaler>(manifests, "HorizontalPodAutoscaler");
  assert.deepEqual(hpa.spec?.scaleTargetRef, { apiVersion: "apps/v1", kind: "Deployment", name: "medsynth" });
  assert.ok((hpa.spec?.minReplicas ?? 1) >= 2, "at least two pods, so a drain never leaves none");
  const [values] = readYaml("deploy/prometheus-adapter/values.yaml") as [
    { rules: { custom: { seriesQuery: string; name: { matches: string; as: string }; metricsQuery: string }[] } },
  ];
  const provided = new Map(values.rules.custom.map((r) => [r.name.as, r]));
  const used = (hpa.spec?.metrics ?? []).map((m) => {
    assert.equal(m.type, "Pods");
    return m.pods?.metric.name;
  });
  assert.ok(used.includes("medsynth_queue_depth"));
  for (const name of used) {
    const rule = provided.get(String(name));
    assert.ok(rule, `an adapter rule provides ${name}`);
    // The rule reads a series the service exports, per pod.
    const series = /^(medsynth_[a-z_]+)\{/.exec(rule.seriesQuery)?.[1];
    assert.ok(series && new RegExp(rule.name.matches).test(series), `${name}: rule matches its series`);
    assert.match(rule.seriesQuery, /pod!=""/);
    assert.match(rule.metricsQuery, /<<\.GroupBy>>/);
  }
});

test("the server exports the series the prometheus-adapter rules read, and its package version", async () => {
  const metricsPort = await freePort();
  const server = await startTestServer({ metricsPort });
  try {
    const client = createClient(server.address);
    try {
      for await (const answer of client.translate({ direction: "mr2ct" }, [{ index: 0n, image: mrImage() }])) void answer;
    } finally {
      client.close();
    }
    const exposition = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const { version } = JSON.parse(readFileSync("package.json", "utf8")) as { version: string };
    assert.match(exposition, new RegExp(`^target_info\\{.*service_version="${version.replace(/\./g, "\\.")}"`, "m"), "telemetry reports the package's version");
    const [values] = readYaml("deploy/prometheus-adapter/values.yaml") as [{ rules: { custom: { seriesQuery: string }[] } }];
    for (const { seriesQuery } of values.rules.custom) {
      const series = /^(medsynth_[a-z_]+)\{/.exec(seriesQuery)?.[1];
      assert.match(exposition, new RegExp(`^${series}[{ ]`, "m"), `/metrics has ${series}`);
    }
  } finally {
    await server.close();
  }
});

test("the PodDisruptionBudget covers the Deployment's pods and lets one go at a time", () => {
  const { manifests } = base();
  const deployment = find<Deployment>(manifests, "Deployment");
  const pdb = find<PodDisruptionBudget>(manifests, "PodDisruptionBudget");
  assert.deepEqual(pdb.spec?.selector?.matchLabels, deployment.spec?.selector.matchLabels);
  assert.equal(pdb.spec?.maxUnavailable, 1);
});

test("the secure overlay mounts the TLS and token files its config names, and the result passes the schema", () => {
  const { manifests, config } = base();
  const k = kustomization(SECURE);
  const [patch] = (k.patches ?? []).flatMap((p) => readYaml(join(SECURE, p.path))) as Manifest[];
  const target = find<Deployment>(manifests, patch.kind, patch.metadata.name);
  const patched = strategicMerge(target, patch) as Manifest;
  schemaCheck(patched, "secure Deployment");

  const generator = k.configMapGenerator?.find((g) => g.name === "medsynth-config");
  assert.equal(generator?.behavior, "merge");
  const overlayConfig = { ...config, ...parseEnv((generator?.literals ?? []).join("\n")) };
  const secured = new Deployment(patched as never);
  const c = serverContainer(secured);
  const volumes = new Map(secured.spec?.template.spec?.volumes?.map((v) => [v.name, v]));
  for (const key of ["MEDSYNTH_TLS_CERT", "MEDSYNTH_TLS_KEY", "MEDSYNTH_TLS_CLIENT_CA", "MEDSYNTH_AUTH_TOKENS_FILE"]) {
    const path = overlayConfig[key];
    assert.ok(path, `${key} is set`);
    const mount = c.volumeMounts?.find((m) => path.startsWith(`${m.mountPath}/`));
    assert.ok(mount?.readOnly, `${key} (${path}) lies in a read-only mount`);
    assert.ok(volumes.get(mount.name)?.secret?.secretName, `${key} comes from a Secret`);
  }
  // Probes stay on the plaintext health port, which TLS does not cover.
  assert.equal(c.readinessProbe?.grpc?.port, Number(overlayConfig.MEDSYNTH_HEALTH_PORT));
});

test("the ConfigMap (base and secure overlay) is configuration the server accepts", () => {
  const { config } = base();
  const known = new Set(usage().match(/MEDSYNTH_[A-Z0-9_]+/g));
  const literals = kustomization(SECURE).configMapGenerator?.flatMap((g) => g.literals ?? []) ?? [];
  const secure = { ...config, ...parseEnv(literals.join("\n")) };
  for (const key of Object.keys(secure)) assert.ok(known.has(key), `${key} is a server option`);
  const parsed = parseServerConfig([], config);
  assert.equal(parsed.drainTimeoutMs, Number(config.MEDSYNTH_DRAIN_TIMEOUT_MS));
  assert.equal(parsed.healthPort, Number(config.MEDSYNTH_HEALTH_PORT));
  assert.equal(parsed.device, "cuda");
  assert.equal(parseServerConfig([], secure).tlsClientCa, secure.MEDSYNTH_TLS_CLIENT_CA);
});

// ---- Dockerfile -------------------------------------------------------------

interface Stage {
  name: string;
  image: string;
  instructions: Instruction[];
}

function dockerStages(): Stage[] {
  const stages: Stage[] = [];
  for (const instruction of DockerfileParser.parse(readFileSync("Dockerfile", "utf8")).getInstructions()) {
    if (instruction.getKeyword() === "FROM") {
      const [image, , name] = instruction.getArguments().map((a) => a.getValue());
      stages.push({ name, image, instructions: [] });
    } else {
      stages.at(-1)?.instructions.push(instruction);
    }
  }
  return stages;
}

const args = (i: Instruction): string[] => i.getArguments().map((a) => a.getValue());
const only = (stage: Stage, keyword: string): Instruction[] => stage.instructions.filter((i) => i.getKeyword() === keyword);
/** COPY --from=<stage>, or undefined for a copy from the build context. */
const copiedFrom = (i: Instruction): string | undefined => (i instanceof Copy ? (i.getFromFlag()?.getValue() ?? undefined) : undefined);

/** A stage's FROM with the Dockerfile's global ARG defaults filled in. */
function baseImage(stage: Stage): string {
  const initialArgs = new Map(
    DockerfileParser.parse(readFileSync("Dockerfile", "utf8"))
      .getInitialARGs()
      .map((a) => {
        const [name, value] = args(a)[0].split("=");
        return [`\${${name}}`, value];
      }),
  );
  return initialArgs.get(stage.image) ?? stage.image;
}

/** The JSON exec form of ENTRYPOINT / HEALTHCHECK CMD as argv. */
function execForm(i: Instruction): string[] {
  const json = /(\[.*\])\s*$/s.exec(i.getArgumentsContent() ?? "")?.[1];
  assert.ok(json, `${i.getKeyword()} uses the exec (JSON) form`);
  return JSON.parse(json) as string[];
}

test("the Dockerfile lints clean with dockerfile-utils", () => {
  assert.deepEqual(lintDockerfile(readFileSync("Dockerfile", "utf8")), []);
});

test("the Dockerfile builds, prunes, fetches the CUDA provider, and has GPU (default) and CPU runtime targets", () => {
  const stages = dockerStages();
  assert.deepEqual(stages.map((s) => s.name), ["build", "ort-cuda", "cpu", "gpu"], "gpu is last: the default target");
  const build = stages[0];
  const buildRuns = only(build, "RUN").map((i) => args(i).join(" ")).join("\n");
  assert.match(buildRuns, /npm ci/);
  assert.match(buildRuns, /npm run prepare/, "the fresh-clone build: buf generate + tsc");
  assert.match(buildRuns, /npm prune --omit=dev/);
  assert.match(only(stages[1], "RUN").map((i) => args(i).join(" ")).join("\n"), /ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node/);

  assert.match(baseImage(build), /^node:20/);
  assert.match(baseImage(stages[2]), /^node:20/);
  assert.match(baseImage(stages[3]), /^nvidia\/cuda:[\d.]+-cudnn-runtime-/);
  // The GPU stage gets its node binary and CUDA-enabled node_modules from the build.
  const gpuCopies = only(stages[3], "COPY").map((i) => `${copiedFrom(i) ?? "context"}:${args(i)[0]}`);
  assert.ok(gpuCopies.includes("build:/usr/local/bin/node"));
  assert.ok(gpuCopies.includes("ort-cuda:/app/node_modules/"));
});

/** deploy/cuda-provider.json: what the CUDA provider that onnxruntime-node installs links against. */
interface CudaProviderEvidence {
  cudaMajor: number;
  cudnnMajor: number;
  onnxruntimeNode: { version: string; manifest: string; nugetPackage: string; nugetVersion: string; nugetFeed: string };
  wheel: { file: string; readelfNeeded: string[]; dlopened: string[]; driverLibrary: string };
}

const cudaEvidence = (): CudaProviderEvidence => JSON.parse(readFileSync("deploy/cuda-provider.json", "utf8")) as CudaProviderEvidence;

test("the CUDA provider evidence describes the onnxruntime-node that is installed", () => {
  const evidence = cudaEvidence();
  const installed = JSON.parse(readFileSync("node_modules/onnxruntime-node/package.json", "utf8")) as { version: string };
  assert.equal(installed.version, evidence.onnxruntimeNode.version, "onnxruntime-node changed: redo deploy/cuda-provider.json (deploy/README.md)");
  const require = createRequire(import.meta.url);
  const metadata = require(join(process.cwd(), "node_modules/onnxruntime-node/script/install-metadata.js")) as {
    requirements: Record<string, string[]>;
    packages: Record<string, { name: string; versions: { feed: string; version: string }[] }>;
    feeds: Record<string, { index: string }>;
  };
  const [platform, manifest] = evidence.onnxruntimeNode.manifest.split(":");
  assert.deepEqual(metadata.requirements[platform], [manifest]);
  const pkg = metadata.packages[`nuget:${evidence.onnxruntimeNode.manifest}`];
  assert.equal(pkg.name, evidence.onnxruntimeNode.nugetPackage);
  assert.deepEqual(pkg.versions.map((v) => [metadata.feeds[v.feed].index, v.version]), [
    [evidence.onnxruntimeNode.nugetFeed, evidence.onnxruntimeNode.nugetVersion],
  ]);
  assert.match(evidence.wheel.file, new RegExp(`^onnxruntime_gpu-${evidence.onnxruntimeNode.nugetVersion.replaceAll(".", "\\.")}-`));
  // The recorded major is the one readelf printed, not a second opinion.
  const needed = (name: string) =>
    evidence.wheel.readelfNeeded.map((line) => new RegExp(`\\(NEEDED\\)\\s+Shared library: \\[${name}\\.so\\.(\\d+)\\]`).exec(line)?.[1]).find(Boolean);
  assert.equal(Number(needed("libcudart")), evidence.cudaMajor);
  assert.equal(Number(needed("libcublas")), evidence.cudaMajor);
  assert.ok(evidence.wheel.dlopened.includes(`libcudnn.so.${evidence.cudnnMajor}`));
});

test("the GPU image's CUDA base has the provider's CUDA major, and its build fails when a provider library is missing", () => {
  const evidence = cudaEvidence();
  const gpu = dockerStages().find((s) => s.name === "gpu");
  assert.ok(gpu);
  const tag = /^nvidia\/cuda:(\d+)\.\d+\.\d+-cudnn-runtime-ubuntu[\d.]+$/.exec(baseImage(gpu));
  assert.ok(tag, `${baseImage(gpu)} is an nvidia/cuda cudnn-runtime tag`);
  assert.equal(Number(tag[1]), evidence.cudaMajor, "CUDA base major = libcudart major of the provider (deploy/cuda-provider.json)");

  const runs = only(gpu, "RUN").map((i) => i.getArgumentsContent() ?? "");
  const guard = runs.find((r) => /\bldd\b/.test(r));
  assert.ok(guard, "the gpu stage runs ldd");
  assert.match(guard, /set -eu/, "a failing check fails the RUN");
  assert.match(guard, /onnxruntime-node\/bin\/napi-v6\/linux\/x64/);
  assert.match(guard, /ldd "\$ort\/libonnxruntime_providers_cuda\.so"/);
  assert.match(guard, /grep 'not found'/);
  // Only the driver's library may be absent at build time.
  const excused = [...guard.matchAll(/grep -v '([^']+)'/g)].map((m) => m[1].replaceAll("\\", ""));
  assert.deepEqual(excused, [`${evidence.wheel.driverLibrary} `]);
  assert.match(guard, /exit 1/);
  for (const lib of evidence.wheel.dlopened) assert.ok(guard.includes(lib), `the guard checks the dlopened ${lib}`);
  assert.match(guard, /ldconfig -p/);
  // The guard runs after the provider arrives in the image.
  const instructions = gpu.instructions;
  const copied = instructions.findIndex((i) => copiedFrom(i) === "ort-cuda" && args(i)[0] === "/app/node_modules/");
  const checked = instructions.findIndex((i) => i.getKeyword() === "RUN" && /\bldd\b/.test(i.getArgumentsContent() ?? ""));
  assert.ok(copied >= 0 && checked > copied, "ldd runs after node_modules is copied in");
  // The CPU image has no CUDA and no such check.
  const cpu = dockerStages().find((s) => s.name === "cpu");
  assert.ok(cpu && !only(cpu, "RUN").some((i) => /\bldd\b|cuda/i.test(i.getArgumentsContent() ?? "")));
});

test("both runtime images run the compiled entry points the tests run, as a non-root user, with a gRPC health check", () => {
  const pkg = JSON.parse(readFileSync("package.json", "utf8")) as { scripts: { start: string } };
  const started = pkg.scripts.start.split(" ");
  assert.equal(started[0], "node");
  const { config } = base();
  for (const stage of dockerStages().filter((s) => s.name === "cpu" || s.name === "gpu")) {
    const [entrypoint] = only(stage, "ENTRYPOINT");
    assert.deepEqual(execForm(entrypoint), started, `${stage.name}: ENTRYPOINT is \`npm start\`'s command`);

    const [healthcheck] = only(stage, "HEALTHCHECK");
    const probe = execForm(healthcheck);
    assert.deepEqual(probe, ["node", "dist/src/cli/healthcheck.js"]);
    for (const entry of [started.at(-1)!, probe[1]]) {
      const source = entry.replace(/^dist\//, "").replace(/\.js$/, ".ts");
      assert.ok(existsSync(source), `${stage.name}: ${entry} is compiled from ${source}`);
    }

    const [user] = only(stage, "USER");
    assert.match(args(user)[0], /^[1-9]\d*:[1-9]\d*$/, `${stage.name}: numeric non-root USER (runAsNonRoot can check it)`);
    const env = new Map(
      only(stage, "ENV").flatMap((i) => (i instanceof Env ? i.getProperties().map((p) => [p.getName(), p.getValue() ?? ""]) : [])),
    );
    assert.equal(env.get("MEDSYNTH_DEVICE"), stage.name === "gpu" ? "auto" : "cpu");
    const imageConfig = Object.fromEntries([...env].filter(([key]) => key.startsWith("MEDSYNTH_")));
    assert.doesNotThrow(() => parseServerConfig([], imageConfig), `${stage.name}: ENV is configuration the server accepts`);
    const exposed = only(stage, "EXPOSE").flatMap(args).map(Number);
    assert.deepEqual(exposed, [Number(env.get("MEDSYNTH_PORT")), Number(env.get("MEDSYNTH_METRICS_PORT"))]);
    // The image and the Kubernetes config agree on ports and on where models are.
    for (const key of ["MEDSYNTH_PORT", "MEDSYNTH_METRICS_PORT", "MEDSYNTH_HEALTH_PORT", "MEDSYNTH_MODELS_DIR", "MEDSYNTH_HOST"]) {
      assert.equal(env.get(key), config[key], `${stage.name}: ${key} matches deploy/k8s/config.env`);
    }
    assert.ok(only(stage, "COPY").some((i) => args(i)[0] === "models/"), `${stage.name}: models baked in`);
  }
});

test(".dockerignore admits exactly what the Dockerfile copies from the context", () => {
  const lines = readFileSync(".dockerignore", "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  assert.equal(lines[0], "*", "allowlist: everything is excluded unless listed");
  const admitted = new Set(lines.filter((l) => l.startsWith("!")).map((l) => l.slice(1)));
  const copied = dockerStages()
    .flatMap((s) => only(s, "COPY"))
    .filter((i) => copiedFrom(i) === undefined)
    .flatMap((i) => args(i).slice(0, -1));
  for (const source of copied) assert.ok(admitted.has(source), `.dockerignore admits ${source}`);
  for (const source of admitted) assert.ok(copied.includes(source), `${source} is admitted but never copied`);
});
