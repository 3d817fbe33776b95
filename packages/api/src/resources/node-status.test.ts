import { describe, expect, it } from "vitest";
import { checkResource, isNodeStatus, toJSON, validateResource, withDefaults } from "../index.js";
import { validExamples } from "../validation/fixtures.js";

// biome-ignore lint/suspicious/noExplicitAny: test edits poke at arbitrary JSON paths of the example.
type Json = Record<string, any>;
const example = (): Json => structuredClone(validExamples.NodeStatus) as Json;
const issues = (v: unknown) => {
  const r = checkResource(v);
  return r.ok ? [] : r.issues.map((i) => `${i.path}: ${i.message}`);
};

describe("NodeStatus", () => {
  it("keeps a valid status through validation, defaults and JSON", () => {
    const r = validateResource(example(), "NodeStatus");
    expect(isNodeStatus(r)).toBe(true);
    expect(r.status?.bgp?.peers[0]?.state).toBe("Active");
    expect(r.status?.agent?.components.map((c) => c.name)).toEqual(["datastore", "bgp"]);
    expect(withDefaults(r)).toEqual(r);
    expect(validateResource(JSON.parse(toJSON(r)))).toEqual(r);
  });

  it("is valid without a status (not yet reported)", () => {
    const e = example();
    delete e.status;
    const r = validateResource(e, "NodeStatus");
    expect(r.status).toBeUndefined();
    expect("status" in r).toBe(false);
  });

  it("canonicalises the peer address", () => {
    const e = example();
    e.status.bgp.peers[0].address = "fd00:0:0::5";
    expect(validateResource(e, "NodeStatus").status?.bgp?.peers[0]?.address).toBe("fd00::5");
  });

  it("rejects a session state that is not an RFC 4271 name", () => {
    const e = example();
    e.status.bgp.peers[0].state = "Up";
    expect(issues(e)).toEqual([
      expect.stringMatching(
        /^status\.bgp\.peers\[0\]\.state: must be one of "Idle", .*"Established", got "Up"$/,
      ),
    ]);
  });

  it("rejects a bad time, a negative route count, a bad MTU and unknown fields, each by path", () => {
    const e = example();
    e.status.updatedAt = "yesterday";
    e.status.bgp.peers[0].routesImported = -1;
    e.status.mtu = 10;
    e.status.dataplane.extra = 1;
    expect(issues(e)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^status\.updatedAt: expected an RFC 3339 time/),
        expect.stringMatching(/^status\.bgp\.peers\[0\]\.routesImported: must be between 0 and/),
        "status.mtu: must be between 68 and 65535, got 10",
        "status.dataplane.extra: unknown field",
      ]),
    );
    expect(issues(e)).toHaveLength(4);
  });

  it("keeps the dataplane's foreign rules and rejects a malformed one by path", () => {
    const e = example();
    const chain = {
      family: "ip",
      table: "kube-proxy",
      chain: "filter-forward",
      hook: "forward",
      priority: -110,
      why: "1 rule that drops",
      owner: "kube-proxy (nftables mode)",
    };
    e.status.dataplane.foreignRules = { count: 1, chains: [chain] };
    expect(validateResource(e, "NodeStatus").status?.dataplane?.foreignRules).toEqual({
      count: 1,
      chains: [chain],
    });
    e.status.dataplane.foreignRules = {
      count: 1,
      chains: [{ ...chain, priority: 1.5, table: "", verdict: "x" }],
    };
    expect(issues(e)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^status\.dataplane\.foreignRules\.chains\[0\]\.priority: /),
        expect.stringMatching(/^status\.dataplane\.foreignRules\.chains\[0\]\.table: /),
        "status.dataplane.foreignRules.chains[0].verdict: unknown field",
      ]),
    );
  });

  it("keeps the dataplane's unresolved routes and rejects a malformed one by path", () => {
    const e = example();
    e.status.dataplane.unresolvedRoutes = {
      count: 3,
      routes: [{ dst: "10.65.2.0/26", reason: "no-vtep", node: "node-2" }],
    };
    expect(validateResource(e, "NodeStatus").status?.dataplane?.unresolvedRoutes).toEqual({
      count: 3,
      routes: [{ dst: "10.65.2.0/26", reason: "no-vtep", node: "node-2" }],
    });
    e.status.dataplane.unresolvedRoutes = { count: -1, routes: [{ dst: "", why: "x" }] };
    expect(issues(e)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^status\.dataplane\.unresolvedRoutes\.count: must be between 0 and/),
        "status.dataplane.unresolvedRoutes.routes[0].why: unknown field",
      ]),
    );
  });

  it("requires spec.node to name the resource's own node", () => {
    const e = example();
    e.spec.node = "node-2";
    expect(issues(e)).toEqual(['spec.node: must equal metadata.name ("node-1")']);
    e.spec = {};
    expect(issues(e)).toEqual(["spec.node: required field is missing"]);
  });

  it("is cluster-scoped", () => {
    const e = example();
    e.metadata.namespace = "default";
    expect(issues(e)).toEqual(["metadata.namespace: must not be set on a cluster-scoped kind"]);
  });

  it("other kinds still reject a status field", () => {
    const pool = { ...structuredClone(validExamples.IPPool), status: {} };
    expect(issues(pool)).toEqual(["status: unknown field"]);
  });

  it("a component missing its name is reported, not dropped silently", () => {
    const e = example();
    delete e.status.agent.components[0].name;
    expect(issues(e)).toEqual(["status.agent.components[0].name: required field is missing"]);
  });
});
