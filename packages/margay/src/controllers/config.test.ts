import { describe, expect, it } from "vitest";
import {
  CONTROLLER_NAMES,
  type ControllersConfigError,
  isControllersConfigError,
  parseEnabledControllers,
  resolveControllersConfig,
} from "./config.js";

const base = { ETCD_ENDPOINTS: "http://127.0.0.1:2379", KUBECONFIG: "/etc/kube/config" };
const resolve = (env: Record<string, string>) =>
  resolveControllersConfig({ ...base, ...env }, { hostname: "host-a", randomSuffix: () => "r4nd" });

function failure(env: Record<string, string | undefined>): ControllersConfigError {
  try {
    resolveControllersConfig(env as Record<string, string>, { hostname: "h" });
  } catch (e) {
    if (isControllersConfigError(e)) return e;
    throw e;
  }
  throw new Error("resolved");
}

describe("resolveControllersConfig", () => {
  it("defaults: every controller, etcd from ETCD_*, client-go's lease timings, Calico's metrics port", () => {
    const c = resolve({});
    expect(c.enabledControllers).toEqual([...CONTROLLER_NAMES]);
    expect(c.kubeApi).toEqual({ kind: "kubeconfig", path: "/etc/kube/config", paths: ["/etc/kube/config"] });
    expect(c.datastore).toMatchObject({ type: "etcd", endpoints: ["http://127.0.0.1:2379"] });
    expect(c.logLevel).toBe("info");
    expect(c.health).toEqual({ enabled: true, host: "0.0.0.0", port: 9097 });
    expect(c.metrics).toEqual({ enabled: true, host: "0.0.0.0", port: 9094 });
    expect(c.leaderElection).toEqual({
      enabled: true,
      namespace: "kube-system",
      name: "margay-kube-controllers",
      identity: "host-a_r4nd",
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
    });
    expect(c.ipamGc).toEqual({ gracePeriodMs: 15 * 60_000, dryRunPeriodMs: 5 * 60_000 });
    expect(c.reconcilerPeriodMs).toBe(5 * 60_000);
  });

  it("reads every variable", () => {
    const c = resolve({
      ENABLED_CONTROLLERS: " WorkloadEndpoint, policy,policy ",
      DATASTORE_TYPE: "etcd",
      MARGAY_ETCD_PREFIX: "/c1",
      LOG_LEVEL: "Warning",
      MARGAY_HEALTH_ENABLED: "off",
      MARGAY_HEALTH_PORT: "0",
      MARGAY_METRICS_HOST: "127.0.0.1",
      MARGAY_METRICS_PORT: "19094",
      MARGAY_LEADER_ELECTION: "off",
      POD_NAMESPACE: "margay-system",
      MARGAY_LEADER_ELECTION_NAME: "lease-x",
      MARGAY_LEADER_ELECTION_LEASE_DURATION: "2s",
      MARGAY_LEADER_ELECTION_RENEW_DEADLINE: "1500ms",
      MARGAY_LEADER_ELECTION_RETRY_PERIOD: "300ms",
      POD_NAME: "kc-0",
      MARGAY_IPAM_GC_GRACE_PERIOD: "1m30s",
      MARGAY_IPAM_GC_DRY_RUN_PERIOD: "0",
      MARGAY_RECONCILER_PERIOD: "30s",
    });
    expect(c.enabledControllers).toEqual(["policy", "workloadendpoint"]);
    expect(c.datastore).toMatchObject({ prefix: "/c1" });
    expect(c.logLevel).toBe("warn");
    expect(c.health).toEqual({ enabled: false, host: "0.0.0.0", port: 0 });
    expect(c.metrics).toEqual({ enabled: true, host: "127.0.0.1", port: 19094 });
    expect(c.leaderElection).toEqual({
      enabled: false,
      namespace: "margay-system",
      name: "lease-x",
      identity: "kc-0",
      leaseDurationMs: 2000,
      renewDeadlineMs: 1500,
      retryPeriodMs: 300,
    });
    expect(c.ipamGc).toEqual({ gracePeriodMs: 90_000, dryRunPeriodMs: 0 });
    expect(c.reconcilerPeriodMs).toBe(30_000);
    expect(
      resolve({ MARGAY_LEADER_ELECTION_NAMESPACE: "ns2", POD_NAMESPACE: "ns1" }).leaderElection.namespace,
    ).toBe("ns2");
  });

  it("KUBECONFIG as a list: every file, in order (merged when loaded, as kubectl)", () => {
    const c = resolveControllersConfig({ ...base, KUBECONFIG: "/etc/kube/a::/home/u/.kube/config:" });
    expect(c.kubeApi).toEqual({
      kind: "kubeconfig",
      path: "/etc/kube/a",
      paths: ["/etc/kube/a", "/home/u/.kube/config"],
    });
  });

  it("in a pod without KUBECONFIG: the in-cluster service address", () => {
    const c = resolveControllersConfig({
      ETCD_ENDPOINTS: "http://e:2379",
      KUBERNETES_SERVICE_HOST: "10.96.0.1",
      KUBERNETES_SERVICE_PORT: "443",
    });
    expect(c.kubeApi).toEqual({ kind: "in-cluster", host: "10.96.0.1", port: "443" });
  });

  it.each([
    [{ ...base, ENABLED_CONTROLLERS: "node,bogus" }, "env:ENABLED_CONTROLLERS", "invalid-value"],
    [{ ...base, ENABLED_CONTROLLERS: " , " }, "env:ENABLED_CONTROLLERS", "invalid-value"],
    [{ ...base, LOG_LEVEL: "verbose" }, "env:LOG_LEVEL", "invalid-value"],
    [{ ...base, DATASTORE_TYPE: "kubernetes" }, "env:DATASTORE_TYPE", "invalid-value"],
    [{ ...base, DATASTORE_TYPE: "memory" }, "env:DATASTORE_TYPE", "invalid-value"],
    [{ KUBECONFIG: "/k" }, "env:ETCD_ENDPOINTS", "invalid-value"],
    [{ ...base, ETCD_ENDPOINTS: "ftp://x" }, "env:ETCD_ENDPOINTS", "invalid-value"],
    [{ ...base, MARGAY_ETCD_PREFIX: "nope" }, "env:MARGAY_ETCD_PREFIX", "invalid-value"],
    [{ ETCD_ENDPOINTS: "http://e:2379" }, "env:KUBECONFIG", "conflicting-settings"],
    [{ ...base, KUBECONFIG: "relative/config" }, "env:KUBECONFIG", "invalid-value"],
    [{ ...base, KUBECONFIG: "/etc/kube/a:relative/b" }, "env:KUBECONFIG", "invalid-value"],
    [{ ...base, MARGAY_METRICS_PORT: "70000" }, "env:MARGAY_METRICS_PORT", "invalid-value"],
    [{ ...base, MARGAY_HEALTH_ENABLED: "maybe" }, "env:MARGAY_HEALTH_ENABLED", "invalid-value"],
    [{ ...base, MARGAY_LEADER_ELECTION: "sometimes" }, "env:MARGAY_LEADER_ELECTION", "invalid-value"],
    [
      { ...base, MARGAY_LEADER_ELECTION_NAME: "Not_A_Name" },
      "env:MARGAY_LEADER_ELECTION_NAME",
      "invalid-value",
    ],
    [
      { ...base, MARGAY_LEADER_ELECTION_LEASE_DURATION: "15" },
      "env:MARGAY_LEADER_ELECTION_LEASE_DURATION",
      "invalid-value",
    ],
    [
      { ...base, MARGAY_LEADER_ELECTION_RENEW_DEADLINE: "20s" },
      "env:MARGAY_LEADER_ELECTION_RENEW_DEADLINE",
      "conflicting-settings",
    ],
    [
      { ...base, MARGAY_LEADER_ELECTION_RETRY_PERIOD: "9s" },
      "env:MARGAY_LEADER_ELECTION_RETRY_PERIOD",
      "conflicting-settings",
    ],
    [{ ...base, MARGAY_IPAM_GC_GRACE_PERIOD: "-1s" }, "env:MARGAY_IPAM_GC_GRACE_PERIOD", "invalid-value"],
  ] as const)("%o → %s (%s)", (env, field, code) => {
    const e = failure(env);
    expect(e.code).toBe(code);
    expect(e.details.field).toBe(field);
    expect(e.retryable).toBe(false);
    expect(e.message.startsWith(field)).toBe(true);
  });

  it("names the bad value, never a password", () => {
    const e = failure({ ...base, ETCD_PASSWORD: "s3cret" });
    expect(e.message).not.toContain("s3cret");
    expect(e.details.field).toBe("env:ETCD_PASSWORD");
    expect(failure({ ...base, LOG_LEVEL: "loud" }).details.value).toBe("loud");
  });
});

describe("parseEnabledControllers", () => {
  it("keeps the canonical order and drops repeats", () => {
    expect(parseEnabledControllers("node,namespace,node")).toEqual(["node", "namespace"]);
    expect(parseEnabledControllers("serviceaccount,node")).toEqual(["node", "serviceaccount"]);
  });
});
