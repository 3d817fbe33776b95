import type { PolicyUpdate } from "@margay/dataplane-contract";
import { afterEach, describe, expect, it } from "vitest";
import type { DataplaneDriver, DataplaneSnapshot } from "../driver.js";
import { isDataplaneError } from "../errors.js";
import type { DataplaneUpdate } from "../stream.js";
import { CONFORMANCE_FIXTURE } from "./fixture.js";
import { renderedRule } from "./rendered-rule.js";

/** A driver under test and how to dispose of its environment. */
export interface DataplaneConformanceHarness {
  /** The driver, created for {@link CONFORMANCE_FIXTURE.nodeName}. */
  readonly driver: DataplaneDriver;
  /** Releases the environment (namespaces, processes); the suite closes the driver first. */
  readonly cleanup?: (() => Promise<void>) | undefined;
}

const [if0, if1] = CONFORMANCE_FIXTURE.workloadIfNames as readonly [string, string];

const HOSTS: DataplaneUpdate[] = [
  { kind: "host-update", node: "node-a", addresses: ["10.99.0.1/24"] },
  { kind: "host-update", node: "node-b", addresses: ["10.99.0.2/24"] },
  { kind: "host-update", node: "node-c", addresses: ["10.99.0.3/24"] },
];
const VTEPS: DataplaneUpdate[] = [
  {
    kind: "vtep-update",
    node: "node-a",
    tunnelAddress: "10.97.0.1",
    mac: "02:00:00:00:00:0a",
    underlayAddress: "10.99.0.1",
  },
  {
    kind: "vtep-update",
    node: "node-b",
    tunnelAddress: "10.97.1.1",
    mac: "02:00:00:00:00:0b",
    underlayAddress: "10.99.0.2",
  },
];
const POOLS: DataplaneUpdate[] = [
  { kind: "pool-update", cidr: "10.98.0.0/16", encapsulation: "none", crossSubnet: false, natOutgoing: true },
  {
    kind: "pool-update",
    cidr: "10.97.0.0/16",
    encapsulation: "vxlan",
    crossSubnet: false,
    natOutgoing: false,
  },
];
const ROUTES: DataplaneUpdate[] = [
  { kind: "route-update", dst: "10.98.0.0/26", type: "local-block" },
  { kind: "route-update", dst: "10.98.0.2/32", type: "local-workload", ifname: if0 },
  { kind: "route-update", dst: "10.98.1.0/26", type: "remote-block", nodes: ["node-b"] },
  { kind: "route-update", dst: "10.98.2.0/26", type: "remote-block", nodes: ["node-c", "node-b"] },
  { kind: "route-update", dst: "10.97.1.0/26", type: "remote-block", nodes: ["node-b"] },
];
const FULL_STATE = [...HOSTS, ...VTEPS, ...POOLS, ...ROUTES];

const EXPECTED_ROUTES = [
  {
    dst: "10.97.1.0/26",
    type: "unicast",
    nextHops: [{ via: "10.97.1.1", dev: "vxlan.margay", onlink: true }],
  },
  { dst: "10.98.0.0/26", type: "blackhole", nextHops: [] },
  { dst: "10.98.0.2/32", type: "unicast", nextHops: [{ dev: if0, onlink: false }] },
  { dst: "10.98.1.0/26", type: "unicast", nextHops: [{ via: "10.99.0.2", onlink: false }] },
  {
    dst: "10.98.2.0/26",
    type: "unicast",
    nextHops: [
      { via: "10.99.0.2", onlink: false },
      { via: "10.99.0.3", onlink: false },
    ],
  },
];

const rule = (action: "allow" | "deny", srcIpSetIds: string[] = []) =>
  renderedRule({
    action,
    ruleId: `r-${action}`,
    srcIpSetIds,
    dstPorts: [{ first: 80, last: 80 }],
    protocol: 6,
  });

const POLICY_STATE: PolicyUpdate[] = [
  { kind: "ip-set-update", id: "s:web", type: "net", members: ["10.98.0.2/32", "10.98.1.7/32"] },
  {
    kind: "active-policy-update",
    id: "default/allow-web",
    tier: "default",
    name: "allow-web",
    inbound: [rule("allow", ["s:web"])],
    outbound: [],
    flags: { untracked: false, preDnat: false, applyOnForward: false },
  },
  {
    kind: "workload-endpoint-update",
    id: "default/web-0",
    ifname: if0,
    ipNetworks: ["10.98.0.2/32"],
    tiers: {
      ingress: [{ tier: "default", defaultAction: "deny", policyIds: ["default/allow-web"] }],
      egress: [],
    },
    profileIds: [],
  },
];

/**
 * The `DataplaneDriver` conformance suite: run it against every implementation (in-process, over the
 * protocol, a vendor's). `factory` is called once per test and must return a fresh driver.
 */
