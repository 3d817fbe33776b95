/**
 * `margay-node` on the cluster lab (issue 13's benchmarks): real agents (the built bundle) in host
 * namespaces, etcd, the BGP mesh, pods added through the workload API client as the CNI plugin adds them.
 *
 * 1. network-ready: workload add → the pod answers a ping from a pod on another host (`ping -D -i 0.005`
 *    started before the add, so the figure is ping's own receive time − the add's start); its parts from
 *    the agent's `margay_workload_add_seconds{step}` (scraped before and after each add, adds one at a
 *    time) and the remote host's route (`ip -ts monitor route`). The pod's block is pre-allocated (a
 *    warm-up pod), so the remote route is the block route, installed before the add: recorded as such.
 * 2. policy: a NetworkPolicy update in etcd → the probe flips on every host. Only allow-direction changes
 *    are timed: each change follows a deny and fresh pings (new ICMP ids), because conntrack keeps an
 *    established flow through a deny (as Calico does), so a running probe never flips the other way.
 *    The agents' own `margay_time_to_enforce_seconds` means (every change, both directions) beside it.
 * 3. BGP convergence: pods in a pool of /31 blocks, so every other pod claims a new block; time from the
 *    add's start (and from its reply) until every other host has a route covering it.
 * 4. scale: 10,000 WorkloadEndpoints (250 on the measured host, with real veths; the rest on fictitious
 *    nodes with Nodes and claimed blocks) and 1,000 NetworkPolicies written into etcd, then one agent
 *    (VXLAN backend) started: time to /readyz, RSS (VmRSS, VmHWM) and CPU (utime+stime) from /proc.
 *
 * Needs root. Writes `agent.json` (scripts/bench-kit.ts). `BENCH_QUICK=1` (or `--quick`): tiny sizes.
 * `--into bench-results/benchmarks.json`: also store the result as `packages.margay.results.agent` of
 * that run file (this bench run on its own, after the full run). Timings never go into test assertions.
 */
