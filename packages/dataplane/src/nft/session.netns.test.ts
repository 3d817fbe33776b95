import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isDataplaneError } from "../errors.js";
import { createLinuxDataplane } from "../linux/linux-driver.js";
import { nftNames } from "./names.js";
import { inNetns, type NetnsHandle } from "../kernel/netns.js";
import { type CommandRunner, createProcessRunner, type RunningCommand } from "../kernel/runner.js";
import type { WorkloadEndpointUpdate } from "@margay/dataplane-contract";
import { applyPolicyUpdate, createPolicyState } from "../policy-state.js";
import { renderedRule } from "../testing/rendered-rule.js";
import { createNetnsLab, type NetnsLab } from "../testing/netns-lab.js";
import { createNftProgrammer } from "./programmer.js";
import { createNftSession } from "./session.js";
import {
  createNftRenderCache,
  type NftRenderOptions,
  type NftRuleset,
  renderRuleset,
  renderRulesetDelta,
} from "./render.js";

const RENDER: NftRenderOptions = {
  table: "margay",
  workloadPrefixes: ["mgy"],
  marks: { allow: 0x10000, pass: 0x20000 },
  endpointToHost: "accept",
  priority: 0,
};

/** The empty table plus one interval set holding `members`. */
function ruleset(members: readonly string[]): NftRuleset {
  const base = renderRuleset(createPolicyState(), [], RENDER);
  const sets = new Map(base.sets);
  sets.set("s4-test", { decl: "type ipv4_addr; flags interval;", elements: [...members] });
  return { ...base, sets };
}

/** A process runner that counts one-shot `nft` runs and long-lived starts, and can sabotage the next start. */
function countingRunner() {
  const real = createProcessRunner();
  const c = {
    nftRuns: [] as string[],
    starts: 0,
    /** The next started process dies as soon as it is written to (a crash mid-transaction). */
    dieOnNextWrite: false,
    run: ((argv, options) => {
      if (argv.includes("nft")) c.nftRuns.push(options?.stdin ?? "");
      return real.run(argv, options);
    }) as CommandRunner["run"],
    start: ((argv) => {
      c.starts++;
      const child = real.start!(argv);
      const die = c.dieOnNextWrite;
      c.dieOnNextWrite = false;
      return {
        ...child,
        write(text: string) {
          if (die) child.kill();
          else child.write(text);
        },
      } satisfies RunningCommand;
    }) as NonNullable<CommandRunner["start"]>,
  };
  return c;
}

async function members(lab: NetnsLab, ns: NetnsHandle): Promise<string> {
  const r = await lab.runner.run([
    "nsenter",
    `--net=/run/netns/${(ns as { name: string }).name}`,
    "--",
    "nft",
    "list",
    "set",
    "inet",
    "margay",
    "s4-test",
  ]);
  return r.stdout;
}

