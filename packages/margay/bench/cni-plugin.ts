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

import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createCniRuntime, DEFAULT_PLUGIN_ENV, execPlugin, type NetConfList } from "@margay/cni";
import { createNetns, type TestNetns } from "@margay/cni/testing";
import { size, summarize, writeResult } from "../../../scripts/bench-kit.js";
import { buildMargayPluginBundle } from "../src/cni/plugin/build-bundle.js";
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
    const runtime = createCniRuntime({ path: [binDir, DEBIAN], cacheDir: join(dir, "cache"), launcher, env });
    const margay: NetConfList = {
      cniVersion: "1.0.0",
      name: "bench-margay",
      plugins: [
        { type: "margay", agent_socket: host.socket, state_dir: host.stateDir, ipam: { type: "margay" } },
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
    const rt = { containerId: "bench-1", netns: pod.path, ifname: "eth0" };
    const cycle = (l: NetConfList) =>
      time(async () => {
        await runtime.addNetworkList(l, rt);
        await runtime.delNetworkList(l, rt);
      });
    const client = createWorkloadClient(host.socket);
    const agentCycle = () =>
      time(async () => {
        await client.add({ containerId: "bench-direct", ifName: "eth0", netns: pod.path });
        await client.del({ containerId: "bench-direct", ifName: "eth0", netns: pod.path });
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
