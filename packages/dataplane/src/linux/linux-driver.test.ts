import { createCalcGraph, type PolicyModelResource } from "@margay/policy";
import { describe, expect, it } from "vitest";
import { DataplaneError, isDataplaneError } from "../errors.js";
import { namedNetns } from "../kernel/netns.js";
import type { CommandRunner, RunOptions } from "../kernel/runner.js";
import { createDataplaneModel } from "../model.js";
import { type NftRenderOptions, diffRuleset, renderRuleset } from "../nft/render.js";
import { createLinuxDataplane } from "./linux-driver.js";

const RENDER: NftRenderOptions = {
  table: "margay",
  workloadPrefixes: ["mgy"],
  marks: { allow: 0x10000, pass: 0x20000 },
  endpointToHost: "accept",
  priority: 0,
};

/** Records every command; answers JSON listings with `[]` (an empty namespace). */
function recorder() {
  const calls: { argv: readonly string[]; stdin?: string | undefined }[] = [];
  const runner: CommandRunner = {
    async run(argv: readonly string[], options: RunOptions = {}) {
      calls.push({ argv, stdin: options.stdin });
      return { code: 0, stdout: argv.includes("-json") ? "[]" : "", stderr: "" };
    },
  };
  return { calls, runner };
}

const STATE = [
  { kind: "host-update" as const, node: "a", addresses: ["192.168.0.1/24"] },
  { kind: "host-update" as const, node: "b", addresses: ["192.168.0.2/24"] },
  { kind: "route-update" as const, dst: "10.0.1.0/26", type: "remote-block" as const, nodes: ["b"] },
];

describe("Linux driver (recorded commands)", () => {
  it("runs no command at all before the first in-sync", async () => {
    const { calls, runner } = recorder();
    const d = createLinuxDataplane({ netns: namedNetns("x"), nodeName: "a", runner, reconcileIntervalMs: 0 });
    await d.apply(STATE);
    await d.apply([
      {
        kind: "pool-update",
        cidr: "10.0.0.0/16",
        encapsulation: "none",
        crossSubnet: false,
        natOutgoing: true,
      },
    ]);
    expect(calls).toEqual([]);
    await d.apply([{ kind: "in-sync" }]);
    const batches = calls.filter((c) => c.argv.includes("-batch")).map((c) => c.stdin);
    expect(batches).toContain("route replace 10.0.1.0/26 via 192.168.0.2 proto 80 table 254\n");
    await d.close();
  });

  it("programs policy before routes, each as one process, and only argument arrays reach the runner", async () => {
    const { calls, runner } = recorder();
    const d = createLinuxDataplane({ netns: namedNetns("x"), nodeName: "a", runner, reconcileIntervalMs: 0 });
    await d.apply([...STATE, { kind: "in-sync" }]);
    calls.length = 0;
    await d.apply([
      { kind: "route-update", dst: "10.0.0.5/32", type: "local-workload", ifname: "mgy0000000001" },
    ]);
    // A route-only batch: one ip process, no nft, no listing.
    expect(calls.map((c) => c.argv.slice(0, 5))).toEqual([["ip", "-n", "x", "-force", "-batch"]]);
    calls.length = 0;
    await d.apply([
      { kind: "ip-set-update", id: "s", type: "net", members: ["10.0.0.5/32"] },
      { kind: "route-update", dst: "10.0.0.6/32", type: "local-workload", ifname: "mgy0000000002" },
    ]);
    const tools = calls.map((c) => (c.argv[0] === "nsenter" ? c.argv[3] : c.argv[0]));
    expect(tools).toEqual(["nft", "ip"]);
    for (const c of calls) for (const a of c.argv) expect(typeof a).toBe("string");
    await d.close();
  });

  it("after a refused nftables transaction, snapshots report what the kernel kept", async () => {
    let refuse = false;
    const runner: CommandRunner = {
      async run(argv: readonly string[]) {
        if (refuse && argv.includes("nft")) {
          throw new DataplaneError("command-failed", "nft failed", {
            details: { argv, stderr: "Error: Could not process rule: Device or resource busy" },
          });
        }
        return { code: 0, stdout: argv.includes("-json") ? "[]" : "", stderr: "" };
      },
    };
    const d = createLinuxDataplane({ netns: namedNetns("x"), nodeName: "a", runner, reconcileIntervalMs: 0 });
    const pol = (id: string) => ({
      kind: "active-policy-update" as const,
      id,
      tier: "default",
      name: id,
      inbound: [],
      outbound: [],
      flags: { untracked: false, preDnat: false, applyOnForward: false },
    });
    await d.apply([...STATE, pol("default/a"), { kind: "in-sync" }]);
    expect((await d.snapshot()).policies).toEqual(["default/a"]);
    refuse = true;
    const err = await d
      .apply([{ kind: "active-policy-remove", id: "default/a" }, pol("default/b")])
      .catch((e: unknown) => e);
    expect(isDataplaneError(err, "nftables-rejected")).toBe(true);
    expect((await d.snapshot()).policies).toEqual(["default/a"]);
    // The next accepted transaction carries the refused batch's changes in.
    refuse = false;
    await d.apply([pol("default/c")]);
    expect((await d.snapshot()).policies).toEqual(["default/b", "default/c"]);
    await d.close();
  });

  it("validates options once, at construction", () => {
    const { runner } = recorder();
    const make = (o: object) => () =>
      createLinuxDataplane({ netns: namedNetns("x"), nodeName: "a", runner, ...o });
    for (const bad of [
      { routeProtocol: 0 },
      { routeProtocol: 256 },
      { vxlanVni: 1 << 24 },
      { vxlanDevice: "bad name" },
    ]) {
      try {
        make(bad)();
        expect.unreachable();
      } catch (e) {
        expect(isDataplaneError(e)).toBe(true);
      }
    }
  });
});

