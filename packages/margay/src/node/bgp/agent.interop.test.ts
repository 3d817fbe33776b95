/**
 * The BGP part against real peers on loopback: two agents over one memory datastore (the node-to-node
 * mesh, a node leaving, an agent's graceful restart), and BIRD 2 as a global BGPPeer (top of rack).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BGPConfiguration } from "@margay/api";
import { createMemoryDatastore, type MemoryDatastore } from "@margay/datastore";
import { afterEach, describe, expect, it } from "vitest";
import { type BgpAgent, startBgp } from "./agent.js";
import { eventually, FakePipeline, freePort, testConfig, testContext } from "./fixtures.test-util.js";

const A = "127.0.0.71";
const B = "127.0.0.72";
const BIRD_ADDR = "127.0.0.81";
const BIRD = "/usr/sbin/bird";
const BIRDC = "/usr/sbin/birdc";

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => {});
});

async function cluster(nodes: Record<string, string>, listenPort: number): Promise<MemoryDatastore> {
  const ds = createMemoryDatastore();
  cleanup.push(() => ds.close());
  for (const [name, address] of Object.entries(nodes)) {
    await ds.create({
      apiVersion: "margay.io/v1",
      kind: "Node",
      metadata: { name },
      spec: { bgp: { ipv4Address: `${address}/8` } },
    });
  }
  await ds.create({
    apiVersion: "margay.io/v1",
    kind: "BGPConfiguration",
    metadata: { name: "default" },
    spec: { listenPort },
  });
  return ds;
}

function agent(ds: MemoryDatastore, name: string, address: string, blocks: readonly string[]) {
  const t = testContext(ds, testConfig(name, { bgpGracefulRestartSeconds: 60 }));
  const pipeline = new FakePipeline();
  const bgp: BgpAgent = startBgp(t.ctx, {
    pipeline,
    addresses: { ipv4: `${address}/8`, ipv6: undefined, interface: "lo", interfaceMtu: 65536 },
  });
  cleanup.push(() => bgp.close());
  pipeline.apply(blocks.map((dst) => ({ kind: "route-update", dst, type: "local-block" })));
  return { bgp, pipeline, ...t };
}

const established = (a: { bgp: BgpAgent }, address: string) =>
  a.bgp.status().find((p) => p.address === address)?.state === "established";

describe("node-to-node mesh between two agents", () => {
  it("reaches Established, exchanges blocks, and drops the peer when its Node goes", async () => {
    const ds = await cluster({ "node-a": A, "node-b": B }, await freePort(A));
    const a = agent(ds, "node-a", A, ["10.66.1.0/26"]);
    const b = agent(ds, "node-b", B, ["10.66.2.0/26"]);
    await eventually(() => established(a, B) && established(b, A), "mesh session");
    const [pa] = a.bgp.status();
    expect(pa).toMatchObject({ address: B, type: "mesh", source: "node-to-node mesh", peerNode: "node-b" });
    const learnedAtA = await eventually(() => a.pipeline.learnedRoutes.get("10.66.2.0/26"), "B's block at A");
    expect([...learnedAtA.values()]).toEqual([[B]]);
    const learnedAtB = await eventually(() => b.pipeline.learnedRoutes.get("10.66.1.0/26"), "A's block at B");
    expect([...learnedAtB.values()]).toEqual([[A]]);
    // Neither imports its own block back.
    expect(a.pipeline.learnedRoutes.has("10.66.1.0/26")).toBe(false);
    expect(b.pipeline.learnedRoutes.has("10.66.2.0/26")).toBe(false);

    // A new block on B is advertised incrementally.
    b.pipeline.apply([{ kind: "route-update", dst: "10.66.3.0/26", type: "local-block" }]);
    await eventually(() => a.pipeline.learnedRoutes.get("10.66.3.0/26"), "B's new block at A");

    await ds.delete({ kind: "Node", name: "node-b" });
    await eventually(() => a.bgp.status().length === 0, "peer removed at A");
    await eventually(() => !a.pipeline.learnedRoutes.has("10.66.2.0/26"), "B's block withdrawn at A");
  });

  it("a graceful restart of one agent withdraws nothing at the other", async () => {
    const ds = await cluster({ "node-a": A, "node-b": B }, await freePort(A));
    const a = agent(ds, "node-a", A, ["10.66.1.0/26"]);
    const b = agent(ds, "node-b", B, ["10.66.2.0/26"]);
    await eventually(() => a.pipeline.learnedRoutes.get("10.66.2.0/26"), "B's block at A");

    await b.bgp.close({ graceful: true });
    await eventually(() => !established(a, B), "session down at A");
    const b2 = agent(ds, "node-b", B, ["10.66.2.0/26"]);
    await eventually(() => established(a, B) && established(b2, A), "session back");
    await eventually(() => b2.pipeline.learnedRoutes.get("10.66.1.0/26"), "A's block at the restarted B");
    // A kept B's block the whole time: no learned withdrawal was ever fed to A's pipeline.
    const withdrawals = a.pipeline.learnedCalls
      .flat()
      .filter((c) => c.kind === "learned" && c.nextHops === null);
    expect(withdrawals).toEqual([]);
    expect([...a.pipeline.learnedRoutes.get("10.66.2.0/26")!.values()]).toEqual([[B]]);
  });
});

describe("route reflector with the mesh off (Calico's route-reflector topology)", () => {
  it("clients learn each other's blocks through the reflector, with the originating node as next hop", async () => {
    const RR = "127.0.0.93";
    const ds = await cluster({ "node-a": A, "node-b": B }, await freePort(A));
    await ds.create({
      apiVersion: "margay.io/v1",
      kind: "Node",
      metadata: { name: "rr-1", labels: { "route-reflector": "true" } },
      spec: { bgp: { ipv4Address: `${RR}/8`, routeReflectorClusterID: "244.0.0.1" } },
    });
    const def = await ds.get<BGPConfiguration>({ kind: "BGPConfiguration", name: "default" });
    await ds.update({ ...def, spec: { ...def.spec, nodeToNodeMeshEnabled: false } });
    await ds.create({
      apiVersion: "margay.io/v1",
      kind: "BGPPeer",
      metadata: { name: "peer-with-route-reflectors" },
      spec: { nodeSelector: "all()", peerSelector: "route-reflector == 'true'" },
    });
    const a = agent(ds, "node-a", A, ["10.67.1.0/26"]);
    const b = agent(ds, "node-b", B, ["10.67.2.0/26"]);
    const rr = agent(ds, "rr-1", RR, []);
    await eventually(() => established(a, RR) && established(b, RR), "clients up with the reflector");
    expect(a.bgp.status().map((p) => p.address)).toEqual([RR]); // no mesh session to B
    expect(rr.bgp.status().map((p) => [p.address, p.type])).toEqual([
      [A, "rr-client"],
      [B, "rr-client"],
    ]);
    const atA = await eventually(() => a.pipeline.learnedRoutes.get("10.67.2.0/26"), "B's block at A");
    // Reflected, not re-originated: the next hop is B itself, learned from the reflector.
    expect([...atA]).toEqual([[expect.stringMatching(`^${RR}:`), [B]]]);
    const atB = await eventually(() => b.pipeline.learnedRoutes.get("10.67.1.0/26"), "A's block at B");
    expect([...atB]).toEqual([[expect.stringMatching(`^${RR}:`), [A]]]);
  });
});

// ---- BIRD ----------------------------------------------------------------------------------------

function run(cmd: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, [...args], { timeout: 10_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${cmd} ${args.join(" ")}: ${err.message} ${stderr}`)) : resolve(stdout),
    );
  });
}

async function startBird(config: string) {
  const dir = await mkdtemp(join(tmpdir(), "margay-bgp-bird-"));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  const conf = join(dir, "bird.conf");
  const sock = join(dir, "bird.ctl");
  await writeFile(conf, config);
  let output = "";
  const proc: ChildProcess = spawn(BIRD, ["-f", "-c", conf, "-s", sock, "-P", join(dir, "bird.pid")], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  proc.stdout?.on("data", (d: Buffer) => (output = (output + d.toString()).slice(-10_000)));
  proc.stderr?.on("data", (d: Buffer) => (output = (output + d.toString()).slice(-10_000)));
  proc.on("error", (e) => (output += e.message));
  cleanup.push(async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGTERM");
    const t = setTimeout(() => proc.kill("SIGKILL"), 3000);
    await gone;
    clearTimeout(t);
  });
  const birdc = (args: readonly string[]) => run(BIRDC, ["-s", sock, ...args]);
  for (let i = 0; ; i++) {
    if (
      await birdc(["show", "status"])
        .then((s) => s.includes("Daemon is up"))
        .catch(() => false)
    )
      break;
    if (proc.exitCode !== null || i > 200) throw new Error(`bird did not start: ${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    birdc,
    /** Routes of master4 as `prefix → first line` (best route first). */
    routes: async () => {
      const text = await birdc(["show", "route", "table", "master4", "all"]);
      const out = new Map<string, string>();
      for (const line of text.split("\n")) {
        const m = /^(\d+\.\d+\.\d+\.\d+\/\d+)\s+(.*)$/.exec(line);
        if (m) out.set(m[1]!, m[2]!);
      }
      return out;
    },
    state: async () => /BGP state:\s+(\S+)/.exec(await birdc(["show", "protocols", "all", "margay"]))?.[1],
  };
}

