/**
 * docs/manifests/kubernetes/*.yaml, the manifests docs/deployment.md applies: every object validated against the
 * published Kubernetes OpenAPI schemas (the `kubernetes-models` package: ajv validators generated from the
 * Kubernetes API's OpenAPI document), then checked against our own programs — the environment each
 * container gets resolves with margay-node's and margay-kube-controllers' own configuration code, the
 * init container is `margay-node install-cni` writing where the agent listens, probes hit the health
 * ports the configuration chose, and RBAC grants the verbs the code calls.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createMemoryDatastore } from "@margay/datastore";
import { createHttpTransport } from "@margay/kube-adapter";
import { startFakeKubeApiServer } from "@margay/kube-adapter/testing";
import { describe, expect, it } from "vitest";
import { apiValidator } from "../config/api-validator.js";
import { parseAllDocuments } from "yaml";
import { resolveControllersConfig } from "../controllers/config.js";
import { runKubeControllers } from "../controllers/run.js";
import { INSTALL_CNI_DEFAULTS } from "../cni/install/install.js";
import { resolveBootstrapConfig } from "../node/config/resolve.js";
import { settingByEnv } from "../node/config/schema.js";

const dir = fileURLToPath(new URL("../../../../docs/manifests/kubernetes/", import.meta.url));

// biome-ignore lint/suspicious/noExplicitAny: manifests are free-form YAML, narrowed by the schema check
type Obj = any;

interface Doc {
  file: string;
  obj: Obj;
}

function loadManifests(): Doc[] {
  const docs: Doc[] = [];
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .sort()) {
    for (const d of parseAllDocuments(readFileSync(join(dir, file), "utf8"))) {
      if (d.errors.length > 0) throw new Error(`${file}: ${d.errors[0]!.message}`);
      const obj = d.toJS() as Obj;
      if (obj !== null && obj !== undefined) docs.push({ file, obj });
    }
  }
  return docs;
}

/** The kubernetes-models class of an apiVersion/kind (`apps/v1` DaemonSet → kubernetes-models/apps/v1/DaemonSet). */
async function modelOf(apiVersion: string, kind: string): Promise<{ new (data: Obj): { validate(): void } }> {
  const mod = (await import(/* @vite-ignore */ `kubernetes-models/${apiVersion}/${kind}`)) as Record<
    string,
    unknown
  >;
  const model = mod[kind];
  if (typeof model !== "function") throw new Error(`kubernetes-models has no ${apiVersion} ${kind}`);
  return model as { new (data: Obj): { validate(): void } };
}

async function validate(obj: Obj): Promise<void> {
  const Model = await modelOf(obj.apiVersion, obj.kind);
  new Model(obj).validate();
}

const docs = loadManifests();
const find = (kind: string, name: string): Obj => {
  const d = docs.find((x) => x.obj.kind === kind && x.obj.metadata?.name === name);
  if (d === undefined) throw new Error(`no ${kind} ${name} in docs/manifests/kubernetes`);
  return d.obj;
};
const configMap = find("ConfigMap", "margay-config");

/** A container's environment as the kubelet would give it (ConfigMap keys read, field refs filled). */
function envOf(container: Obj, fields: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.configMapKeyRef !== undefined) {
      const ref = e.valueFrom.configMapKeyRef;
      expect(ref.name, `${e.name}'s ConfigMap`).toBe("margay-config");
      const v = configMap.data[ref.key];
      expect(v, `margay-config has key ${ref.key}`).toBeTypeOf("string");
      env[e.name] = v;
    } else if (e.valueFrom?.fieldRef !== undefined) {
      const v = fields[e.valueFrom.fieldRef.fieldPath];
      expect(v, `field ${e.valueFrom.fieldRef.fieldPath}`).toBeDefined();
      env[e.name] = v!;
    } else throw new Error(`env ${e.name}: unsupported source`);
  }
  return env;
}

function mountsOf(pod: Obj, container: Obj): Map<string, string> {
  const volumes = new Map<string, Obj>(pod.volumes.map((v: Obj) => [v.name, v]));
  const out = new Map<string, string>();
  for (const m of container.volumeMounts ?? []) {
    const v = volumes.get(m.name);
    expect(v, `volume ${m.name}`).toBeDefined();
    out.set(m.mountPath, v.hostPath?.path ?? `${Object.keys(v).find((k) => k !== "name")}:${m.name}`);
  }
  return out;
}

