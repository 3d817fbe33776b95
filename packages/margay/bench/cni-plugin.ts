/**
 * `margay` CNI plugin benchmark, with a real `margay-node` agent in a cluster-lab host (one host, memory
 * datastore, the agent bundled from this tree): ADD+DEL of `margay` against Debian's `ptp` + `host-local`
 * in the same run (same runtime, same host namespace wrapper, interleaved), `node -e 0` as the floor, the
 * split of a `margay` ADD into process start / agent work / kernel work, a burst of 30 concurrent ADDs,
 * and 100 pods networked on one host. Needs root. Writes `margay-cni-plugin.json` (scripts/bench-kit.ts).
 *
 * - process start: `margay` answering VERSION (fresh process, bundle load, code cache), against `node -e 0`;
 * - agent work: the workload API add+del called in-process (no plugin process), same request;
 * - kernel work: the agent's own `margay_workload_add_seconds{step="plumb"}` (veth, addresses, routes).
 * Every figure: min/median/max of CYCLES interleaved samples. `BENCH_QUICK=1`: tiny sizes.
 */

import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createCniRuntime, DEFAULT_PLUGIN_ENV, execPlugin, type NetConfList } from "@margay/cni";
import { createNetns, type TestNetns } from "@margay/cni/testing";
import { size, summarize, writeResult } from "../../../scripts/bench-kit.js";
import { buildExecutable } from "../src/build/executable.js";
import { workspaceSources } from "../src/cni/ipam/bundle-plugins.js";
import { buildMargayPluginBundle } from "../src/cni/plugin/build-bundle.js";
import { lazyPluginBuiltins } from "../src/cni/plugin/bundle-plugins.js";
import { buildAgentBundle } from "../src/cni/plugin/test-support.js";
import { createWorkloadClient } from "../src/node/workload/client.js";
import { createClusterLab } from "../src/testing/index.js";

const run = promisify(execFile);
const DEBIAN = "/usr/lib/cni";
const CYCLES = Number(process.env.BENCH_CYCLES ?? size(20, 3));
const BURST = size(30, 4);
const PODS = size(100, 6);
const METRICS_PORT = 9091;

const time = async (f: () => Promise<unknown>) => {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
};
/** One fresh process: argv, environment, stdin; resolves with its wall time (ms) once it exits 0. */
const proc = (argv: readonly string[], env: Record<string, string>, stdin: string) =>
  new Promise<number>((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (b: Buffer) => (out += b));
    child.once("error", reject);
    child.once("close", (code) =>
      code === 0
        ? resolve(performance.now() - t0)
        : reject(new Error(`${argv.join(" ")}: exit ${code}: ${out}`)),
    );
    child.stdin.end(stdin);
  });

/**
 * The plugin's start, three ways, each ADD a fresh process against a stand-in agent that answers at once
 * (so only the plugin's own cost is timed): the shipped executable (V8 code cache, written by its first
 * ADD), the same bundle without the code cache, and a V8 startup snapshot of it (`--snapshot-blob`).
 */