import { spawnSync } from "node:child_process";
import { copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { readFileSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { API_VERSION, workloadInterfaceName } from "@margay/api";
import type { Datastore, StoredObject } from "@margay/datastore";
import { createIpam } from "@margay/ipam";
import { convertNamespace, convertNetworkPolicy } from "@margay/policy";
import { repoRoot, writeResult } from "../../../scripts/bench-kit.js";
import { pool } from "../src/node/e2e-support.js";
import { createWorkloadClient } from "../src/node/workload/client.js";
import { attachmentIdentity, buildWorkloadEndpoint } from "../src/node/workload/endpoint.js";
import {
  type ClusterLab,
  createClusterLab,
  type LabHost,
  type LabPod,
  waitFor,
} from "../src/testing/index.js";
import {
  covers,
  findAgentPid,
  inParallel,
  parseMetrics,
  procSample,
  type Stats,
  startPing,
  startRouteMonitor,
  stats,
} from "./agent-kit.js";

const QUICK = process.env.BENCH_QUICK === "1" || process.argv.includes("--quick");
const pick = <T>(full: T, tiny: T): T => (QUICK ? tiny : full);
const arg = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};

const SIZES = {
  readyPods: pick(50, 4),
  policyChanges: pick(20, 3),
  bgpBlocks: pick(20, 2),
  endpoints: pick(10_000, 500),
  policies: pick(1_000, 50),
  localEndpoints: pick(250, 25),
  fakeNodes: pick(39, 3),
  namespaces: pick(50, 5),
  steadySeconds: pick(30, 3),
};
const METRICS_PORT = 9091;
const READY_POOL = "10.244.0.0/16";
const FRESH_POOL = "10.246.0.0/16";
const SCALE_POOL = "10.250.0.0/16";
/** The goals (not peers: nothing else runs here). */
const GOALS = { networkReadyP99Ms: 1_000, policyP99Ms: 500, rssMiB: 150 };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (s: string) => process.stderr.write(`[agent bench] ${s}\n`);

/** Stages of one add, ms, from the agent's histogram (sum delta of one add). */
const STEPS = ["ipam", "plumb", "endpoint-write", "programmed", "total"] as const;

async function scrape(lab: ClusterLab, host: LabHost): Promise<Map<string, number>> {
  const p = await lab.probeIn(host.ns);
  const res = await p.httpGet(`http://${host.ip}:${METRICS_PORT}/metrics`, 10_000);
  if (res === undefined || res.status !== 200) throw new Error(`no /metrics from ${host.name}`);
  return parseMetrics(res.body);
}

/** A pod namespace of the bench's own (named under the lab's, so a stale-lab sweep removes it too). */
async function podNamespace(lab: ClusterLab, made: string[], tag: string): Promise<string> {
  const ns = `${lab.name}-${tag}`;
  const r = spawnSync("ip", ["netns", "add", ns]);
  if (r.status !== 0) throw new Error(`ip netns add ${ns}: ${r.stderr}`);
  made.push(ns);
  spawnSync("ip", ["-n", ns, "link", "set", "lo", "up"]);
  return ns;
}

const nextV4 = (ip: string) => {
  const n = ip.split(".").reduce((a, o) => a * 256 + Number(o), 0) + 1;
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
};

// ---------------------------------------------------------------- 1–3: three hosts, BGP mesh

async function clusterPhases(agentBinary: string, made: string[]) {
  const lab = await createClusterLab({
    hosts: 3,
    startAgents: false,
    prefix: "mgab",
    agentBinary,
    agentEnv: {
      MARGAY_NETWORKING_BACKEND: "bgp",
      NO_DEFAULT_POOLS: "true",
      MARGAY_METRICS_ENABLED: "true",
      MARGAY_METRICS_PORT: String(METRICS_PORT),
      MARGAY_LOG_LEVEL: "warn",
    },
  });
  const monitors: ReturnType<typeof startRouteMonitor>[] = [];
  try {
    const ds = lab.datastore();
    await ds.create(pool("ready", READY_POOL));
    await ds.create(pool("fresh", FRESH_POOL, { blockSize: 31 }));
    for (const h of lab.hosts) lab.startAgent(h);
    for (const h of lab.hosts) await lab.waitReady(h, { timeoutMs: 180_000 });
    const [h1, h2, h3] = lab.hosts as [LabHost, LabHost, LabHost];
    for (const h of [h1, h2, h3]) monitors.push(startRouteMonitor(h.ns));
    await Promise.all(monitors.map((m) => m.ready));
    const mon2 = monitors[1]!;

    // The prober (also the policy phase's client) on host2; a warm-up pod claims host1's block.
    const prober = await lab.addPod(h2, { name: "prober", labels: { role: "client" }, pools: ["ready"] });
    const warm = await lab.addPod(h1, { name: "warm", pools: ["ready"] });
    await waitFor(
      "the mesh to carry host1's block to host2",
      () => lab.canReach(prober, warm, { proto: "icmp" }),
      {
        timeoutMs: 180_000,
        intervalMs: 500,
      },
    );
    const clients = new Map(
      [h1, h2, h3].map((h) => [h, createWorkloadClient(h.socket, { timeoutMs: 60_000 })]),
    );
    const add = (ns: string, name: string, pools: string[], host: LabHost = h1) =>
      clients.get(host)!.add({
        containerId: `${ns}-c`,
        ifName: "eth0",
        namespace: "default",
        pod: name,
        netns: `/run/netns/${ns}`,
        pools,
      });

    // ---- 1. network-ready
    log(`network-ready: ${SIZES.readyPods} pods on host1, probed from host2`);
    const ready: {
      readyMs: number;
      replyMs: number;
      steps: Record<string, number>;
      remoteRouteMs: number;
      remoteRoutePreinstalled: boolean;
    }[] = [];
    let mispredicted = 0;
    let predicted = nextV4(warm.ip);
    for (let i = 0; ready.length < SIZES.readyPods && i < SIZES.readyPods * 2; i++) {
      const ns = await podNamespace(lab, made, `r${i}`);
      const m0 = await scrape(lab, h1);
      const routeBefore = (await lab.routes(h2)).some(
        (r) => r.type !== "blackhole" && r.dst !== "default" && covers(r.dst, predicted),
      );
      const ping = startPing(prober.ns, predicted, 0.005);
      try {
        await ping.started;
        const t0 = Date.now();
        const reply = await add(ns, `ready-${i}`, ["ready"]);
        const tReply = Date.now();
        const ip = reply.ips[0]!.address.split("/")[0]!;
        if (ip !== predicted) {
          // IPAM chose another address than the next one: this ping is aimed wrong; not a sample.
          mispredicted += 1;
          predicted = nextV4(ip);
          continue;
        }
        predicted = nextV4(ip);
        const first = await ping.firstReplyAfter(t0, 60_000);
        if (first === undefined) throw new Error(`pod ${ip} never answered host2's prober`);
        const m1 = await scrape(lab, h1);
        const steps = Object.fromEntries(
          STEPS.map((s) => {
            const k = `margay_workload_add_seconds_sum{step="${s}"}`;
            return [s, ((m1.get(k) ?? 0) - (m0.get(k) ?? 0)) * 1000];
          }),
        );
        const seen = routeBefore ? undefined : await mon2.covering(ip, t0, 30_000);
        ready.push({
          readyMs: first - t0,
          replyMs: tReply - t0,
          steps,
          remoteRouteMs: routeBefore ? 0 : seen === undefined ? NaN : seen.ts - tReply,
          remoteRoutePreinstalled: routeBefore,
        });
      } finally {
        ping.close();
      }
    }

    // ---- 2. policy
    log(`policy: ${SIZES.policyChanges} changes, a target on each host`);
    const targets: LabPod[] = [];
    for (const [k, h] of [h1, h2, h3].entries())
      targets.push(
        await lab.addPod(h, { name: `target${k + 1}`, labels: { role: "bench-target" }, pools: ["ready"] }),
      );
    const policy = (allow: boolean) =>
      convertNetworkPolicy({
        metadata: { name: "bench-policy", namespace: "default" },
        spec: {
          podSelector: { matchLabels: { role: "bench-target" } },
          policyTypes: ["Ingress"],
          ingress: allow ? [{ from: [{ podSelector: { matchLabels: { role: "client" } } }] }] : [],
        },
      }) as unknown as StoredObject;
    const enforceBefore = await Promise.all(lab.hosts.map((h) => scrape(lab, h)));
    await ds.create(policy(false));
    const policyAll: number[] = [];
    const policyPerHost: Record<string, number[]> = { host1: [], host2: [], host3: [] };
    let retries = 0;
    for (let i = 0; i < SIZES.policyChanges; ) {
      await sleep(1_000);
      const pings = targets.map((t) => startPing(prober.ns, t.ip, 0.01));
      try {
        await Promise.all(pings.map((p) => p.started));
        await sleep(400);
        if (pings.some((p) => p.replies.length > 0)) {
          // The deny is not in force yet for fresh flows; try again.
          retries += 1;
          if (retries > 50) throw new Error("the deny policy never stopped fresh pings");
          continue;
        }
        const t0 = Date.now();
        await ds.update(policy(true));
        const firsts = await Promise.all(pings.map((p) => p.firstReplyAfter(t0, 60_000)));
        if (firsts.some((f) => f === undefined))
          throw new Error("a target never became reachable after the allow");
        const per = firsts.map((f) => f! - t0);
        for (const [k, ms] of per.entries()) policyPerHost[`host${k + 1}`]!.push(ms);
        policyAll.push(Math.max(...per));
        i += 1;
      } finally {
        for (const p of pings) p.close();
      }
      await ds.update(policy(false));
    }
    await sleep(1_000);
    const enforceAfter = await Promise.all(lab.hosts.map((h) => scrape(lab, h)));
    const enforceMeanMs = Object.fromEntries(
      lab.hosts.map((h, k) => {
        const d = (n: string) => (enforceAfter[k]!.get(n) ?? 0) - (enforceBefore[k]!.get(n) ?? 0);
        const c = d("margay_time_to_enforce_seconds_count");
        return [
          h.name,
          c > 0 ? { changes: c, meanMs: (d("margay_time_to_enforce_seconds_sum") / c) * 1000 } : null,
        ];
      }),
    );

    // ---- 3. BGP convergence of new blocks
    log(`bgp: ${SIZES.bgpBlocks} new /31 blocks, owners in turn, routes awaited on the other hosts`);
    // A BIRD top-of-rack peer of every host: when it holds the owner's path for the new block, its
    // speaker has exported it over BGP (the hosts' own routes to it come from the datastore first).
    const tor = await lab.addBirdPeer({ asNumber: 64513 });
    await ds.create({
      apiVersion: API_VERSION,
      kind: "BGPPeer",
      metadata: { name: "tor" },
      spec: { peerIP: tor.address, asNumber: 64513 },
    } as StoredObject);
    await waitFor(
      "BIRD's sessions to every host Established",
      async () => Object.values(await tor.sessions()).every((st) => st === "Established"),
      { timeoutMs: 120_000, intervalMs: 500 },
    );
    const bgpPeerFromAdd: number[] = [];
    const birdPollMs: number[] = [];
    const bgpFromAdd: number[] = [];
    const bgpFromReply: number[] = [];
    const protos: Record<string, number> = {};
    for (let i = 0; bgpFromAdd.length < SIZES.bgpBlocks && i < SIZES.bgpBlocks * 4; i++) {
      const ns = await podNamespace(lab, made, `b${i}`);
      // Owners take turns (IPAM caps blocks per host at 20, as Calico's maxBlocksPerHost).
      const owner = [h1, h2, h3][i % 3]!;
      const others = monitors.filter((_, k) => k !== i % 3);
      // BIRD is polled from the add's start on (host1's prefixes at each poll's end), beside the add.
      const snapshots: { t: number; prefixes: string[] }[] = [];
      let stop = false;
      const t0 = Date.now();
      const poller = (async () => {
        while (!stop && Date.now() - t0 < 60_000) {
          const tPoll = Date.now();
          const paths = await tor.paths();
          birdPollMs.push(Date.now() - tPoll);
          snapshots.push({
            t: Date.now(),
            prefixes: paths.filter((r) => r.protocol === owner.name).map((r) => r.prefix),
          });
        }
      })();
      const reply = await add(ns, `fresh-${i}`, ["fresh"], owner).catch(async (e) => {
        stop = true;
        await poller;
        throw e;
      });
      const tReply = Date.now();
      const ip = reply.ips[0]!.address.split("/")[0]!;
      // The second address of a /31 lands in a block announced before: not a new block.
      if (others.some((m) => m.events.some((e) => e.ts < t0 && covers(e.dst, ip)))) {
        stop = true;
        await poller;
        continue;
      }
      const seen = await Promise.all(others.map((m) => m.covering(ip, t0 - 1, 60_000)));
      if (seen.some((s) => s === undefined))
        throw new Error(`no route to the new block of ${ip} on every other host`);
      await waitFor(
        "BIRD to learn the new block",
        () => snapshots.some((x) => x.prefixes.some((p) => covers(p, ip))),
        {
          timeoutMs: 60_000,
          intervalMs: 20,
        },
      ).finally(() => {
        stop = true;
      });
      await poller;
      const tBird = snapshots.find((x) => x.prefixes.some((p) => covers(p, ip)))!.t;
      bgpPeerFromAdd.push(tBird - t0);
      const last = Math.max(...seen.map((s) => s!.ts));
      bgpFromAdd.push(last - t0);
      bgpFromReply.push(last - tReply);
      for (const s of seen) protos[s!.proto ?? "(none)"] = (protos[s!.proto ?? "(none)"] ?? 0) + 1;
    }

    return {
      networkReady: {
        pods: ready.length,
        mispredicted,
        readyMs: stats(ready.map((r) => r.readyMs)),
        addReplyMs: stats(ready.map((r) => r.replyMs)),
        stepsMs: Object.fromEntries(STEPS.map((s) => [s, stats(ready.map((r) => r.steps[s]!))])),
        afterReplyMs: stats(ready.map((r) => r.readyMs - r.replyMs)),
        remoteRouteMs: stats(ready.map((r) => r.remoteRouteMs)),
        remoteRoutePreinstalled: ready.filter((r) => r.remoteRoutePreinstalled).length,
      },
      policy: {
        changes: policyAll.length,
        allHostsMs: stats(policyAll),
        perHostMs: Object.fromEntries(Object.entries(policyPerHost).map(([k, v]) => [k, stats(v)])),
        denyRetries: retries,
        agentTimeToEnforce: enforceMeanMs,
      },
      bgp: {
        blocks: bgpFromAdd.length,
        fromAddMs: stats(bgpFromAdd),
        fromReplyMs: stats(bgpFromReply),
        routeProtocols: protos,
        bgpPeerFromAddMs: stats(bgpPeerFromAdd),
        birdPollMs: stats(birdPollMs),
      },
    };
  } catch (e) {
    const tails = await Promise.all(
      lab.hosts.map(async (h) => `--- ${h.name}\n${(await lab.logs(h)).slice(-2000)}`),
    );
    throw new Error(`${e instanceof Error ? e.message : String(e)}\n${tails.join("\n")}`, { cause: e });
  } finally {
    for (const m of monitors) m.close();
    await lab.close();
  }
}

// ---------------------------------------------------------------- 4: one agent at scale

async function scalePhase(agentBinary: string) {
  const lab = await createClusterLab({
    hosts: 1,
    router: false,
    startAgents: false,
    prefix: "mgas",
    agentBinary,
    namespaceProfiles: false,
    agentEnv: { MARGAY_NETWORKING_BACKEND: "vxlan", NO_DEFAULT_POOLS: "true", MARGAY_LOG_LEVEL: "warn" },
  });
  try {
    const host = lab.hosts[0]!;
    const ds: Datastore = lab.datastore();
    await ds.create(pool("scale", SCALE_POOL, { vxlanMode: "Always" }));
    const ipam = createIpam({ datastore: ds });
    const t0 = Date.now();
    const nsName = (j: number) => `ns-${String(j % SIZES.namespaces).padStart(2, "0")}`;
    const objects: StoredObject[] = [];
    for (let j = 0; j < SIZES.namespaces; j++)
      objects.push(convertNamespace({ metadata: { name: nsName(j) } }) as unknown as StoredObject);
    // Fictitious nodes on subnet A, each with a /24 of claimed /26 blocks and a VXLAN tunnel address.
    const fake = Array.from({ length: SIZES.fakeNodes }, (_, k) => `fake${String(k + 1).padStart(2, "0")}`);
    for (const [k, name] of fake.entries()) {
      await ds.create({
        apiVersion: API_VERSION,
        kind: "Node",
        metadata: { name },
        spec: {
          addresses: [{ address: `10.77.0.${100 + k}/24`, type: "CalicoNodeIP" }],
          bgp: { ipv4Address: `10.77.0.${100 + k}/24` },
          ipv4VXLANTunnelAddr: `10.250.${k + 1}.0`,
          vxlanTunnelMACAddr: `66:ee:00:00:00:${(k + 1).toString(16).padStart(2, "0")}`,
        },
      } as unknown as StoredObject);
      await ipam.claimAffinity(`10.250.${k + 1}.0/24`, name);
    }
    await ipam.claimAffinity("10.250.200.0/24", host.name);
    const remote = SIZES.endpoints - SIZES.localEndpoints;
    const perNode = Math.ceil(remote / fake.length);
    const local: { iface: string }[] = [];
    for (let j = 0; j < SIZES.endpoints; j++) {
      const isLocal = j < SIZES.localEndpoints;
      const r = j - SIZES.localEndpoints;
      const node = isLocal ? host.name : fake[Math.floor(r / perNode)]!;
      const ip = isLocal
        ? `10.250.200.${j + 2}`
        : `10.250.${Math.floor(r / perNode) + 1}.${(r % perNode) + 1}`;
      const namespace = nsName(j);
      const id = attachmentIdentity(node, {
        containerId: `bench-${j}`,
        ifName: "eth0",
        namespace,
        pod: `pod-${j}`,
        workload: undefined,
        endpoint: "eth0",
      });
      const iface = workloadInterfaceName(id.iface);
      if (isLocal) local.push({ iface });
      objects.push(
        buildWorkloadEndpoint(id, {
          node,
          containerId: `bench-${j}`,
          ifName: "eth0",
          interfaceName: iface,
          ips: [ip],
          mac: "",
          labels: { app: `app-${Math.floor(j / SIZES.namespaces) % 20}` },
        }) as unknown as StoredObject,
      );
    }
    for (let p = 0; p < SIZES.policies; p++) {
      const app = Math.floor(p / SIZES.namespaces) % 20;
      objects.push(
        convertNetworkPolicy({
          metadata: { name: `pol-${p}`, namespace: nsName(p) },
          spec: {
            podSelector: { matchLabels: { app: `app-${app}` } },
            policyTypes: ["Ingress"],
            ingress: [
              {
                from: [{ podSelector: { matchLabels: { app: `app-${(app + 1) % 20}` } } }],
                ports: [{ protocol: "TCP", port: 8000 + (p % 5) }],
              },
            ],
          },
        }) as unknown as StoredObject,
      );
    }
    await inParallel(objects, 32, (o) => ds.create(o));
    // The local endpoints' host-side veths exist, as they would after CNI adds.
    const batch = join(lab.dir, "veths.batch");
    await writeFile(
      batch,
      local
        .map(
          (l, i) =>
            `link add ${l.iface} type veth peer name bp${i}\nlink set ${l.iface} up\nlink set bp${i} up\n`,
        )
        .join(""),
    );
    const b = spawnSync("ip", ["-n", host.ns, "-batch", batch], { encoding: "utf8" });
    if (b.status !== 0) throw new Error(`ip -batch: ${b.stderr}`);
    const writeSeconds = (Date.now() - t0) / 1000;
    log(`scale: wrote ${objects.length} objects in ${writeSeconds.toFixed(1)} s; starting the agent`);

    const tStart = Date.now();
    lab.startAgent(host);
    const pid = await waitFor("the agent's pid", () => findAgentPid(host.socket), {
      timeoutMs: 30_000,
      intervalMs: 50,
    });
    await lab.waitReady(host, { timeoutMs: 900_000, intervalMs: 100 });
    const inSyncSeconds = (Date.now() - tStart) / 1000;
    const atReady = procSample(pid);
    await sleep(SIZES.steadySeconds * 1000);
    const steady = procSample(pid);
    const routes = (await lab.routes(host)).length;
    const nftLines = (await lab.exec(host.ns, ["nft", "list", "ruleset"], { timeoutMs: 120_000 })).split(
      "\n",
    ).length;
    await ipam.close();
    return {
      endpoints: SIZES.endpoints,
      localEndpoints: SIZES.localEndpoints,
      policies: SIZES.policies,
      namespaces: SIZES.namespaces,
      fictitiousNodes: fake.length,
      backend: "vxlan",
      writeSeconds,
      inSyncSeconds,
      cpuSecondsToInSync: atReady.cpuSeconds,
      rssMiBAtReady: atReady.rssBytes / 2 ** 20,
      rssMiBSteady: steady.rssBytes / 2 ** 20,
      hwmMiB: steady.hwmBytes / 2 ** 20,
      steadySeconds: SIZES.steadySeconds,
      cpuPercentSteady: ((steady.cpuSeconds - atReady.cpuSeconds) / SIZES.steadySeconds) * 100,
      hostRoutes: routes,
      nftRulesetLines: nftLines,
    };
  } finally {
    await lab.close();
  }
}

// ---------------------------------------------------------------- output

function printTable(r: Awaited<ReturnType<typeof clusterPhases>>, s: Awaited<ReturnType<typeof scalePhase>>) {
  const f = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "—");
  const row = (name: string, st: Stats) =>
    `${name.padEnd(44)} ${String(st.n).padStart(4)} ${f(st.min).padStart(9)} ${f(st.median).padStart(9)} ${f(st.p99).padStart(9)} ${f(st.max).padStart(9)}`;
  const lines = [
    `${"ms".padEnd(44)} ${"n".padStart(4)} ${"min".padStart(9)} ${"median".padStart(9)} ${"p99".padStart(9)} ${"max".padStart(9)}`,
    row("network-ready (add → ping from host2)", r.networkReady.readyMs),
    row("  add reply (client)", r.networkReady.addReplyMs),
    ...STEPS.map((k) => row(`  agent step: ${k}`, r.networkReady.stepsMs[k]!)),
    row("  reply → reachable", r.networkReady.afterReplyMs),
    row("  remote route (0 = block route pre-installed)", r.networkReady.remoteRouteMs),
    row("policy allow → enforced on all 3 hosts", r.policy.allHostsMs),
    ...Object.entries(r.policy.perHostMs).map(([h, st]) => row(`  ${h}`, st)),
    row("new block → route on both other hosts (add)", r.bgp.fromAddMs),
    row("  same, from the add reply", r.bgp.fromReplyMs),
    row("new block → BIRD holds the owner's path (add)", r.bgp.bgpPeerFromAddMs),
    row("  one birdc poll (resolution)", r.bgp.birdPollMs),
  ];
  console.log(lines.join("\n"));
  console.log(
    `scale: ${s.endpoints} endpoints (${s.localEndpoints} local), ${s.policies} policies: in sync ${s.inSyncSeconds.toFixed(1)} s, ` +
      `RSS ${s.rssMiBSteady.toFixed(1)} MiB (peak ${s.hwmMiB.toFixed(1)}), CPU to in-sync ${s.cpuSecondsToInSync.toFixed(1)} s, steady ${s.cpuPercentSteady.toFixed(1)} %`,
  );
}

