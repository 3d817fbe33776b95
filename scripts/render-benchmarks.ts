/**
 * Renders `docs/benchmarks.md` from ONE `npm run bench` run (`bench-results/benchmarks.json`, written by
 * scripts/run-benchmarks.ts). Every figure in the document comes from that file; every comparison word
 * ("faster", "less memory", "within the spread") is derived from the numbers, never typed in.
 *
 *   npm run bench:render -- [--in bench-results/benchmarks.json] [--out docs/benchmarks.md] [--allow-quick]
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { fmt, repoRoot, type Summary } from "./bench-kit.js";
import { loadScaleRun, renderScale, withScaleSection } from "./render-scale.js";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

// ---------------------------------------------------------------- shapes of the benches' JSON

export interface Run {
  quick: boolean;
  startedAt: string;
  finishedAt: string;
  machine: {
    cpuModel: string;
    cores: number;
    memoryBytes: number;
    kernel: string;
    node: string;
    loadAverageAtStart: number[];
    loadAverageAtEnd: number[];
  };
  tools: Record<string, string | null>;
  packages: Record<string, { exitCode: number; seconds: number; results: Record<string, unknown> }>;
}
interface BgpDevice {
  device: string;
  loadSeconds: Summary;
  loadSecondsUpper: Summary;
  propagateSeconds: Summary;
  rssBytesPerRoute: Summary;
  rssBytesPerRouteWithOutbound: Summary;
  heapBytesPerRouteWithOutbound?: Summary;
  pollQueryMs: Summary;
}
interface Bgp {
  routes: number;
  repeat: number;
  pollMs: number;
  generator: string;
  versions: Record<string, string>;
  sinkOnlyControlSeconds: Summary;
  results: BgpDevice[];
}
interface BgpWire {
  prefixes: number;
  repeat: number;
  rows: { name: string; millis: Summary; prefixesPerSecond: number }[];
}
interface Policy {
  cluster: { endpoints: number; policies: number; namespaces: number };
  labelChanges: number;
  samplesPerRun: number;
  runs: number;
  results: {
    scenario: string;
    firstInSyncMs: Summary;
    heapMb: Summary;
    incremental: { changesPerSecond: Summary; changesPerCpuSecond: Summary };
    bruteForce: { changesPerSecond: Summary; changesPerCpuSecond: Summary };
  }[];
}
interface Kube {
  pods: number;
  namespaces: number;
  runs: number;
  endToEnd: {
    initialSyncMs: Summary;
    peakRssMiB: Summary;
    events: number;
    eventsPerSecondEndToEnd: Summary;
    eventsPerAdapterBusySecond: Summary;
  };
  informerList: {
    ours: { name: string; ms: Summary; rssMiB: Summary };
    peer: { name: string; ms: Summary; rssMiB: Summary };
  };
}
interface DpCmp {
  oursMs: Summary;
  naiveRawMs: Summary;
  fairRawMs: Summary;
}
interface Dataplane {
  scale: { routes: number; endpoints: number; policies: number; ipSets: number; nftBytes: number };
  fullSync: DpCmp;
  oneEndpoint: DpCmp;
}
interface DsRow {
  backend: string;
  op: string;
  mode: string;
  baseline?: string;
  opsPerSecSummary: Summary;
}
interface Datastore {
  meta: { etcdStorage: string; rounds: number; concurrency: number };
  rows: DsRow[];
}
interface IpamRow {
  backend: string;
  op: string;
  allocators: number;
  opsPerSecSummary: Summary;
}
interface Ipam {
  rounds: number;
  etcdStorage: string;
  rows: IpamRow[];
}
interface CniStat {
  n: number;
  median: number;
  p90: number;
  min: number;
  max: number;
}
interface Cni {
  cycles: number;
  stats: Record<"hostLocal" | "margay" | "node" | "hlAdd" | "hlDel" | "mgAdd" | "mgDel", CniStat>;
}

/** p50/p99 (nearest rank)/max of calls started at once, ms. */
interface BurstStats {
  n?: number;
  p50: number;
  p99: number;
  max?: number;
  wallMs: number;
}
/** packages/margay/bench/cni-plugin.ts: the `margay` CNI plugin with a real agent on one lab host. */
interface PluginBench {
  cycles: number;
  stats: Record<"margay" | "ptp" | "agent" | "version" | "node", Summary> & { cycleFloor?: Summary };
  agentAddStepsMs: Record<string, number>;
  /** Absent in runs before the agent recorded DEL steps. */
  agentDelStepsMs?: Record<string, number>;
  /** ADD against a stand-in agent that answers at once: the plugin's own start, several ways. */
  start?: Partial<Record<"node" | "minimal" | "codeCache" | "noCache" | "snapshot", Summary>>;
  /** The same processes' CPU time (user + system), mean ms per process. */
  startCpuMsPerProcess?: Partial<Record<"node" | "minimal" | "codeCache" | "noCache" | "snapshot", number>>;
  burst: BurstStats;
  pods: { n: number; workers: number; wallMs: number };
  /** Bare `node -e 0` processes started as the plugin's are (same spawn helper, launcher, detection). */
  floors?: { cycle: Summary; burst: BurstStats; pods: { n: number; workers: number; wallMs: number } };
  goals?: { cycleOverPtp: number; pluginStartOverNodeMs: number; burstP99Ms: number; podsWallMs: number };
  ratios: { cycleMargayOverPtp: number; cycleFloorOverPtp?: number };
}