async function startVariants(dir: string, shipped: string, cycles: number) {
  const raw = join(dir, "start", "margay-raw.cjs");
  const entry = join(dir, "start", "snapshot-entry.cjs");
  const blob = join(dir, "start", "margay.blob");
  const plugins = [lazyPluginBuiltins, workspaceSources];
  await buildExecutable({
    entry: join(import.meta.dirname, "../src/cni/plugin/main.ts"),
    outfile: raw,
    plugins,
  });
  await buildExecutable({
    entry: join(import.meta.dirname, "cni-plugin-snapshot-main.ts"),
    outfile: entry,
    plugins,
  });
  await run(process.execPath, ["--snapshot-blob", blob, "--build-snapshot", entry]);
  const reply = JSON.stringify({
    interfaces: [
      { name: "mgy0123456789ab", mac: "ee:ee:ee:ee:ee:ee" },
      { name: "eth0", mac: "02:00:00:00:00:01", sandbox: "/proc/1/ns/net" },
    ],
    ips: [{ address: "10.1.0.5/32", gateway: "169.254.1.1", interface: 1 }],
    routes: [{ dst: "0.0.0.0/0", gw: "169.254.1.1" }],
    mac: "02:00:00:00:00:01",
    hostInterface: "mgy0123456789ab",
    endpoint: { namespace: "default", name: "n-k8s-p-eth0", revision: "1" },
  });
  const socket = join(dir, "start", "agent.sock");
  const agent = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(reply) });
      res.end(reply);
    });
  });
  await new Promise<void>((r) => agent.listen(socket, r));
  const env = {
    ...DEFAULT_PLUGIN_ENV,
    CNI_COMMAND: "ADD",
    CNI_CONTAINERID: "start-1",
    CNI_NETNS: "/proc/self/ns/net",
    CNI_IFNAME: "eth0",
    CNI_PATH: dir,
  };
  const conf = JSON.stringify({ cniVersion: "1.0.0", name: "start", type: "margay", agent_socket: socket });
  const variants: Record<string, readonly string[]> = {
    codeCache: [shipped],
    noCache: [process.execPath, raw],
    snapshot: [process.execPath, "--snapshot-blob", blob],
  };
  try {
    for (const argv of Object.values(variants)) await proc(argv, env, conf); // writes the code cache
    const r: Record<string, number[]> = { node: [], codeCache: [], noCache: [], snapshot: [] };
    for (let i = 0; i < cycles; i++) {
      r.node!.push(await proc([process.execPath, "-e", "0"], { ...DEFAULT_PLUGIN_ENV }, ""));
      for (const [k, argv] of Object.entries(variants)) r[k]!.push(await proc(argv, env, conf));
    }
    return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, summarize(v)]));
  } finally {
    agent.close();
  }
}