describe("nft session (long-lived nft -i for differences)", () => {
  let lab: NetnsLab;
  let ns: NetnsHandle;
  beforeAll(async () => {
    lab = createNetnsLab("mgnfs");
    ns = await lab.add("node");
  });
  afterAll(async () => {
    await lab?.close();
  });

  it("applies differences through one process, not one nft per change", async () => {
    const runner = countingRunner();
    const nft = createNftProgrammer(runner, ns, RENDER);
    try {
      await nft.apply(ruleset(["10.0.0.1"]), true);
      await nft.apply(ruleset(["10.0.0.1", "10.0.0.2"]), false);
      await nft.apply(ruleset(["10.0.0.2", "10.0.0.3"]), false);
      await nft.apply(ruleset(["10.0.0.3", "10.0.0.4"]), false);
      // One `nft -f` (the full table), one session for the three differences.
      expect(runner.nftRuns).toHaveLength(1);
      expect(runner.starts).toBe(1);
      const out = await members(lab, ns);
      expect(out).toContain("10.0.0.3");
      expect(out).toContain("10.0.0.4");
      expect(out).not.toContain("10.0.0.1");
      expect(out).not.toContain("10.0.0.2");
    } finally {
      nft.close();
    }
  });

  it("a refused difference changes nothing (one transaction), and the session goes on", async () => {
    const runner = countingRunner();
    const nft = createNftProgrammer(runner, ns, RENDER);
    try {
      const first = ruleset(["10.0.1.1"]);
      await nft.apply(first, true);
      // A valid command, then one nft refuses: neither may take effect.
      const bad =
        "add element inet margay s4-test { 10.0.1.2 }\nadd element inet margay no-such-set { 10.0.1.3 }\n";
      const err = await nft.applyDelta(ruleset(["10.0.1.1", "10.0.1.2"]), bad).catch((e: unknown) => e);
      expect(isDataplaneError(err) && err.code).toBe("nftables-rejected");
      expect(isDataplaneError(err) && String(err.details?.stderr)).toContain("no-such-set");
      expect(await members(lab, ns)).not.toContain("10.0.1.2");
      expect(nft.current).toBe(first);
      await nft.apply(ruleset(["10.0.1.1", "10.0.1.4"]), false);
      expect(await members(lab, ns)).toContain("10.0.1.4");
      expect(runner.starts).toBe(1);
    } finally {
      nft.close();
    }
  });

  it("after the process dies mid-transaction the next change replaces the whole table", async () => {
    const runner = countingRunner();
    const nft = createNftProgrammer(runner, ns, RENDER);
    try {
      await nft.apply(ruleset(["10.0.2.1"]), true);
      runner.dieOnNextWrite = true;
      const err = await nft.apply(ruleset(["10.0.2.1", "10.0.2.2"]), false).catch((e: unknown) => e);
      expect(isDataplaneError(err) && err.code).toBe("command-failed");
      expect(isDataplaneError(err) && err.retryable).toBe(true);
      // Unknown whether the kernel holds it: the next change is a full replacement (`nft -f`).
      await nft.apply(ruleset(["10.0.2.3"]), false);
      expect(runner.nftRuns).toHaveLength(2);
      expect(runner.nftRuns[1]).toContain("delete table inet margay");
      const out = await members(lab, ns);
      expect(out).toContain("10.0.2.3");
      expect(out).not.toContain("10.0.2.1");
      // Then differences go through a fresh session again.
      await nft.apply(ruleset(["10.0.2.3", "10.0.2.5"]), false);
      expect(runner.nftRuns).toHaveLength(2);
      expect(await members(lab, ns)).toContain("10.0.2.5");
    } finally {
      nft.close();
    }
  });

  it("a pod's delta (set and map declarations, element deletes) leaves the kernel as a full replacement does", async () => {
    const runner = countingRunner();
    const nft = createNftProgrammer(runner, ns, RENDER);
    const ep = (id: string, ifname: string, ip: string): WorkloadEndpointUpdate => ({
      kind: "workload-endpoint-update",
      id,
      ifname,
      ipNetworks: [`${ip}/32`],
      tiers: { ingress: [{ tier: "default", defaultAction: "deny", policyIds: ["default/p"] }], egress: [] },
      profileIds: [],
    });
    /** The table as nft lists it, without handles, elements sorted (a hash set lists in no set order). */
    const table = async () => {
      const r = await lab.runner.run(inNetns(ns, ["nft", "-j", "list", "table", "inet", RENDER.table]));
      const items = (JSON.parse(r.stdout) as { nftables: Record<string, Record<string, unknown>>[] })
        .nftables;
      return items
        .map((item) => {
          for (const v of Object.values(item)) {
            delete v.handle;
            if (Array.isArray(v.elem)) v.elem = v.elem.map((e) => JSON.stringify(e)).sort();
          }
          return JSON.stringify(item);
        })
        .sort();
    };
    try {
      const s = createPolicyState();
      applyPolicyUpdate(s, {
        kind: "ip-set-update",
        id: "pods",
        type: "net",
        members: ["10.0.3.1/32", "10.0.3.2"],
      });
      applyPolicyUpdate(s, {
        kind: "ip-set-update",
        id: "http",
        type: "ip-and-port",
        members: ["10.0.3.1,tcp:8080", "10.0.3.2,tcp:8080"],
      });
      applyPolicyUpdate(s, {
        kind: "active-policy-update",
        id: "default/p",
        tier: "default",
        name: "p",
        inbound: [renderedRule({ ruleId: "r0", srcIpSetIds: ["pods"], dstNamedPortIpSetIds: ["http"] })],
        outbound: [],
        flags: { untracked: false, preDnat: false, applyOnForward: false },
      });
      applyPolicyUpdate(s, ep("ns/a", "mgya", "10.0.3.1"));
      applyPolicyUpdate(s, ep("ns/b", "mgyb", "10.0.3.2"));
      const cache = createNftRenderCache();
      const first = renderRuleset(s, [], RENDER, cache);
      await nft.apply(first, true);
      // Pod c comes (a new map key, new set members), pod a goes (map keys and members out).
      applyPolicyUpdate(s, {
        kind: "ip-set-delta-update",
        id: "pods",
        added: ["10.0.3.3/32"],
        removed: ["10.0.3.1/32"],
      });
      applyPolicyUpdate(s, {
        kind: "ip-set-delta-update",
        id: "http",
        added: ["10.0.3.3,tcp:8080"],
        removed: ["10.0.3.1,tcp:8080"],
      });
      applyPolicyUpdate(s, { kind: "workload-endpoint-remove", id: "ns/a" });
      applyPolicyUpdate(s, ep("ns/c", "mgyc", "10.0.3.3"));
      const accepted = new Map([
        ["ns/a", "mgya"],
        ["ns/b", "mgyb"],
      ]);
      const delta = renderRulesetDelta(
        first,
        (id) => accepted.get(id),
        s,
        RENDER,
        cache,
        {
          ipSets: new Set(["pods", "http"]),
          ipSetMembers: new Map([
            ["pods", new Set(["10.0.3.3/32", "10.0.3.1/32"])],
            ["http", new Set(["10.0.3.3,tcp:8080", "10.0.3.1,tcp:8080"])],
          ]),
          policies: new Set(),
          profiles: new Set(),
          workloads: new Set(["ns/a", "ns/c"]),
        },
        { inPlace: true },
      )!;
      expect(delta.text).toMatch(
        /^add set inet margay a4-\S+ \{ type ipv4_addr; elements = \{ 10\.0\.3\.3 \} \}$/m,
      );
      expect(delta.text).toMatch(
        /^add map inet margay wl-to \{ type ifname : verdict; elements = \{ "mgyc" : goto /m,
      );
      expect(delta.text).not.toMatch(/^add element/m);
      await nft.applyDelta(delta.next, delta.text, {}, delta.undo);
      expect(runner.starts).toBe(1);
      const byDelta = await table();
      await nft.apply(renderRuleset(s, [], RENDER), true);
      expect(await table()).toEqual(byDelta);
      expect(byDelta.join("\n")).toContain("mgyc");
      expect(byDelta.join("\n")).not.toContain("mgya");
      expect(byDelta.join("\n")).not.toContain("10.0.3.1");
    } finally {
      nft.close();
    }
  });

  it("the driver's pod deltas go element by element; an out-of-band change to our table is repaired by reconcile", async () => {
    const node = await lab.add("drv");
    const runner = countingRunner();
    const driver = createLinuxDataplane({ netns: node, nodeName: "n1", reconcileIntervalMs: 0, runner });
    const list = async (...what: string[]) =>
      (await lab.runner.run(inNetns(node, ["nft", "list", ...what]))).stdout;
    const ep = (id: string, ifname: string): WorkloadEndpointUpdate => ({
      kind: "workload-endpoint-update",
      id,
      ifname,
      ipNetworks: ["10.0.4.1/32"],
      tiers: { ingress: [{ tier: "default", defaultAction: "deny", policyIds: ["default/p"] }], egress: [] },
      profileIds: [],
    });
    const pods = nftNames.addrSet("pods", 4, false);
    try {
      await driver.apply([
        { kind: "ip-set-update", id: "pods", type: "net", members: ["10.0.4.1/32"] },
        {
          kind: "active-policy-update",
          id: "default/p",
          tier: "default",
          name: "p",
          inbound: [renderedRule({ ruleId: "r0", srcIpSetIds: ["pods"] })],
          outbound: [],
          flags: { untracked: false, preDnat: false, applyOnForward: false },
        },
        ep("ns/a", "mgya"),
        { kind: "in-sync" },
      ]);
      // A pod comes: its member and its map keys, through the session.
      await driver.apply([
        { kind: "ip-set-delta-update", id: "pods", added: ["10.0.4.2/32"], removed: [] },
        ep("ns/b", "mgyb"),
      ]);
      expect(await list("set", "inet", "margay", pods)).toMatch(/10\.0\.4\.1, 10\.0\.4\.2/);
      expect(await list("map", "inet", "margay", "wl-to")).toContain('"mgyb" : goto');
      // One `nft -f` (the first in-sync's whole table); the pod was a delta through the session.
      expect(runner.nftRuns).toHaveLength(1);
      expect(runner.starts).toBe(1);
      // Someone else takes a member and a map key out of our table, and adds a member.
      await lab.runner.run(
        inNetns(node, ["nft", "delete", "element", "inet", "margay", pods, "{ 10.0.4.1 }"]),
      );
      await lab.runner.run(inNetns(node, ["nft", "add", "element", "inet", "margay", pods, "{ 10.9.9.9 }"]));
      await lab.runner.run(
        inNetns(node, ["nft", "delete", "element", "inet", "margay", "wl-to", '{ "mgya" }']),
      );
      await driver.reconcile();
      // Reconcile does not trust what we committed: it replaces the whole table.
      expect(runner.nftRuns).toHaveLength(2);
      const set = await list("set", "inet", "margay", pods);
      expect(set).toMatch(/10\.0\.4\.1, 10\.0\.4\.2/);
      expect(set).not.toContain("10.9.9.9");
      expect(await list("map", "inet", "margay", "wl-to")).toContain('"mgya" : goto');
      // And deltas go on from the repaired table.
      await driver.apply([
        { kind: "ip-set-delta-update", id: "pods", added: ["10.0.4.3/32"], removed: ["10.0.4.1/32"] },
        { kind: "workload-endpoint-remove", id: "ns/a" },
      ]);
      const after = await list("set", "inet", "margay", pods);
      expect(after).toMatch(/10\.0\.4\.2, 10\.0\.4\.3/);
      expect(after).not.toContain("10.0.4.1");
      expect(await list("map", "inet", "margay", "wl-to")).not.toContain("mgya");
      expect(runner.nftRuns).toHaveLength(2);
    } finally {
      await driver.close();
    }
  });

  it("keeps no command-line history: none in $HOME when the agent goes, none piling up in the process", async () => {
    // The agent's own HOME; nft -i would write its history there when its stdin ends (the agent exits).
    const home = mkdtempSync(join(tmpdir(), "mgnft-home-"));
    const children: ReturnType<typeof spawn>[] = [];
    let starts = 0;
    const runner: CommandRunner = {
      run: createProcessRunner().run,
      start(argv) {
        starts++;
        const [file, ...args] = argv;
        const child = spawn(file!, args, {
          stdio: ["pipe", "ignore", "pipe"],
          env: { ...process.env, HOME: home },
        });
        children.push(child);
        child.stdin.on("error", () => undefined);
        const exits: ((code: number | null) => void)[] = [];
        child.on("close", (code) => {
          for (const l of exits) l(code);
        });
        return {
          write: (text) => void child.stdin.write(text),
          onStderr: (l) => void child.stderr.on("data", (b: Buffer) => l(b.toString("utf8"))),
          onExit: (l) => void exits.push(l),
          kill: () => void child.kill("SIGTERM"),
          hold: () => undefined,
        };
      },
    };
    const exited = (c: ReturnType<typeof spawn>) =>
      new Promise<void>((resolve) =>
        c.exitCode !== null || c.signalCode !== null ? resolve() : c.on("close", () => resolve()),
      );
    try {
      // Recycled after every transaction here (the default is 8 MiB of them): each runs in a fresh
      // process, and the exit of the one before never fails the next.
      const recycling = createNftSession(runner, ns, "margay", { recycleBytes: 1 })!;
      for (let i = 0; i < 3; i++)
        await recycling.run(`add table inet mghist${i}\ndelete table inet mghist${i}`);
      expect(starts).toBe(3);
      // A session that lives on until the agent goes: its process then reads end-of-file and exits as
      // nft -i does then (writing its history, were there a file it could write).
      const lasting = createNftSession(runner, ns, "margay")!;
      await lasting.run("add table inet mghist\ndelete table inet mghist");
      expect(starts).toBe(4);
      children.at(-1)!.stdin!.end();
      await Promise.all(children.map(exited));
      expect(existsSync(join(home, ".nft.history"))).toBe(false);
    } finally {
      for (const c of children) c.kill("SIGKILL");
      rmSync(home, { recursive: true, force: true });
    }
  });
});