/** packages/margay/bench/agent.ts: margay-node on the cluster lab (its own run, after the full one). */
interface AgentStats {
  n: number;
  min: number;
  median: number;
  p99: number;
  max: number;
}
interface AgentBench {
  date: string;
  loadAverageAtStart: number[];
  loadAverageAtEnd: number[];
  hosts: number;
  goals: { networkReadyP99Ms: number; policyP99Ms: number; rssMiB: number };
  networkReady: {
    pods: number;
    readyMs: AgentStats;
    addReplyMs: AgentStats;
    stepsMs: Record<string, AgentStats>;
    afterReplyMs: AgentStats;
    remoteRouteMs: AgentStats;
    remoteRoutePreinstalled: number;
  };
  policy: { changes: number; allHostsMs: AgentStats; perHostMs: Record<string, AgentStats> };
  bgp: {
    blocks: number;
    fromAddMs: AgentStats;
    fromReplyMs: AgentStats;
    routeProtocols: Record<string, number>;
    bgpPeerFromAddMs: AgentStats;
    birdPollMs: AgentStats;
  };
  scale: {
    endpoints: number;
    localEndpoints: number;
    policies: number;
    fictitiousNodes: number;
    inSyncSeconds: number;
    cpuSecondsToInSync: number;
    rssMiBSteady: number;
    hwmMiB: number;
    steadySeconds: number;
    cpuPercentSteady: number;
  };
}

// ---------------------------------------------------------------- formatting and derived wording

const num = (x: number, d: number) =>
  x.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
const times = (r: number) => `${num(r, r >= 10 ? 0 : 2)}×`;

/**
 * The comparison of two summaries, in words derived from them. `better` says which direction wins.
 * Overlapping min–max ranges are called what they are: within the run-to-run spread.
 */
export function verdict(
  ours: Summary | CniStat,
  peer: Summary | CniStat,
  better: "lower" | "higher",
  noun: string,
) {
  // A zero median (a load done before the first poll) is below what the method resolves: no ratio.
  if (!(ours.median > 0 && peer.median > 0))
    return { ratio: Number.NaN, text: "below the measurement resolution" };
  const ratio = ours.median / peer.median;
  const overlap = ours.min <= peer.max && peer.min <= ours.max;
  const oursWins = better === "lower" ? ratio < 1 : ratio > 1;
  const factor = better === "lower" ? (oursWins ? 1 / ratio : ratio) : oursWins ? ratio : 1 / ratio;
  const words: Record<string, [string, string]> = {
    time: ["faster", "slower"],
    memory: ["less memory", "more memory"],
    rate: ["higher throughput", "lower throughput"],
  };
  const [good, bad] = words[noun]!;
  if (Math.abs(factor - 1) < 0.03) return { ratio, text: "even" };
  const text = `Margay ${times(factor)} ${oursWins ? good : bad}`;
  return { ratio, text: overlap ? `${text} (ranges overlap)` : text };
}