export function describeDataplaneConformance(
  name: string,
  factory: () => Promise<DataplaneConformanceHarness>,
): void {
  describe(`DataplaneDriver conformance: ${name}`, () => {
    let current: DataplaneConformanceHarness | undefined;
    const open = async () => {
      current = await factory();
      return current.driver;
    };
    afterEach(async () => {
      const h = current;
      current = undefined;
      if (h === undefined) return;
      await h.driver.close().catch(() => undefined);
      await h.cleanup?.();
    });

    it("programs nothing before the first in-sync", async () => {
      const d = await open();
      const r = await d.apply([...FULL_STATE, ...POLICY_STATE]);
      expect(r.inSync).toBe(false);
      expect(r.programmed).toBe(false);
      const s = await d.snapshot();
      expect(s).toMatchObject({
        inSync: false,
        routes: [],
        vteps: [],
        ipSets: [],
        policies: [],
        endpoints: [],
      });
    });

    it("programs the whole state at in-sync: flat, VXLAN, blackhole, workload and ECMP routes", async () => {
      const d = await open();
      await d.apply(FULL_STATE);
      const r = await d.apply([{ kind: "in-sync" }]);
      expect(r).toMatchObject({ inSync: true, programmed: true });
      const s = await d.snapshot();
      expect(s.inSync).toBe(true);
      expect(s.routes).toEqual(EXPECTED_ROUTES);
      expect(s.vteps).toEqual([{ address: "10.97.1.1", mac: "02:00:00:00:00:0b", underlay: "10.99.0.2" }]);
      expect(s.natPools).toEqual(["10.98.0.0/16"]);
    });

    it("applies later batches immediately, in order", async () => {
      const d = await open();
      await d.apply([...FULL_STATE, { kind: "in-sync" }]);
      await d.apply([
        { kind: "route-remove", dst: "10.98.1.0/26" },
        { kind: "route-update", dst: "10.98.0.3/32", type: "local-workload", ifname: if1 },
        { kind: "route-update", dst: "10.98.0.3/32", type: "local-workload", ifname: if0 },
        { kind: "route-update", dst: "10.98.2.0/26", type: "remote-block", nodes: ["node-c"] },
      ]);
      const s = await d.snapshot();
      expect(s.routes.map((x) => x.dst)).toEqual([
        "10.97.1.0/26",
        "10.98.0.0/26",
        "10.98.0.2/32",
        "10.98.0.3/32",
        "10.98.2.0/26",
      ]);
      expect(s.routes.find((x) => x.dst === "10.98.0.3/32")?.nextHops).toEqual([{ dev: if0, onlink: false }]);
      expect(s.routes.find((x) => x.dst === "10.98.2.0/26")?.nextHops).toEqual([
        { via: "10.99.0.3", onlink: false },
      ]);
    });

    it("treats removes of unknown keys as no-ops and re-applying a state as a no-op", async () => {
      const d = await open();
      await d.apply([...FULL_STATE, { kind: "in-sync" }]);
      const before = await d.snapshot();
      await d.apply([
        { kind: "route-remove", dst: "10.123.0.0/26" },
        { kind: "vtep-remove", node: "node-z" },
      ]);
      await d.apply(FULL_STATE);
      expect(await d.snapshot()).toEqual(before);
    });

    it("rejects an invalid batch whole with invalid-update", async () => {
      const d = await open();
      await d.apply([...FULL_STATE, { kind: "in-sync" }]);
      const before = await d.snapshot();
      const bad: DataplaneUpdate[] = [
        { kind: "route-update", dst: "10.98.0.9/32", type: "local-workload", ifname: if1 },
        { kind: "route-update", dst: "10.98.0.300/32", type: "local-block" },
      ];
      const err = await d.apply(bad).catch((e: unknown) => e);
      expect(isDataplaneError(err, "invalid-update")).toBe(true);
      expect((err as { details: { index?: number } }).details.index).toBe(1);
      const unknownKind = await d
        .apply([{ kind: "teleport" } as unknown as DataplaneUpdate])
        .catch((e: unknown) => e);
      expect(isDataplaneError(unknownKind, "invalid-update")).toBe(true);
      expect(await d.snapshot()).toEqual(before);
    });

    it("reports unresolvable next hops as warnings and installs nothing for them", async () => {
      const d = await open();
      const r = await d.apply([
        ...FULL_STATE,
        { kind: "route-update", dst: "10.98.5.0/26", type: "remote-block", nodes: ["node-unknown"] },
        { kind: "in-sync" },
      ]);
      expect(r.warnings.some((w) => w.includes("node-unknown"))).toBe(true);
      expect((await d.snapshot()).routes.some((x) => x.dst === "10.98.5.0/26")).toBe(false);
    });

    it("holds IP sets, policies and endpoints; applies set deltas", async () => {
      const d = await open();
      await d.apply([...FULL_STATE, ...POLICY_STATE, { kind: "in-sync" }]);
      let s: DataplaneSnapshot = await d.snapshot();
      expect(s.ipSets).toEqual([{ id: "s:web", members: ["10.98.0.2/32", "10.98.1.7/32"] }]);
      expect(s.policies).toEqual(["default/allow-web"]);
      expect(s.endpoints).toEqual([{ id: "default/web-0", ifname: if0 }]);
      await d.apply([
        { kind: "ip-set-delta-update", id: "s:web", added: ["10.98.2.9/32"], removed: ["10.98.1.7/32"] },
      ]);
      s = await d.snapshot();
      expect(s.ipSets).toEqual([{ id: "s:web", members: ["10.98.0.2/32", "10.98.2.9/32"] }]);
      const err = await d
        .apply([{ kind: "ip-set-delta-update", id: "s:nope", added: ["10.0.0.1/32"], removed: [] }])
        .catch((e: unknown) => e);
      expect(isDataplaneError(err, "invalid-update")).toBe(true);
      await d.apply([
        { kind: "workload-endpoint-remove", id: "default/web-0" },
        { kind: "active-policy-remove", id: "default/allow-web" },
        { kind: "ip-set-remove", id: "s:web" },
      ]);
      s = await d.snapshot();
      expect(s).toMatchObject({ ipSets: [], policies: [], endpoints: [] });
    });

    it("rejects calls after close with closed", async () => {
      const d = await open();
      await d.close();
      const err = await d.apply([{ kind: "in-sync" }]).catch((e: unknown) => e);
      expect(isDataplaneError(err, "closed")).toBe(true);
    });
  });
}