describe("Linux driver incremental nftables rendering", () => {
  it("sends, batch after batch, the same transaction as a full render and diff would", async () => {
    const nftTexts: string[] = [];
    const runner: CommandRunner = {
      async run(argv: readonly string[], options: RunOptions = {}) {
        if (argv.includes("nft")) nftTexts.push(options.stdin ?? "");
        return { code: 0, stdout: argv.includes("-json") ? "[]" : "", stderr: "" };
      },
    };
    const d = createLinuxDataplane({ netns: namedNetns("x"), nodeName: "a", runner, reconcileIntervalMs: 0 });
    const graph = createCalcGraph({ nodeName: "a" });
    const mirror = createDataplaneModel();
    const V = "margay.io/v1" as const;
    const wep = (name: string, app: string, ifname: string): PolicyModelResource => ({
      apiVersion: V,
      kind: "WorkloadEndpoint",
      metadata: { name, namespace: "ns", labels: { app, "projectcalico.org/namespace": "ns" } },
      spec: {
        node: "a",
        interfaceName: ifname,
        ipNetworks: [`10.0.0.${ifname.length + name.length}/32`],
        profiles: ["kns.ns"],
      },
    });
    const gnp = (name: string, port: number): PolicyModelResource => ({
      apiVersion: V,
      kind: "GlobalNetworkPolicy",
      metadata: { name },
      spec: {
        selector: "app == 'web'",
        types: ["Ingress"],
        ingress: [
          {
            action: "Allow",
            protocol: "TCP",
            source: { selector: "app == 'client'" },
            destination: { ports: [port] },
          },
        ],
      },
    });
    graph.upsert({
      apiVersion: V,
      kind: "Profile",
      metadata: { name: "kns.ns" },
      spec: { ingress: [{ action: "Allow" }] },
    });
    graph.upsert(gnp("p1", 80));
    graph.upsert(wep("web", "web", "mgy000000000001"));
    graph.upsert(wep("client", "client", "mgy000000000002"));
    graph.upsert(wep("other", "other", "mgy000000000003"));
    graph.markInSync();
    const initial = graph.flush();
    mirror.applyBatch(initial);
    await d.apply([...initial, { kind: "in-sync" }]);
    const full = () => renderRuleset(mirror.policy, [], RENDER);
    let prev = full();
    const steps: (() => void)[] = [
      () => graph.upsert(wep("client2", "client", "mgy000000000004")),
      () => graph.upsert(wep("web", "other", "mgy000000000001")),
      () => graph.upsert(wep("web", "web", "mgy000000000001")),
      () => graph.upsert(gnp("p1", 8080)),
      () => graph.remove({ kind: "WorkloadEndpoint", name: "client", namespace: "ns" }),
      () => graph.upsert(wep("other", "other", "mgy00000000000a")),
      () => graph.upsert(gnp("p2", 443)),
      () => graph.remove({ kind: "GlobalNetworkPolicy", name: "p1" }),
    ];
    const byChain = (text: string) => {
      const out = new Map<string, string[]>();
      for (const l of text.split("\n")) {
        const m = /^add rule inet margay (\S+) /.exec(l);
        if (m !== null) out.set(m[1]!, [...(out.get(m[1]!) ?? []), l]);
      }
      return out;
    };
    for (const step of steps) {
      step();
      const ups = graph.flush();
      expect(ups.length).toBeGreaterThan(0);
      mirror.applyBatch(ups);
      nftTexts.length = 0;
      await d.apply(ups);
      const next = full();
      const want = diffRuleset(prev, next, RENDER);
      expect(nftTexts).toHaveLength(1);
      expect(nftTexts[0]!.split("\n").sort()).toEqual(want.split("\n").sort());
      expect(byChain(nftTexts[0]!)).toEqual(byChain(want));
      prev = next;
    }
    await d.close();
  });
});