async function main() {
  const loadStart = loadavg();
  const startedAt = new Date().toISOString();
  const dir = await mkdtemp(join(tmpdir(), "margay-agent-bench-"));
  const made: string[] = [];
  try {
    // A copy of the built bundle: a rebuild of dist during the run cannot pull it from under the agents.
    const agentBinary = join(dir, "margay-node.cjs");
    await copyFile(join(repoRoot, "packages", "margay", "dist", "bin", "margay-node.cjs"), agentBinary);
    const cluster = await clusterPhases(agentBinary, made);
    for (const ns of made.splice(0)) spawnSync("ip", ["netns", "del", ns]);
    const scale = await scalePhase(agentBinary);
    const loadEnd = loadavg();
    const result = {
      startedAt,
      finishedAt: new Date().toISOString(),
      loadAverageAtStart: loadStart,
      loadAverageAtEnd: loadEnd,
      quick: QUICK,
      hosts: 3,
      goals: GOALS,
      ...cluster,
      scale,
    };
    printTable(cluster, scale);
    console.log(
      `load average (1/5/15 min) at start ${loadStart.map((x) => x.toFixed(2)).join(" ")}, at end ${loadEnd.map((x) => x.toFixed(2)).join(" ")}`,
    );
    writeResult("agent", result);
    const into = arg("into");
    if (into !== undefined) {
      const file = resolve(repoRoot, into);
      const run = JSON.parse(readFileSync(file, "utf8")) as {
        packages: Record<string, { results: Record<string, unknown> }>;
      };
      const margay = run.packages.margay;
      if (margay === undefined) throw new Error(`${file} has no margay package results`);
      margay.results.agent = { name: "agent", date: new Date().toISOString(), ...result };
      writeFileSync(file, `${JSON.stringify(run, null, 2)}\n`);
      console.log(`stored as packages.margay.results.agent in ${file}`);
    }
  } finally {
    for (const ns of made) spawnSync("ip", ["netns", "del", ns]);
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