const pct = (xs: readonly number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

async function main() {
  const dir = await mkdtemp(join(tmpdir(), "margay-cni-plugin-bench-"));
  const binDir = join(dir, "bin");
  await buildMargayPluginBundle(join(binDir, "margay"));
  const lab = await createClusterLab({
    hosts: 1,
    router: false,
    datastore: "memory",
    prefix: "mgbp",
    agentBinary: await buildAgentBundle(dir),
    agentEnv: {
      MARGAY_NETWORKING_BACKEND: "none",
      MARGAY_IPV4POOL_CIDR: "10.249.0.0/16",
      MARGAY_METRICS_ENABLED: "true",
      MARGAY_METRICS_PORT: String(METRICS_PORT),
      MARGAY_LOG_LEVEL: "warn",
    },
  });
  const host = lab.hosts[0]!;
  const pods: TestNetns[] = [];
  try {
    await lab.exec(host.ns, ["true"]);
    const env = { ...DEFAULT_PLUGIN_ENV };
    const launcher = ["ip", "netns", "exec", host.ns];
    // Generous deadlines: on a loaded machine a burst may outlast the defaults (60 s), and a timed-out
    // ADD would end the run instead of being measured.
    const runtime = createCniRuntime({
      path: [binDir, DEBIAN],
      cacheDir: join(dir, "cache"),
      launcher,
      env,
      timeoutMs: 330_000,
    });
    const margay: NetConfList = {
      cniVersion: "1.0.0",
      name: "bench-margay",
      plugins: [
        {
          type: "margay",
          agent_socket: host.socket,
          state_dir: host.stateDir,
          ipam: { type: "margay" },
          add_timeout_seconds: 300,
        },
      ],
    };
    const ptp: NetConfList = {
      cniVersion: "1.0.0",
      name: "bench-ptp",
      plugins: [
        {
          type: "ptp",
          ipMasq: false,
          ipam: { type: "host-local", dataDir: join(dir, "hl"), ranges: [[{ subnet: "10.250.0.0/16" }]] },
        } as NetConfList["plugins"][number],
      ],
    };
    const pod = await createNetns("mgbp-pod");
    pods.push(pod);
    // A fresh container id per cycle, as a runtime gives each new sandbox: re-adding the attachment just
    // deleted stalls the agent's dataplane (see the plugin README's Limits), which is not what is timed here.
    let seq = 0;
    const cycle = (l: NetConfList) =>
      time(async () => {
        const rt = { containerId: `bench-${seq++}`, netns: pod.path, ifname: "eth0" };
        await runtime.addNetworkList(l, rt);
        await runtime.delNetworkList(l, rt);
      });
    const client = createWorkloadClient(host.socket);
    const agentCycle = () =>
      time(async () => {
        const containerId = `bench-direct-${seq++}`;
        await client.add({ containerId, ifName: "eth0", netns: pod.path });
        await client.del({ containerId, ifName: "eth0", netns: pod.path });
      });
    const bin = join(binDir, "margay");
    const version = () =>
      time(() =>
        execPlugin(bin, { command: "VERSION", path: [binDir] }, JSON.stringify({ cniVersion: "1.0.0" }), {
          env,
        }),
      );
    const nodeFloor = () => time(() => run(process.execPath, ["-e", "0"], { env }));

    const metrics = async () => {
      const p = await lab.probeIn(host.ns);
      const res = await p.httpGet(`http://${host.ip}:${METRICS_PORT}/metrics`, 5_000);
      const out: Record<string, { sum: number; count: number }> = {};
      for (const line of (res?.body ?? "").split("\n")) {
        const m = /^margay_workload_add_seconds_(sum|count)\{step="([a-z-]+)"\} ([0-9.e+-]+)$/.exec(line);
        if (m === null) continue;
        out[m[2]!] ??= { sum: 0, count: 0 };
        out[m[2]!]![m[1] as "sum" | "count"] = Number(m[3]);
      }
      return out;
    };

    // Warm-up: code cache written by the first ADD, page cache, host-local's directory.
    for (let i = 0; i < 3; i++) {
      await cycle(margay);
      await cycle(ptp);
    }
    const r = {
      margay: [] as number[],
      ptp: [] as number[],
      agent: [] as number[],
      version: [] as number[],
      node: [] as number[],
    };
    const m0 = await metrics();
    for (let i = 0; i < CYCLES; i++) {
      r.margay.push(await cycle(margay));
      r.ptp.push(await cycle(ptp));
      r.agent.push(await agentCycle());
      r.version.push(await version());
      r.node.push(await nodeFloor());
    }
    const m1 = await metrics();
    const stepMs = Object.fromEntries(
      Object.keys(m1).map((k) => {
        const dc = m1[k]!.count - (m0[k]?.count ?? 0);
        return [k, dc === 0 ? 0 : ((m1[k]!.sum - (m0[k]?.sum ?? 0)) / dc) * 1000];
      }),
    );

    // The plugin's start: code cache vs no cache vs V8 startup snapshot (fresh processes, same run).
    const start = await startVariants(dir, bin, CYCLES * 2);

    // A burst of concurrent ADDs on one host (each a fresh plugin process), then their DELs.
    const burstNs: TestNetns[] = [];
    for (let i = 0; i < BURST; i++) burstNs.push(await createNetns("mgbp-burst"));
    pods.push(...burstNs);
    const burstRt = burstNs.map((n, i) => ({ containerId: `burst-${i}`, netns: n.path, ifname: "eth0" }));
    const tBurst = performance.now();
    const burst = await Promise.all(burstRt.map((x) => time(() => runtime.addNetworkList(margay, x))));
    const burstWall = performance.now() - tBurst;
    await Promise.all(burstRt.map((x) => runtime.delNetworkList(margay, x)));

    // 100 pods on one host, added as a kubelet would (parallel pod workers), until all are networked.
    const podNs: TestNetns[] = [];
    for (let i = 0; i < PODS; i++) podNs.push(await createNetns("mgbp-p"));
    pods.push(...podNs);
    const podRt = podNs.map((n, i) => ({
      containerId: `pod-${i}`,
      netns: n.path,
      ifname: "eth0",
      args: { K8S_POD_NAMESPACE: "default", K8S_POD_NAME: `pod-${i}` },
    }));
    const t100 = performance.now();
    let next = 0;
    const worker = async () => {
      while (next < podRt.length) await runtime.addNetworkList(margay, podRt[next++]!);
    };
    await Promise.all(Array.from({ length: 10 }, worker));
    const podsWall = performance.now() - t100;
    // DELs as the ADDs: 10 at a time (a kubelet's pod workers), not a hundred processes at once.
    let nextDel = 0;
    const delWorker = async () => {
      while (nextDel < podRt.length) await runtime.delNetworkList(margay, podRt[nextDel++]!);
    };
    await Promise.all(Array.from({ length: 10 }, delWorker));

    const s = Object.fromEntries(Object.entries(r).map(([k, v]) => [k, summarize(v)])) as Record<
      keyof typeof r,
      ReturnType<typeof summarize>
    >;
    const f = (x: number) => x.toFixed(1).padStart(8);
    console.log(`margay CNI plugin benchmark, ${CYCLES} interleaved cycles (ms)`);
    console.log(`${"".padEnd(40)}${"median".padStart(8)}${"min".padStart(9)}${"max".padStart(9)}`);
    const rows: [string, ReturnType<typeof summarize>][] = [
      ["margay + agent        ADD+DEL", s.margay],
      ["ptp + host-local      ADD+DEL", s.ptp],
      ["agent work (API add+del, no process)", s.agent],
      ["margay VERSION (process start)", s.version],
      ["node -e 0 (floor)", s.node],
    ];
    for (const [name, st] of rows) console.log(`${name.padEnd(40)}${f(st.median)} ${f(st.min)} ${f(st.max)}`);
    console.log(
      `agent ADD steps (mean ms): ${Object.entries(stepMs)
        .map(([k, v]) => `${k} ${v.toFixed(1)}`)
        .join(", ")}`,
    );
    console.log(
      `plugin start, ADD against a stand-in agent that answers at once (${CYCLES * 2} fresh processes each, ms)`,
    );
    for (const [name, st] of [
      ["node -e 0 (floor)", start.node!],
      ["shipped: V8 code cache", start.codeCache!],
      ["same bundle, no code cache", start.noCache!],
      ["V8 startup snapshot (--snapshot-blob)", start.snapshot!],
    ] as const)
      console.log(
        `${name.padEnd(40)}${f(st.median)} ${f(st.min)} ${f(st.max)}   over node: ${(st.median - start.node!.median).toFixed(1)} median, ${(st.min - start.node!.min).toFixed(1)} at the minima`,
      );
    const ratios = {
      cycleMargayOverPtp: s.margay.median / s.ptp.median,
      pluginStartOverNodeMs: s.version.median - s.node.median,
      pluginStartOverNodeMsAtMin: s.version.min - s.node.min,
      pluginShareOfCycleMs: s.margay.median - s.agent.median,
    };
    console.log(
      `ratio margay / ptp+host-local ADD+DEL: ${ratios.cycleMargayOverPtp.toFixed(2)}x (goal <= 1.5x)`,
    );
    console.log(
      `plugin process over bare node start: ${ratios.pluginStartOverNodeMs.toFixed(1)} ms median, ${ratios.pluginStartOverNodeMsAtMin.toFixed(1)} ms at the minima (goal < 10 ms)`,
    );
    console.log(
      `${BURST} concurrent ADDs: p50 ${pct(burst, 50).toFixed(0)} ms, p99 ${pct(burst, 99).toFixed(0)} ms, max ${Math.max(...burst).toFixed(0)} ms, wall ${burstWall.toFixed(0)} ms (goal p99 < 1 s)`,
    );
    console.log(
      `${PODS} pods on one host (10 parallel workers): all networked in ${(podsWall / 1000).toFixed(1)} s (goal < 10 s)`,
    );
    writeResult("margay-cni-plugin", {
      benchmark: "cni-plugin",
      cycles: CYCLES,
      node: process.version,
      stats: s,
      agentAddStepsMs: stepMs,
      start,
      burst: { n: BURST, samples: burst, p50: pct(burst, 50), p99: pct(burst, 99), wallMs: burstWall },
      pods: { n: PODS, workers: 10, wallMs: podsWall },
      ratios,
    });
  } finally {
    for (const p of pods) await p.close().catch(() => undefined);
    await lab.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