async function until<T>(f: () => Promise<T | undefined | false>, what: string, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("BIRD 2 as a global BGPPeer (top of rack)", () => {
  it("learns our block, sends us its routes, and keeps our block through a graceful restart", async () => {
    const listenPort = await freePort(A);
    const birdPort = await freePort(BIRD_ADDR);
    const ds = await cluster({ "node-a": A }, listenPort);
    await ds.create({
      apiVersion: "margay.io/v1",
      kind: "BGPPeer",
      metadata: { name: "tor" },
      spec: { peerIP: `${BIRD_ADDR}:${birdPort}`, asNumber: 65100 },
    });
    const bird = await startBird(`router id 10.255.8.1;
log stderr all;
protocol device { scan time 10; }
protocol static st { ipv4; route 198.51.100.0/24 blackhole; }
protocol bgp margay {
  local ${BIRD_ADDR} port ${birdPort} as 65100;
  neighbor ${A} port ${listenPort} as 64512;
  multihop;
  hold time 9;
  connect delay time 1; connect retry time 1; error wait time 1, 2;
  graceful restart on;
  ipv4 { import all; export all; };
}
`);
    const a = agent(ds, "node-a", A, ["10.66.1.0/26"]);
    await until(async () => (await bird.state()) === "Established", "BIRD Established");
    const r = await until(async () => (await bird.routes()).get("10.66.1.0/26"), "our block at BIRD");
    expect(r).toContain("AS64512");
    const learned = await eventually(() => a.pipeline.learnedRoutes.get("198.51.100.0/24"), "BIRD's route");
    expect([...learned.values()]).toEqual([[BIRD_ADDR]]);
    expect(a.bgp.status()[0]).toMatchObject({ type: "global", state: "established", asNumber: 65100 });
    // BIRD read our graceful-restart capability: our restart time, IPv4 with forwarding state preserved.
    const proto = await bird.birdc(["show", "protocols", "all", "margay"]);
    const neighborCaps = proto.slice(proto.indexOf("Neighbor capabilities"));
    expect(neighborCaps).toMatch(
      /Graceful restart\s+Restart time: 60\s+AF supported: ipv4\s+AF preserved: ipv4/,
    );

    // Graceful restart: BIRD keeps our block while we are down, and after we are back.
    await a.bgp.close({ graceful: true });
    await until(async () => (await bird.state()) !== "Established", "BIRD sees the session down");
    expect((await bird.routes()).has("10.66.1.0/26")).toBe(true);
    const a2 = agent(ds, "node-a", A, ["10.66.1.0/26"]);
    await until(async () => (await bird.state()) === "Established", "BIRD Established again");
    await eventually(() => a2.pipeline.learnedRoutes.get("198.51.100.0/24"), "BIRD's route after restart");
    expect((await bird.routes()).has("10.66.1.0/26")).toBe(true);
  });
});