/** What a role grants: `group/resource` → verbs (resourceNames kept apart). */
function grants(role: Obj): Map<string, Set<string>> {
  const g = new Map<string, Set<string>>();
  for (const r of role.rules)
    for (const group of r.apiGroups)
      for (const res of r.resources) {
        const key = `${group === "" ? "core" : group}/${res}${r.resourceNames ? `[${r.resourceNames.join(",")}]` : ""}`;
        g.set(key, new Set([...(g.get(key) ?? []), ...r.verbs]));
      }
  return g;
}
const asObject = (g: Map<string, Set<string>>) =>
  Object.fromEntries(
    [...g].map(([k, v]) => [k, [...v].sort()]).sort(([a], [b]) => String(a).localeCompare(String(b))),
  );

describe("docs/manifests/kubernetes manifests", () => {
  it("every object is valid against the published Kubernetes schemas (kubernetes-models)", async () => {
    expect(docs.map((d) => `${d.obj.kind}/${d.obj.metadata.name}`).sort()).toEqual([
      "ClusterRole/margay-kube-controllers",
      "ClusterRole/margay-node",
      "ClusterRoleBinding/margay-kube-controllers",
      "ClusterRoleBinding/margay-node",
      "ConfigMap/margay-config",
      "DaemonSet/margay-node",
      "Deployment/margay-kube-controllers",
      "Role/margay-kube-controllers-leader-election",
      "RoleBinding/margay-kube-controllers-leader-election",
      "ServiceAccount/margay-kube-controllers",
      "ServiceAccount/margay-node",
    ]);
    for (const d of docs) await expect(validate(d.obj), `${d.file}: ${d.obj.kind}`).resolves.toBeUndefined();
  });

  it("the validator rejects what the API server would (so the check above is not vacuous)", async () => {
    const ds = structuredClone(find("DaemonSet", "margay-node"));
    ds.spec.template.spec.containers[0].ports[0].containerPort = "179";
    await expect(validate(ds)).rejects.toThrow(/containerPort must be integer/);
    const noSelector = structuredClone(find("Deployment", "margay-kube-controllers"));
    delete noSelector.spec.selector;
    await expect(validate(noSelector)).rejects.toThrow(/selector/);
    const badRule = structuredClone(find("ClusterRole", "margay-node"));
    badRule.rules[0].verbs = "get";
    await expect(validate(badRule)).rejects.toThrow(/verbs must be array/);
  });

  it("margay-node: install-cni init container writes where the agent listens; the env resolves with the agent's own config code", () => {
    const ds = find("DaemonSet", "margay-node");
    const pod = ds.spec.template.spec;
    expect(pod.hostNetwork).toBe(true);
    expect(pod.serviceAccountName).toBe("margay-node");
    expect(ds.spec.selector.matchLabels).toEqual(
      Object.fromEntries(
        Object.entries(ds.spec.template.metadata.labels).filter(([k]) => k in ds.spec.selector.matchLabels),
      ),
    );

    const init = pod.initContainers.find((c: Obj) => c.name === "install-cni");
    expect(init.command.slice(0, 2)).toEqual(["margay-node", "install-cni"]);
    const flag = (f: string) => init.command[init.command.indexOf(f) + 1];
    const initMounts = mountsOf(pod, init);
    expect(initMounts.get(flag("--cni-bin-dir"))).toBe(INSTALL_CNI_DEFAULTS.binDir);
    expect(initMounts.get(flag("--cni-conf-dir"))).toBe(INSTALL_CNI_DEFAULTS.confDir);

    const agent = pod.containers.find((c: Obj) => c.name === "margay-node");
    expect(agent.command).toEqual(["margay-node"]);
    const env = envOf(agent, { "spec.nodeName": "worker-1" });
    for (const name of Object.keys(env))
      expect(settingByEnv(name), `${name} is a margay-node setting`).toBeDefined();
    // In a pod the kubelet adds these: Kubernetes mode through the in-cluster service account.
    const { config } = resolveBootstrapConfig({
      env: { ...env, KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" },
      hostname: "ignored",
    });
    expect(config.nodeName).toBe("worker-1");
    expect(config.kubernetes, "Kubernetes mode (in-cluster)").toBeDefined();
    expect(config.datastore).toMatchObject({
      type: "etcd",
      endpoints: configMap.data.etcd_endpoints.split(","),
      caCertFile: configMap.data.etcd_ca,
    });

    // The conflist install-cni writes points the plugin at the socket and state dir it was given; the
    // agent must serve exactly those, on the same host paths.
    expect(flag("--agent-socket")).toBe(config.workloadSocket);
    expect(flag("--state-dir")).toBe(config.stateDir);
    const mounts = mountsOf(pod, agent);
    expect(mounts.get("/var/run/margay")).toBe("/var/run/margay");
    expect(config.workloadSocket.startsWith("/var/run/margay/")).toBe(true);
    expect(mounts.get(config.stateDir)).toBe(config.stateDir);
    for (const path of Object.values(configMap.data).filter((v) => String(v).startsWith("/etc/margay/etcd/")))
      expect(mounts.get("/etc/margay/etcd"), `${path} is mounted`).toBe("secret:etcd-certs");

    // Probes reach the health server where the configuration puts it.
    for (const probe of [agent.livenessProbe, agent.readinessProbe]) {
      expect(probe.httpGet.port).toBe(config.health.port);
      expect(probe.httpGet.host).toBe(config.health.host);
    }
    expect([agent.livenessProbe.httpGet.path, agent.readinessProbe.httpGet.path]).toEqual([
      "/livez",
      "/readyz",
    ]);
    expect(agent.ports.find((p: Obj) => p.name === "metrics").containerPort).toBe(config.metrics.port);
  });

  it("margay-kube-controllers: 2 replicas, leader election by Lease; the env resolves with the controllers' own config code", () => {
    const dep = find("Deployment", "margay-kube-controllers");
    expect(dep.spec.replicas).toBe(2);
    const pod = dep.spec.template.spec;
    expect(pod.serviceAccountName).toBe("margay-kube-controllers");
    const c = pod.containers[0];
    expect(c.command).toEqual(["margay-kube-controllers", "run"]);
    const env = envOf(c, {
      "metadata.name": "margay-kube-controllers-7d9f-abcde",
      "metadata.namespace": "kube-system",
    });
    const config = resolveControllersConfig(
      { ...env, KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" },
      { hostname: "ignored" },
    );
    expect(config.enabledControllers).toEqual([
      "node",
      "policy",
      "namespace",
      "serviceaccount",
      "workloadendpoint",
    ]);
    expect(config.leaderElection).toMatchObject({
      enabled: true,
      namespace: dep.metadata.namespace,
      name: "margay-kube-controllers",
      identity: "margay-kube-controllers-7d9f-abcde",
    });
    expect(config.datastore.endpoints).toEqual(configMap.data.etcd_endpoints.split(","));
    for (const probe of [c.livenessProbe, c.readinessProbe])
      expect(probe.httpGet.port).toBe(config.health.port);
    expect(c.ports.find((p: Obj) => p.name === "metrics").containerPort).toBe(config.metrics.port);

    // The Lease the controllers elect with is the one the Role lets them touch.
    const role = find("Role", "margay-kube-controllers-leader-election");
    expect(role.metadata.namespace).toBe(config.leaderElection.namespace);
    expect(asObject(grants(role))).toEqual({
      "coordination.k8s.io/leases": ["create"],
      [`coordination.k8s.io/leases[${config.leaderElection.name}]`]: ["get", "update"],
    });
  });

  it("no Secret volume is world-readable, and each is readable by the containers that mount it", () => {
    // Modes as the API server's YAML decoder reads them (YAML 1.1: `0400` is octal), not YAML 1.2's decimal.
    const pods: { file: string; name: string; pod: Obj }[] = [];
    for (const file of readdirSync(dir).filter((f) => f.endsWith(".yaml"))) {
      for (const d of parseAllDocuments(readFileSync(join(dir, file), "utf8"), { version: "1.1" })) {
        const obj = d.toJS() as Obj;
        const pod = obj?.spec?.template?.spec ?? (obj?.kind === "Pod" ? obj.spec : undefined);
        if (pod !== undefined) pods.push({ file, name: obj.metadata.name, pod });
      }
    }
    let secretVolumes = 0;
    for (const { file, name, pod } of pods) {
      const secrets: { name: string; modes: number[] }[] = [];
      for (const v of pod.volumes ?? []) {
        if (v.secret !== undefined) {
          const d = v.secret.defaultMode ?? 0o644; // the API server's default
          secrets.push({ name: v.name, modes: [d, ...(v.secret.items ?? []).map((i: Obj) => i.mode ?? d)] });
        }
        for (const src of v.projected?.sources ?? []) {
          if (src.secret === undefined) continue;
          const d = v.projected.defaultMode ?? 0o644;
          secrets.push({
            name: v.name,
            modes: [d, ...(src.secret.items ?? []).map((i: Obj) => i.mode ?? d)],
          });
        }
      }
      for (const { name: vol, modes } of secrets) {
        secretVolumes++;
        const where = `${file} ${name} volume ${vol}`;
        for (const m of modes)
          expect(m & 0o007, `${where} mode ${m.toString(8)} is world-accessible`).toBe(0);
        for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
          if (!(c.volumeMounts ?? []).some((m: Obj) => m.name === vol)) continue;
          // Secret files are owned by root, group the pod's fsGroup when set.
          const uid = c.securityContext?.runAsUser ?? pod.securityContext?.runAsUser ?? 0;
          const fsGroup = pod.securityContext?.fsGroup;
          for (const m of modes) {
            const readable = uid === 0 ? (m & 0o400) !== 0 : fsGroup !== undefined && (m & 0o040) !== 0;
            expect(readable, `${where} mode ${m.toString(8)} unreadable by ${c.name} (uid ${uid})`).toBe(
              true,
            );
          }
        }
      }
    }
    expect(secretVolumes).toBeGreaterThanOrEqual(2);
  });

  it("RBAC grants the verbs the code calls, read-only outside the Lease, bound to the two service accounts", () => {
    // margay-node in Kubernetes mode: node/kubernetes/pod-info.ts GETs the pod and its namespace;
    // node/kubernetes/node-pod-cidrs.ts GETs its own Node (spec.podCIDRs);
    // node/kubernetes/service-feed.ts runs list+watch informers on Services and EndpointSlices.
    expect(asObject(grants(find("ClusterRole", "margay-node")))).toEqual({
      "core/namespaces": ["get"],
      "core/nodes": ["get"],
      "core/pods": ["get"],
      "core/services": ["list", "watch"],
      "discovery.k8s.io/endpointslices": ["list", "watch"],
    });
    // The controllers: kube-adapter informers (namespaces, service accounts, network policies, admin and
    // baseline admin network policies), the pod informer plus a GET of a pod before the IPAM GC frees an
    // address (controllers/run.ts), the node informer (node controller).
    expect(asObject(grants(find("ClusterRole", "margay-kube-controllers")))).toEqual({
      "core/namespaces": ["list", "watch"],
      "core/nodes": ["list", "watch"],
      "core/pods": ["get", "list", "watch"],
      "core/serviceaccounts": ["list", "watch"],
      "networking.k8s.io/networkpolicies": ["list", "watch"],
      "policy.networking.k8s.io/adminnetworkpolicies": ["list", "watch"],
      "policy.networking.k8s.io/baselineadminnetworkpolicies": ["list", "watch"],
    });
    for (const [binding, role, kind] of [
      ["margay-node", "margay-node", "ClusterRoleBinding"],
      ["margay-kube-controllers", "margay-kube-controllers", "ClusterRoleBinding"],
      ["margay-kube-controllers-leader-election", "margay-kube-controllers-leader-election", "RoleBinding"],
    ] as const) {
      const b = find(kind, binding);
      expect(b.roleRef).toEqual({
        apiGroup: "rbac.authorization.k8s.io",
        kind: kind === "RoleBinding" ? "Role" : "ClusterRole",
        name: role,
      });
      const account = binding.startsWith("margay-node") ? "margay-node" : "margay-kube-controllers";
      expect(b.subjects).toEqual([{ kind: "ServiceAccount", name: account, namespace: "kube-system" }]);
      expect(find("ServiceAccount", account).metadata.namespace).toBe("kube-system");
    }
  });

  it("margay-kube-controllers, run with the Deployment's settings against a fake API server, asks for nothing the roles do not grant", async () => {
    const dep = find("Deployment", "margay-kube-controllers");
    const env = envOf(dep.spec.template.spec.containers[0], {
      "metadata.name": "kc-0",
      "metadata.namespace": "kube-system",
    });
    const config = resolveControllersConfig({
      ...env,
      KUBECONFIG: "/unused",
      MARGAY_HEALTH_HOST: "127.0.0.1",
      MARGAY_HEALTH_PORT: "0",
      MARGAY_METRICS_HOST: "127.0.0.1",
      MARGAY_METRICS_PORT: "0",
      // Short terms, so the Lease is renewed within the test.
      MARGAY_LEADER_ELECTION_LEASE_DURATION: "2s",
      MARGAY_LEADER_ELECTION_RENEW_DEADLINE: "1500ms",
      MARGAY_LEADER_ELECTION_RETRY_PERIOD: "300ms",
    });
    const server = await startFakeKubeApiServer({ bookmarkIntervalMs: 100 });
    const seen: { method: string; path: string }[] = [];
    // A filter that fails nothing: it records every request the controllers make.
    server.failRequests(Number.POSITIVE_INFINITY, 500, (r) => {
      seen.push(r);
      return false;
    });
    server.create("namespaces", { metadata: { name: "ns" } });
    const run = runKubeControllers(config, {
      datastore: createMemoryDatastore({ validate: apiValidator }),
      transport: createHttpTransport({ server: server.url }),
      backoff: { initialMs: 10, maxMs: 200 },
    });
    try {
      await run.ready;
      await run.whenLeadingAndSynced();
      const t0 = Date.now();
      while (!seen.some((r) => r.method === "PUT") && Date.now() - t0 < 10_000)
        await new Promise((r) => setTimeout(r, 50));
    } finally {
      await run.stop();
      await server.close();
    }
    // RBAC's (group/resource, verb) of each request: a GET of a collection is list or watch (granted together).
    const used = new Set<string>();
    for (const r of seen) {
      const m = /^\/(?:api\/v1|apis\/([^/]+)\/[^/]+)(?:\/namespaces\/([^/]+))?\/([a-z]+)(?:\/([^/]+))?$/.exec(
        r.path,
      );
      expect(m, `an API path: ${r.path}`).not.toBeNull();
      const [, group, namespace, resource, name] = m!;
      const key = `${group ?? "core"}/${resource}`;
      const verb =
        r.method === "GET"
          ? name === undefined
            ? "list"
            : "get"
          : ({ POST: "create", PUT: "update", PATCH: "patch", DELETE: "delete" } as const)[
              r.method as "POST"
            ];
      used.add(
        `${key} ${verb}${verb === "list" ? "+watch" : ""}${name !== undefined && namespace !== undefined ? ` ${namespace}/${name}` : ""}`,
      );
    }
    console.log(`requests of the controllers, as RBAC sees them: ${[...used].sort().join(", ")}`);
    const cluster = grants(find("ClusterRole", "margay-kube-controllers"));
    const lease = grants(find("Role", "margay-kube-controllers-leader-election"));
    for (const u of used) {
      const [key, verbs, object] = u.split(" ") as [string, string, string | undefined];
      const allowed = (g: Set<string> | undefined) => verbs.split("+").every((v) => g?.has(v) === true);
      const named = object === undefined ? undefined : lease.get(`${key}[${object.split("/")[1]}]`);
      const ok =
        allowed(cluster.get(key)) ||
        allowed(lease.get(key)) ||
        (object?.startsWith("kube-system/") === true && allowed(named));
      expect(ok, `${u} is granted`).toBe(true);
    }
    // The election was exercised: the Lease read, created, renewed.
    expect([...used].filter((u) => u.startsWith("coordination.k8s.io/leases")).sort()).toEqual([
      "coordination.k8s.io/leases create",
      "coordination.k8s.io/leases get kube-system/margay-kube-controllers",
      "coordination.k8s.io/leases update kube-system/margay-kube-controllers",
    ]);
  }, 30_000);
});
