import { readFileSync } from "node:fs";
import { AGENT_CONFIGURATION_DEFAULTS, API_VERSION, checkResource } from "@margay/api";
import { describe, expect, it } from "vitest";
import { AGENT_CONFIGURATION_FIELDS, applyAgentConfiguration } from "./agent-configuration.js";
import { isAgentConfigError } from "./errors.js";
import { resolveBootstrapConfig } from "./resolve.js";
import { AGENT_CONFIG_SCHEMA, SETTING_NAMES } from "./schema.js";

/** The field list the api's kind definition validates against (its `validateSpec` allow-list). */
function apiFieldList(): string[] {
  const src = readFileSync(new URL("../../../../api/src/resources/agent-config.ts", import.meta.url), "utf8");
  const m = /validateSpec\([^)]*\)\s*{\s*const o = object\(v, path, ctx, \[([^\]]*)\]/.exec(src);
  if (m === null) throw new Error("cannot find the AgentConfiguration field list in the api source");
  return [...m[1]!.matchAll(/"([A-Za-z0-9]+)"/g)].map((x) => x[1]!);
}

/** A resource as the datastore holds it (typed loosely: tests also build invalid ones). */
const resource = (name: string, spec: Record<string, unknown>): never =>
  ({
    apiVersion: API_VERSION,
    kind: "AgentConfiguration",
    metadata: { name },
    spec,
  }) as never;

const boot = (env: Record<string, string> = {}, argv: string[] = []) =>
  resolveBootstrapConfig({ env, argv, hostname: "node1" });

describe("AGENT_CONFIGURATION_FIELDS", () => {
  it("has a rule for exactly the fields the api models", () => {
    const api = apiFieldList();
    expect(api.length).toBeGreaterThan(20);
    expect(Object.keys(AGENT_CONFIGURATION_FIELDS).sort()).toEqual([...api].sort());
  });

  it("every field of the table is one the api accepts, and a field it does not is refused", () => {
    for (const field of Object.keys(AGENT_CONFIGURATION_FIELDS)) {
      const r = checkResource(resource("default", { [field]: Symbol("x") }), "AgentConfiguration");
      const unknown = r.ok ? [] : r.issues.filter((i) => i.message === "unknown field");
      expect(unknown, field).toEqual([]);
    }
    const bogus = checkResource(resource("default", { vxlanPrt: 1 }), "AgentConfiguration");
    expect(bogus.ok).toBe(false);
  });

  it("covers every field with an api default, and honoured fields match the schema's mapping both ways", () => {
    for (const field of Object.keys(AGENT_CONFIGURATION_DEFAULTS))
      expect(AGENT_CONFIGURATION_FIELDS, field).toHaveProperty(field);
    for (const [field, rule] of Object.entries(AGENT_CONFIGURATION_FIELDS))
      if (rule.rule === "honoured")
        expect(AGENT_CONFIG_SCHEMA[rule.setting].resource?.field, field).toBe(field);
    for (const n of SETTING_NAMES) {
      const r = AGENT_CONFIG_SCHEMA[n].resource;
      if (r !== undefined)
        expect(AGENT_CONFIGURATION_FIELDS[r.field], n).toEqual({ rule: "honoured", setting: n });
    }
  });

  it("built-in defaults agree with the api's where both define one", () => {
    const { config } = boot();
    expect(config.vxlan.port).toBe(AGENT_CONFIGURATION_DEFAULTS.vxlanPort);
    expect(config.vxlan.vni).toBe(AGENT_CONFIGURATION_DEFAULTS.vxlanVNI);
    expect(config.interfacePrefixes).toEqual([AGENT_CONFIGURATION_DEFAULTS.interfacePrefix]);
    expect(config.dataplane.endpointToHostAction).toBe(
      AGENT_CONFIGURATION_DEFAULTS.defaultEndpointToHostAction,
    );
    expect(config.failsafe?.inbound.length).toBe(
      AGENT_CONFIGURATION_DEFAULTS.failsafeInboundHostPorts.length,
    );
  });
});