function table(head: string[], rows: (string | number)[][]): string {
  return [
    `| ${head.join(" | ")} |`,
    `| ${head.map(() => "---").join(" | ")} |`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}

// ---------------------------------------------------------------- the document

/** The document for one run; `source` names the JSON it came from. */
export function render(run: Run, source: string): string {
  const res = <T>(pkg: string, name: string): T | undefined =>
    run.packages[pkg]?.results[name] as T | undefined;
  const m = run.machine;
  const out: string[] = [];
  const comparisons: (string | number)[][] = [];
  const compare = (
    what: string,
    ours: Summary | CniStat,
    peerName: string,
    peer: Summary | CniStat,
    better: "lower" | "higher",
    noun: "time" | "memory" | "rate",
    d = 1,
  ) => {
    const v = verdict(ours, peer, better, noun);
    comparisons.push([
      what,
      fmt(ours, d),
      `${peerName}: ${fmt(peer, d)}`,
      Number.isFinite(v.ratio) ? v.ratio.toPrecision(2) : "—",
      v.text,
    ]);
  };

  out.push("# Benchmarks", "");
  out.push(
    `<!-- Generated by scripts/render-benchmarks.ts from ${source}; do not edit by hand. -->`,
    "",
    "Every figure on this page comes from one `npm run bench` run (`bench-results/benchmarks.json`), rendered",
    "by `npm run bench:render`. Figures are **median (min–max)** over the runs or rounds each section names;",
    "every comparison measures its peer in the same run, on the same machine, with the same method, and the",
    'words in the verdict column are derived from the numbers ("ranges overlap" when the two min–max ranges',
    "do; ratios are of medians). Tests never assert timings.",
    "",
  );
  if (run.quick)
    out.push(
      "> **QUICK RUN** (`--quick`, tiny sizes): these figures only show that the benchmarks work.",
      "",
    );
  out.push("## The machine", "");
  out.push(
    table(
      ["", ""],
      [
        ["run", `${run.startedAt} → ${run.finishedAt}`],
        ["CPU", `${m.cpuModel}, ${m.cores} cores`],
        ["memory", `${num(m.memoryBytes / 2 ** 30, 1)} GiB`],
        ["kernel", m.kernel],
        ["Node.js", m.node],
        [
          "load average (1/5/15 min) at start / end",
          `${m.loadAverageAtStart.map((x) => num(x, 2)).join(" ")} / ${m.loadAverageAtEnd.map((x) => num(x, 2)).join(" ")}`,
        ],
        ...Object.entries(run.tools).map(([k, v]) => [k, v ?? "not installed"]),
      ],
    ),
    "",
  );
  const failed = Object.entries(run.packages).filter(([, p]) => p.exitCode !== 0);
  if (failed.length > 0)
    out.push(
      `**Failed in this run** (no figures below): ${failed.map(([k, p]) => `${k} (exit ${p.exitCode})`).join(", ")}.`,
      "",
    );

  const sections: string[] = [];

  // ---- bgp
  const bgp = res<Bgp>("bgp", "bgp");
  if (bgp) {
    const get = (d: string) => bgp.results.find((r) => r.device === d);
    const ours = get("margay");
    const peers = bgp.results.filter((r) => r.device !== "margay");
    const names: Record<string, string> = { margay: "Margay", bird: "BIRD", gobgp: "GoBGP", frr: "FRR" };
    const measures: [string, (d: BgpDevice) => Summary, "time" | "memory", number][] = [
      // The comparison uses the end of the query that first saw every route: by then the load is proven
      // done for every device. Its start is a lower bound that flatters a device whose query is slow while
      // it is busy loading (ours answers over stdin from the same busy event loop), so it is not compared.
      [`BGP: load ${num(bgp.routes, 0)} routes, proven done (s)`, (d) => d.loadSecondsUpper, "time", 2],
      ["BGP: propagate the table to a 2nd peer (s)", (d) => d.propagateSeconds, "time", 2],
      ["BGP: RSS per route, loaded (B)", (d) => d.rssBytesPerRoute, "memory", 0],
      ["BGP: RSS per route with the outbound table (B)", (d) => d.rssBytesPerRouteWithOutbound, "memory", 0],
    ];
    if (ours)
      for (const [what, f, noun, d] of measures)
        for (const p of peers) compare(what, f(ours), names[p.device] ?? p.device, f(p), "lower", noun, d);
    sections.push(
      "## @margay/bgp: a full table",
      "",
      `${num(bgp.routes, 0)} IPv4 prefixes from one generator (${bgp.generator}) over one eBGP session into each`,
      "device, each its own process; then a second peer connects and receives the whole table.",
      `${bgp.repeat} runs per device, interleaved with a rotating order. Completion: the harness polls every`,
      `device's route counter every ${bgp.pollMs} ms (Margay \`routeCount\` over stdin, BIRD \`birdc show protocols\`,`,
      "GoBGP `gobgp global rib summary`, FRR `show bgp ipv4 unicast summary json` pfxRcd together with",
      "`show work-queues`, its best-path queue empty). A load ends at the start of the first query that sees every",
      "route; the next column gives the end of that query, so the true time lies between the two.",
      "The last column is each device's own query time (what one poll costs it, and the resolution of its load time).",
      "Memory: VmRSS gained per route for every device, never after a forced GC; Margay's V8 heap after a",
      "forced GC (with the outbound table) is shown apart, as a second figure only.",
      "",
      table(
        [
          "device",
          "load (s)",
          "load, query end (s)",
          "RSS B/route",
          "propagate to 2nd peer (s)",
          "RSS B/route with outbound table",
          "V8 heap B/route after forced GC",
          "poll query (ms)",
        ],
        [
          ["sink-only control", fmt(bgp.sinkOnlyControlSeconds, 2), "—", "—", "—", "—", "—", "—"],
          ...bgp.results.map((r) => [
            names[r.device] ?? r.device,
            fmt(r.loadSeconds, 2),
            fmt(r.loadSecondsUpper, 2),
            fmt(r.rssBytesPerRoute, 0),
            fmt(r.propagateSeconds, 2),
            fmt(r.rssBytesPerRouteWithOutbound, 0),
            r.heapBytesPerRouteWithOutbound ? fmt(r.heapBytesPerRouteWithOutbound, 0) : "—",
            fmt(r.pollQueryMs, 0),
          ]),
        ],
      ),
      "",
      `Versions: ${Object.entries(bgp.versions)
        .map(([k, v]) => `${k} ${v}`)
        .join("; ")}.`,
      "",
    );
  }
  const wire = res<BgpWire>("bgp", "bgp-wire");
  if (wire)
    sections.push(
      `**@margay/bgp wire path** (${num(wire.prefixes, 0)} prefixes, ${wire.repeat} passes each, ms):`,
      "",
      table(
        ["operation", "ms", "prefixes/s (at the median)"],
        wire.rows.map((r) => [r.name, fmt(r.millis), num(r.prefixesPerSecond, 0)]),
      ),
      "",
    );

  // ---- kube-adapter
  const kube = res<Kube>("kube-adapter", "kube-adapter");
  if (kube) {
    const l = kube.informerList;
    compare(
      `Kubernetes: list ${num(kube.pods, 0)} pods into an informer cache (ms)`,
      l.ours.ms,
      l.peer.name,
      l.peer.ms,
      "lower",
      "time",
      0,
    );
    const e = kube.endToEnd;
    sections.push(
      "## @margay/kube-adapter",
      "",
      `Fake API server (real HTTP) on its own thread. ${kube.runs} runs of each figure, every run a fresh process.`,
      "The informer lists are cold starts in fresh processes against one server, the order alternating; both",
      "caches are checked to hold the same objects (digest of namespace/name, resourceVersion, pod IP, labels).",
      "",
      table(
        ["measure", "median (min–max)"],
        [
          [
            `initial sync of ${num(kube.pods, 0)} pods in ${num(kube.namespaces, 0)} namespaces (ms)`,
            fmt(e.initialSyncMs, 0),
          ],
          ["peak RSS during the sync (MiB)", fmt(e.peakRssMiB, 0)],
          [`watch events/s end to end (${num(e.events, 0)} events)`, fmt(e.eventsPerSecondEndToEnd, 0)],
          ["watch events per adapter-busy second", fmt(e.eventsPerAdapterBusySecond, 0)],
          [`list, ${l.ours.name} (ms)`, fmt(l.ours.ms, 0)],
          [`list, ${l.peer.name} (ms)`, fmt(l.peer.ms, 0)],
          [`RSS after the list, ours / peer (MiB)`, `${fmt(l.ours.rssMiB, 0)} / ${fmt(l.peer.rssMiB, 0)}`],
        ],
      ),
      "",
    );
  }

  // ---- dataplane
  const dp = res<Dataplane>("dataplane", "dataplane");
  if (dp) {
    for (const [what, c] of [
      [
        `Dataplane: full sync (${num(dp.scale.routes, 0)} routes, ${num(dp.scale.endpoints, 0)} endpoints) (ms)`,
        dp.fullSync,
      ],
      ["Dataplane: one-endpoint change (ms)", dp.oneEndpoint],
    ] as const) {
      compare(what, c.oursMs, "fair raw (long-lived ip -batch ∥ nft -f)", c.fairRawMs, "lower", "time");
      compare(what, c.oursMs, "naive raw (ip -batch, then nft -f)", c.naiveRawMs, "lower", "time");
    }
    sections.push(
      "## @margay/dataplane",
      "",
      `${num(dp.scale.routes, 0)} routes, ${num(dp.scale.endpoints, 0)} endpoints, ${dp.scale.policies} policies, ${dp.scale.ipSets} IP sets,`,
      `a ${num(dp.scale.nftBytes / 1024, 0)} KiB nftables ruleset, in a scratch namespace. Two raw baselines applying the same`,
      "pre-rendered content: *naive* (a fresh `ip -batch`, then a fresh `nft -f`) and *fair* (a long-lived",
      "`ip -batch -` fed the same lines, `nft -f` in parallel). Rounds interleave the three:",
      `${dp.fullSync.oursMs.n} full syncs and ${dp.oneEndpoint.oursMs.n} one-endpoint changes on each side.`,
      "Margay's driver runs inside the benchmark process (a fresh driver per full sync, in a process already",
      "warm from the previous rounds); the raw tools are the kernel utilities themselves.",
      "",
      table(
        ["measure (ms)", "Margay", "fair raw", "naive raw"],
        [
          ["full sync", fmt(dp.fullSync.oursMs), fmt(dp.fullSync.fairRawMs), fmt(dp.fullSync.naiveRawMs)],
          [
            "one-endpoint change",
            fmt(dp.oneEndpoint.oursMs),
            fmt(dp.oneEndpoint.fairRawMs),
            fmt(dp.oneEndpoint.naiveRawMs),
          ],
        ],
      ),
      "",
    );
  }

  // ---- policy
  const pol = res<Policy>("policy", "policy");
  if (pol)
    sections.push(
      "## @margay/policy",
      "",
      `${num(pol.cluster.endpoints, 0)} endpoints, ${num(pol.cluster.policies, 0)} policies, ${pol.cluster.namespaces} namespaces; ${num(pol.labelChanges, 0)} real label`,
      "changes (each moves an endpoint to an app it does not have). Every (scenario, side) in a fresh process,",
      `${pol.runs} runs, ${pol.samplesPerRun} rate samples per run on each side: ours in equal chunks of the changes, the`,
      "brute force (a from-scratch calculation per change, what a non-incremental design does) one change per",
      "sample. No other implementation runs here, so no ratio against one is given.",
      "",
      table(
        [
          "scenario",
          "first in-sync (ms)",
          "changes/s",
          "changes per CPU s",
          "brute force changes/s",
          "heap (MB)",
        ],
        pol.results.map((r) => [
          r.scenario,
          fmt(r.firstInSyncMs, 0),
          fmt(r.incremental.changesPerSecond, 0),
          fmt(r.incremental.changesPerCpuSecond, 0),
          fmt(r.bruteForce.changesPerSecond, 2),
          fmt(r.heapMb, 0),
        ]),
      ),
      "",
    );

  // ---- datastore
  const ds = res<Datastore>("datastore", "datastore");
  if (ds) {
    const find = (backend: string, op: string, mode: string, baseline?: string) =>
      ds.rows.find(
        (r) =>
          r.backend === backend &&
          r.op === op &&
          r.mode === mode &&
          (baseline === undefined || r.baseline === baseline),
      );
    for (const r of ds.rows.filter((x) => x.backend === "etcd (ours)")) {
      const raw = find("etcd3 raw", r.op, r.mode, "txn");
      if (raw)
        compare(
          `etcd datastore: ${r.op}, ${r.mode} (ops/s)`,
          r.opsPerSecSummary,
          "raw etcd3 txn",
          raw.opsPerSecSummary,
          "higher",
          "rate",
          0,
        );
    }
    sections.push(
      "## @margay/datastore",
      "",
      `ops/s, ${ds.meta.rounds} interleaved rounds; ${ds.meta.concurrency}-way = ${ds.meta.concurrency} workers in one process; etcd data on ${ds.meta.etcdStorage}.`,
      "The raw `etcd3` client sends the same requests (a put; the same compare-and-put transaction) to the same etcd.",
      "",
      table(
        ["backend", "op", "mode", "ops/s"],
        ds.rows.map((r) => [
          r.backend + (r.backend === "etcd3 raw" && r.baseline ? ` ${r.baseline}` : ""),
          r.op,
          r.mode,
          fmt(r.opsPerSecSummary, 0),
        ]),
      ),
      "",
    );
  }

  // ---- ipam
  const ipam = res<Ipam>("ipam", "ipam");
  if (ipam) {
    for (const r of ipam.rows.filter((x) => x.backend === "etcd")) {
      const raw = ipam.rows.find((x) => x.backend === "etcd3 raw txn" && x.allocators === r.allocators);
      if (raw)
        compare(
          `IPAM on etcd: ${r.op}, ${r.allocators} allocator(s) (ops/s)`,
          r.opsPerSecSummary,
          "raw etcd3 txn (1 compare, 2 puts)",
          raw.opsPerSecSummary,
          "higher",
          "rate",
          0,
        );
    }
    sections.push(
      "## @margay/ipam",
      "",
      `ops/s, ${ipam.rounds} interleaved rounds; allocators on different hosts, one datastore client each; etcd data on ${ipam.etcdStorage}.`,
      "",
      table(
        ["backend", "op", "allocators", "ops/s"],
        ipam.rows.map((r) => [r.backend, r.op, r.allocators, fmt(r.opsPerSecSummary, 0)]),
      ),
      "",
    );
  }

  // ---- CNI
  const cni = res<Cni>("margay", "margay-cni");
  if (cni) {
    const s = cni.stats;
    compare(
      "CNI: bridge ADD+DEL cycle, margay-ipam vs host-local (ms)",
      s.margay,
      "host-local",
      s.hostLocal,
      "lower",
      "time",
    );
    sections.push(
      "## margay-ipam CNI plugin",
      "",
      `${cni.cycles} interleaved cycles; every call is a fresh process on both sides (ms).`,
      "",
      table(
        ["", "median (min–max)", "p90"],
        [
          ["bridge + host-local ADD+DEL", fmt(s.hostLocal), num(s.hostLocal.p90, 1)],
          ["bridge + margay-ipam ADD+DEL", fmt(s.margay), num(s.margay.p90, 1)],
          ["host-local ADD / DEL alone", `${fmt(s.hlAdd)} / ${fmt(s.hlDel)}`, ""],
          ["margay-ipam ADD / DEL alone", `${fmt(s.mgAdd)} / ${fmt(s.mgDel)}`, ""],
          ["`node -e 0` (floor)", fmt(s.node), num(s.node.p90, 1)],
        ],
      ),
      "",
    );
  }

  // ---- margay CNI plugin
  const pl = res<PluginBench>("margay", "margay-cni-plugin");
  if (pl) {
    const st = pl.stats;
    compare(
      "CNI: ADD+DEL, margay + agent vs ptp + host-local (ms)",
      st.margay,
      "ptp + host-local",
      st.ptp,
      "lower",
      "time",
    );
    const over = (x: Summary, base: Summary) =>
      `${num(x.median - base.median, 1)} / ${num(x.min - base.min, 1)}`;
    const sec = (ms: number) => num(ms / 1000, 2);
    const burstRow = (what: string, b: BurstStats) => [
      what,
      b.n ?? "—",
      sec(b.p50),
      sec(b.p99),
      b.max === undefined ? "—" : sec(b.max),
      sec(b.wallMs),
    ];
    const fl = pl.floors;
    const startRows: [string, "node" | "minimal" | "codeCache" | "noCache" | "snapshot"][] = [
      ["`node -e 0` (floor)", "node"],
      [
        "a minimal `node:net` client (stdin → one request → stdout): the bound of any plugin over `node:net`",
        "minimal",
      ],
      ["shipped: the bundle with its V8 code cache", "codeCache"],
      ["same bundle, no code cache", "noCache"],
      ["same bundle as a V8 startup snapshot (`--snapshot-blob`)", "snapshot"],
    ];
    const cpu = pl.startCpuMsPerProcess;
    const startNode = pl.start?.node;
    const shipped = pl.start?.codeCache;
    const met = (ok: boolean) => (ok ? "met" : "**not met**");
    const floorWord = (ok: boolean) => (ok ? "below the goal" : "**misses the goal by itself**");
    const goals: (string | number)[][] = [];
    const g = pl.goals;
    if (g) {
      goals.push([
        `ADD+DEL within ${num(g.cycleOverPtp, 1)}× of ptp + host-local (ratio of medians)`,
        times(pl.ratios.cycleMargayOverPtp),
        met(pl.ratios.cycleMargayOverPtp <= g.cycleOverPtp),
        fl && pl.ratios.cycleFloorOverPtp !== undefined
          ? `2 bare node starts: ${times(pl.ratios.cycleFloorOverPtp)}, ${floorWord(pl.ratios.cycleFloorOverPtp <= g.cycleOverPtp)}`
          : "not measured",
      ]);
      if (startNode && shipped) {
        const d = shipped.median - startNode.median;
        const minimal = pl.start?.minimal;
        goals.push([
          `plugin's own start < ${num(g.pluginStartOverNodeMs, 0)} ms over \`node -e 0\` (ADD, median difference)`,
          `${num(d, 1)} ms`,
          met(d < g.pluginStartOverNodeMs),
          minimal
            ? `minimal node:net script: ${num(minimal.median - startNode.median, 1)} ms, ${floorWord(minimal.median - startNode.median < g.pluginStartOverNodeMs)}`
            : "not measured",
        ]);
        if (cpu?.node !== undefined && cpu.codeCache !== undefined) {
          const c = cpu.codeCache - cpu.node;
          goals.push([
            "same, in CPU time (difference of the means per process)",
            `${num(c, 1)} ms`,
            met(c < g.pluginStartOverNodeMs),
            cpu.minimal === undefined
              ? "not measured"
              : `minimal node:net script: ${num(cpu.minimal - cpu.node, 1)} ms, ${floorWord(cpu.minimal - cpu.node < g.pluginStartOverNodeMs)}`,
          ]);
        }
      }
      goals.push([
        `${pl.burst.n ?? "30"} concurrent ADDs, p99 < ${sec(g.burstP99Ms)} s`,
        `${sec(pl.burst.p99)} s`,
        met(pl.burst.p99 < g.burstP99Ms),
        fl
          ? `${fl.burst.n ?? ""} bare node starts at once: p99 ${sec(fl.burst.p99)} s, ${floorWord(fl.burst.p99 < g.burstP99Ms)}`
          : "not measured",
      ]);
      goals.push([
        `${pl.pods.n} pods networked within ${sec(g.podsWallMs)} s`,
        `${sec(pl.pods.wallMs)} s`,
        met(pl.pods.wallMs < g.podsWallMs),
        fl
          ? `${fl.pods.n} bare node starts, ${fl.pods.workers} workers: ${sec(fl.pods.wallMs)} s, ${floorWord(fl.pods.wallMs < g.podsWallMs)}`
          : "not measured",
      ]);
    }
    sections.push(
      "## margay CNI plugin (with margay-node)",
      "",
      "One cluster-lab host with a real `margay-node` (the bundle of this tree, memory datastore); every plugin",
      "call is a fresh process through the same CNI runtime and host-namespace launcher as Debian's `ptp` +",
      `\`host-local\`, interleaved, ${pl.cycles} cycles (ms). Each floor is bare \`node -e 0\` processes started the`,
      "same way as the plugin processes they stand for (same spawn helper, launcher and environment, done at",
      "the same exit): an ADD+DEL is two plugin processes, the burst and the 100 pods as many.",
      "",
      table(
        ["ms", "median (min–max)"],
        [
          ["margay + agent ADD+DEL", fmt(st.margay)],
          ["ptp + host-local ADD+DEL", fmt(st.ptp)],
          ...(st.cycleFloor ? [["floor: 2 bare node starts, as the plugin's", fmt(st.cycleFloor)]] : []),
          ["agent work alone (workload API add+del in-process, no plugin process)", fmt(st.agent)],
          ["`margay` VERSION (a process start, no agent call)", fmt(st.version)],
          ["`node -e 0`", fmt(st.node)],
        ],
      ),
      "",
      `Agent ADD steps (means of its \`margay_workload_add_seconds{step}\` histogram over the cycles, ms): ${Object.entries(
        pl.agentAddStepsMs,
      )
        .map(([k, v]) => `${k} ${num(v, 1)}`)
        .join(", ")}.`,
      "",
    );
    if (pl.agentDelStepsMs !== undefined && Object.keys(pl.agentDelStepsMs).length > 0)
      sections.push(
        `Agent DEL steps (\`margay_workload_del_seconds{step}\`, ms): ${Object.entries(pl.agentDelStepsMs)
          .map(([k, v]) => `${k} ${num(v, 1)}`)
          .join(", ")}.`,
        "",
      );
    if (startNode)
      sections.push(
        `The plugin's own start: an ADD in a fresh process against a stand-in agent that answers at once, ${startNode.n} processes`,
        "per variant, interleaved (ms; over `node -e 0`: difference of the medians / of the minima). CPU: user +",
        "system time of the same processes (from the benchmark's waited-for children's times), mean per process:",
        "on a shared machine a start's wall time is mostly the wait for a core.",
        "",
        table(
          ["variant", "wall, median (min–max)", "over `node -e 0`", "CPU", "CPU over `node -e 0`"],
          startRows.flatMap(([what, k]) => {
            const x = pl.start?.[k];
            if (!x) return [];
            const c = cpu?.[k];
            return [
              [
                what,
                fmt(x),
                k === "node" ? "—" : over(x, startNode),
                c === undefined ? "—" : num(c, 1),
                c === undefined || cpu?.node === undefined || k === "node" ? "—" : num(c - cpu.node, 1),
              ],
            ];
          }),
        ),
        "",
      );
    sections.push(
      "Concurrency (s; p99 is nearest-rank, so with fewer than 100 samples it is the maximum):",
      "",
      table(
        ["", "n", "p50", "p99", "max", "wall"],
        [
          burstRow("concurrent margay ADDs", pl.burst),
          ...(fl ? [burstRow("floor: bare node starts at once", fl.burst)] : []),
        ],
      ),
      "",
      table(
        ["", "all done (s)"],
        [
          [`${pl.pods.n} pods, ${pl.pods.workers} parallel workers, margay ADDs`, sec(pl.pods.wallMs)],
          ...(fl
            ? [[`floor: ${fl.pods.n} bare node starts, ${fl.pods.workers} workers`, sec(fl.pods.wallMs)]]
            : []),
        ],
      ),
      "",
    );
    if (goals.length > 0)
      sections.push(
        "Against the issue's goals, each next to its floor (the words are derived from the numbers):",
        "",
        table(["goal", "measured", "", "floor"], goals),
        "",
      );
  }

  // ---- margay-node
  const ag = res<AgentBench>("margay", "agent");
  if (ag) {
    const st = (x: AgentStats) => [x.n, ...[x.min, x.median, x.p99, x.max].map((v) => num(v, 0))];
    const nr = ag.networkReady;
    const sc = ag.scale;
    const met = (ok: boolean) => (ok ? "met" : "**not met**");
    sections.push(
      "## margay-node on the cluster lab",
      "",
      `Real agents (the built bundle) in ${ag.hosts} host namespaces, etcd, the BGP mesh; pods added one at a time`,
      "through the workload API client, as the CNI plugin adds them. This section comes from its own run",
      `(\`packages/margay/bench/agent.ts\`, ${ag.date}), load average (1/5/15 min) ${ag.loadAverageAtStart.map((x) => num(x, 2)).join(" ")}`,
      `at its start and ${ag.loadAverageAtEnd.map((x) => num(x, 2)).join(" ")} at its end, on the machine above: every figure below`,
      "includes waiting for a CPU on a shared, loaded machine. ms; p99 is nearest-rank, so with fewer than 100",
      "samples it is the maximum.",
      "",
      table(
        ["ms", "n", "min", "median", "p99", "max"],
        [
          ["network-ready: add → a pod on another host gets a ping reply", ...st(nr.readyMs)],
          ["  add reply at the client", ...st(nr.addReplyMs)],
          ...Object.entries(nr.stepsMs).map(([k, v]) => [`  agent step \`${k}\``, ...st(v)]),
          ["  add reply → reachable (negative: reachable before the reply)", ...st(nr.afterReplyMs)],
          ["  remote route install", ...st(nr.remoteRouteMs)],
          [`policy: allow → enforced on all ${ag.hosts} hosts`, ...st(ag.policy.allHostsMs)],
          ...Object.entries(ag.policy.perHostMs).map(([h, v]) => [`  ${h}`, ...st(v)]),
          ["new block → route on every other host, from the add", ...st(ag.bgp.fromAddMs)],
          ["  same, from the add reply (negative: before the reply)", ...st(ag.bgp.fromReplyMs)],
          [
            "new block → a BIRD peer holds the owner's BGP path, from the add",
            ...st(ag.bgp.bgpPeerFromAddMs),
          ],
          ["  one `birdc` poll (the resolution of the row above)", ...st(ag.bgp.birdPollMs)],
        ],
      ),
      "",
      `- Network-ready: ${nr.pods} pods, a \`ping -D -i 0.005\` from a pod on another host started before each add; the`,
      "  figure is ping's own receive time minus the add's start. The agent steps are its",
      "  `margay_workload_add_seconds{step}` sums, scraped before and after each add.",
      `  ${nr.remoteRoutePreinstalled} of ${nr.pods} pods landed in a block allocated before (a warm-up pod), so the remote route`,
      "  is that block's route, installed before the add (0 ms): this row does not measure a route install.",
      `- Policy: ${ag.policy.changes} changes of one NetworkPolicy (ingress from the client allowed) after a deny, each timed`,
      "  until fresh pings from the client reach the target on every host. Only allow-direction changes are",
      "  timed: conntrack keeps an established flow through a deny (as in Calico), so a running probe never flips.",
      `- New block: ${ag.bgp.blocks} pods in a pool of /31 blocks, each in a new block. The other hosts' routes came with`,
      `  route protocol(s) ${Object.entries(ag.bgp.routeProtocols)
        .map(([p, c]) => `${p} (${c})`)
        .join(", ")}: the agents' route library installs remote block routes from the`,
      "  datastore's block affinities (BGP-learned routes rank below them), so that row is the datastore path.",
      "  The BIRD row is the BGP path: a top-of-rack BIRD peered with every host holds the owner's path.",
      `- Scale: ${num(sc.endpoints, 0)} WorkloadEndpoints (${num(sc.localEndpoints, 0)} on the measured host, with real veths; the rest on`,
      `  ${sc.fictitiousNodes} fictitious nodes with Nodes and claimed blocks) and ${num(sc.policies, 0)} NetworkPolicies written into etcd,`,
      "  then one agent (VXLAN backend) started; RSS and CPU from /proc.",
      "",
      table(
        ["scale", "value"],
        [
          ["start → /readyz 200 (in sync), s", num(sc.inSyncSeconds, 1)],
          ["CPU (utime+stime) to in-sync, s", num(sc.cpuSecondsToInSync, 1)],
          [`RSS after ${sc.steadySeconds} s steady (VmRSS), MiB`, num(sc.rssMiBSteady, 1)],
          ["peak RSS (VmHWM), MiB", num(sc.hwmMiB, 1)],
          [`CPU while steady (${sc.steadySeconds} s), % of a core`, num(sc.cpuPercentSteady, 1)],
        ],
      ),
      "",
      "Against the issue's goals (the words are derived from the numbers):",
      "",
      table(
        ["goal", "measured", ""],
        [
          [
            `network-ready p99 < ${num(ag.goals.networkReadyP99Ms, 0)} ms on ${ag.hosts} hosts`,
            `${num(nr.readyMs.p99, 0)} ms`,
            met(nr.readyMs.p99 < ag.goals.networkReadyP99Ms),
          ],
          [
            `policy change p99 < ${num(ag.goals.policyP99Ms, 0)} ms`,
            `${num(ag.policy.allHostsMs.p99, 0)} ms`,
            met(ag.policy.allHostsMs.p99 < ag.goals.policyP99Ms),
          ],
          [
            `agent RSS < ${num(ag.goals.rssMiB, 0)} MiB at this scale (peak)`,
            `${num(sc.hwmMiB, 1)} MiB`,
            met(sc.hwmMiB < ag.goals.rssMiB),
          ],
        ],
      ),
      "",
      "The Calico and Cilium figures the issue quotes (apply spikes over 15 s, pods without network for up to",
      "2 minutes, 240–300 MiB calico-node; Cilium's 1,000-node figures) are users' reports and published numbers,",
      "not measured here: no comparison with them is made. Not measured: a one-rule change's time against the",
      "change's size.",
      "",
    );
  }

  out.push(
    "## Against peers measured in this run",
    "",
    "Ratio = Margay's median / the peer's median. For times and memory lower is better; for ops/s higher is.",
    "",
    table(["what", "Margay", "peer", "ratio", "verdict"], comparisons),
    "",
    ...sections,
  );
  return `${out.join("\n")}\n`;
}

function main(): void {
  const input = resolve(repoRoot, arg("in", join("bench-results", "benchmarks.json")));
  const output = resolve(repoRoot, arg("out", join("docs", "benchmarks.md")));
  const run = JSON.parse(readFileSync(input, "utf8")) as Run;
  if (run.quick && !process.argv.includes("--allow-quick"))
    throw new Error(`${input} is a quick run; pass --allow-quick to render it anyway`);
  // The Scale section comes from its own run (`npm run bench:scale`); keep it, rendered from its file.
  const scale = loadScaleRun();
  const doc = render(run, relative(repoRoot, input));
  writeFileSync(
    output,
    scale ? withScaleSection(doc, renderScale(scale, join("bench-results", "scale.json"))) : doc,
  );
  console.log(`wrote ${output}`);
}

// Run only as a script, so a test can import render() and verdict().
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) main();