describe("applyAgentConfiguration", () => {
  it("precedence: flag > env > node.<name> > default > built-in", () => {
    const { config, sources } = boot({ MARGAY_HEALTH_PORT: "2000" }, ["--vxlan-port", "1000"]);
    const global = resource("default", {
      vxlanPort: 3000,
      healthPort: 3001,
      vxlanVNI: 3002,
      deviceRouteProtocol: 33,
    });
    const node = resource("node.node1", { vxlanPort: 4000, healthPort: 4001, vxlanVNI: 4002 });
    const out = applyAgentConfiguration(config, sources, { global, node });
    expect(out.config.vxlan).toMatchObject({ port: 1000, vni: 4002 });
    expect(out.config.health.port).toBe(2000);
    expect(out.config.dataplane.routeProtocol).toBe(33);
    expect(out.config.dataplane.nftTable).toBe("margay");
    expect([
      out.sources.vxlanPort,
      out.sources.healthPort,
      out.sources.vxlanVni,
      out.sources.routeProtocol,
      out.sources.nftTable,
    ]).toEqual(["flag", "env", "node-resource", "global-resource", "default"]);
    expect(out.warnings).toEqual([]);
  });

  it("precedence matrix: every combination of the four sources, the highest present wins", () => {
    const levels = [
      { source: "flag", port: 1001 },
      { source: "env", port: 1002 },
      { source: "node-resource", port: 1003 },
      { source: "global-resource", port: 1004 },
    ] as const;
    for (let mask = 0; mask < 16; mask++) {
      const on = (i: number) => (mask & (1 << i)) !== 0;
      const { config, sources } = boot(
        on(1) ? { MARGAY_VXLAN_PORT: "1002" } : {},
        on(0) ? ["--vxlan-port", "1001"] : [],
      );
      const out = applyAgentConfiguration(config, sources, {
        node: on(2) ? { vxlanPort: 1003 } : undefined,
        global: on(3) ? { vxlanPort: 1004 } : undefined,
      });
      const winner = levels.find((_, i) => on(i));
      expect([out.config.vxlan.port, out.sources.vxlanPort], `mask ${mask}`).toEqual(
        winner === undefined ? [4789, "default"] : [winner.port, winner.source],
      );
    }
  });

  it("maps every honoured field, Go durations and severities included", () => {
    const { config, sources } = boot();
    const spec = {
      logSeverityScreen: "Warning",
      interfacePrefix: "mgy,cali",
      defaultEndpointToHostAction: "Accept",
      vxlanPort: 4790,
      vxlanVNI: 10,
      vxlanMTU: 1410,
      failsafeInboundHostPorts: [{ protocol: "TCP", port: 22, net: "10.0.0.0/8" }],
      failsafeOutboundHostPorts: [],
      dataplaneRefreshInterval: "2m",
      reportingInterval: "1m30s",
      deviceRouteProtocol: 90,
      healthEnabled: false,
      healthHost: "0.0.0.0",
      healthPort: 19099,
      prometheusMetricsEnabled: true,
      prometheusMetricsPort: 19091,
    };
    expect(Object.keys(spec).sort()).toEqual(
      Object.entries(AGENT_CONFIGURATION_FIELDS)
        .filter(([, r]) => r.rule === "honoured")
        .map(([f]) => f)
        .sort(),
    );
    const out = applyAgentConfiguration(config, sources, { global: spec as never });
    expect(out.config).toMatchObject({
      logLevel: "warn",
      interfacePrefixes: ["mgy", "cali"],
      mtu: 1410,
      vxlan: { port: 4790, vni: 10 },
      failsafe: { inbound: [{ protocol: "tcp", port: 22, net: "10.0.0.0/8" }], outbound: [] },
      statusIntervalMs: 90_000,
      dataplane: { reconcileIntervalMs: 120_000, routeProtocol: 90, endpointToHostAction: "Accept" },
      health: { enabled: false, host: "0.0.0.0", port: 19099 },
      metrics: { enabled: true, port: 19091 },
    });
    expect(out.warnings).toEqual([]);
  });

  it("ignored fields warn, naming the resource and field, unless left at a harmless value", () => {
    const { config, sources } = boot();
    const out = applyAgentConfiguration(config, sources, {
      global: resource("default", {
        ipipEnabled: true,
        routeRefreshInterval: AGENT_CONFIGURATION_DEFAULTS.routeRefreshInterval,
        removeExternalRoutes: false,
      }),
      node: resource("node.node1", {
        vxlanMTUV6: 1400,
        removeExternalRoutes: true,
        routeRefreshInterval: "10s",
      }),
    });
    expect(out.warnings.map((w) => w.field).sort()).toEqual([
      "AgentConfiguration default spec.ipipEnabled",
      "AgentConfiguration node.node1 spec.removeExternalRoutes",
      "AgentConfiguration node.node1 spec.routeRefreshInterval",
      "AgentConfiguration node.node1 spec.vxlanMTUV6",
    ]);
    expect(out.warnings.every((w) => w.code === "ignored-field")).toBe(true);
    expect(out.warnings.find((w) => w.field.endsWith("removeExternalRoutes"))!.message).toContain(
      "deviceRouteProtocol",
    );
  });

  it("rejected fields stop the agent with invalid-resource naming the field", () => {
    const { config, sources } = boot();
    const nat = (() => {
      try {
        applyAgentConfiguration(config, sources, { node: { natOutgoingAddress: "10.0.0.1" } });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(isAgentConfigError(nat) && nat.code).toBe("invalid-resource");
    expect((nat as Error).message).toContain("AgentConfiguration node.node1 spec.natOutgoingAddress");
    expect(() =>
      applyAgentConfiguration(config, sources, { global: { routeSource: "WorkloadIPs" } }),
    ).toThrow(/spec.routeSource/);
    // The value margay-node implements is accepted.
    expect(
      applyAgentConfiguration(config, sources, { global: { routeSource: "CalicoIPAM" } }).warnings,
    ).toEqual([]);
  });

  it("an invalid resource is invalid-resource with the api's issues", () => {
    const { config, sources } = boot();
    try {
      applyAgentConfiguration(config, sources, {
        global: resource("default", { vxlanPort: 0, bogus: 1 }) as never,
      });
      expect.unreachable();
    } catch (e) {
      expect(isAgentConfigError(e) && e.code).toBe("invalid-resource");
      expect((e as Error).message).toMatch(/vxlanPort/);
      expect((e as Error).message).toMatch(/bogus: unknown field/);
    }
  });

  it("the merged configuration is checked again (a resource port clashing with an env port)", () => {
    const { config, sources } = boot({ MARGAY_METRICS_ENABLED: "true", MARGAY_METRICS_HOST: "localhost" });
    expect(() =>
      applyAgentConfiguration(config, sources, { global: { prometheusMetricsPort: 9099 } }),
    ).toThrow(/cannot both listen/);
  });

  it("is idempotent and keeps non-resource settings (etcd datastore, pools, addresses)", () => {
    const { config, sources } = boot({
      ETCD_ENDPOINTS: "https://e:2379",
      ETCD_CA_CERT_FILE: "/ca.crt",
      IP: "10.0.0.5/24",
      MARGAY_IPV4POOL_VXLAN: "CrossSubnet",
    });
    const once = applyAgentConfiguration(config, sources, { global: { vxlanPort: 4790 } });
    const twice = applyAgentConfiguration(once.config, once.sources, { global: { vxlanPort: 4790 } });
    expect(twice.config).toEqual(once.config);
    expect(once.config.datastore).toEqual(config.datastore);
    expect(once.config.defaultPools).toEqual(config.defaultPools);
    expect(once.config.ipv4).toEqual(config.ipv4);
  });
});
