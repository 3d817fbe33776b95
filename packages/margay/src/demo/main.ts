/**
 * `npm run demo`: a three-host Margay cluster in network namespaces (etcd, a real `margay-node` per host,
 * BGP full mesh), pods added by executing the installed `margay` CNI plugin as a runtime does, a
 * connectivity matrix measured with real TCP connects before and after zero-trust policy (applied with
 * margayctl), a policy explain trace, a relabel, a switch of the pool to VXLAN, and an HTML report.
 *
 * Usage: `demo [up] [--keep] [--rebuild] [--report FILE]`, `demo down`. Exit 0 when every measured cell is the
 * expected one, 1 when a cell differs, 2 when the demo could not run (and says why).
 *
 * @packageDocumentation
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type ClusterLab,
  cleanStaleLabs,
  createClusterLab,
  LAB_ADDRESSES,
  type LabHost,
  listNamespaces,
  PROBE_PORTS,
  type Probe,
} from "../testing/index.js";
import { ensureDemoExecutables } from "./build.js";
import { type DemoReport, type ReportHost, type ReportStep, renderReport } from "./report.js";
import {
  changedCells,
  type DemoPhase,
  type DemoPodSpec,
  demoPods,
  expectedMatrix,
  kubernetesPolicyManifests,
  labelsAt,
  type Matrix,
  matrixDiff,
  namespaceManifests,
  podId,
  policyManifests,
  poolManifest,
  RELABEL,
} from "./scenario.js";

const PREFIX = "demo";
const POOL = { name: "default-ipv4-ippool", cidr: "10.244.0.0/16", blockSize: 26 };
const STATE_FILE = "/run/margay-lab/margay-demo.json";
const VXLAN_DEVICE = "vxlan.margay";
const ETCD_URL = `http://${LAB_ADDRESSES.etcd}:${LAB_ADDRESSES.etcdPort}`;

/** A pod the demo made through the CNI plugin. */
interface DemoPod {
  readonly spec: DemoPodSpec;
  readonly host: LabHost;
  readonly ns: string;
  readonly containerId: string;
  readonly ip: string;
  probe: Probe;
}

/** What `demo --keep` leaves behind, for `demo down`. */
interface KeptState {
  readonly lab: string;
  readonly dirs: readonly string[];
  readonly pidFile: string;
}

class DemoError extends Error {
  constructor(
    readonly code: "command-failed" | "not-converged" | "bad-input",
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = "DemoError";
  }
}

function packageDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json")) || !existsSync(join(dir, "src", "demo"))) {
    if (dir === dirname(dir))
      throw new DemoError("bad-input", "cannot find the @margay/margay package directory");
    dir = dirname(dir);
  }
  return dir;
}

/** Runs `argv`; resolves with exit code and output (never rejects on a non-zero exit). */
function run(
  argv: readonly string[],
  options: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { env: options.env ?? process.env, stdio: "pipe" });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b) => {
      stdout += b;
    });
    child.stderr.on("data", (b) => {
      stderr += b;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new DemoError("command-failed", `${argv[0]}: ${e.message}`, { argv }));
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolvePromise({ code: code ?? 1, stdout, stderr });
    });
    // A command that never reads its stdin (ip) may exit first: that EPIPE is not a failure.
    child.stdin.on("error", () => undefined);
    child.stdin.end(options.input ?? "");
  });
}

const isTty = process.stdout.isTTY === true;
const out = (line = "") => process.stdout.write(`${line}\n`);
const bold = (s: string) => (isTty ? `\x1b[1m${s}\x1b[0m` : s);
const green = (s: string) => (isTty ? `\x1b[32m${s}\x1b[0m` : s);
const red = (s: string) => (isTty ? `\x1b[31m${s}\x1b[0m` : s);

/** Runs `work` while printing what is awaited and for how long, every 3 s. */
async function progress<T>(label: string, work: () => Promise<T>): Promise<T> {
  const start = Date.now();
  out(`  … ${label}`);
  const timer = setInterval(() => out(`  … ${label} (${Math.round((Date.now() - start) / 1000)} s)`), 3_000);
  try {
    const value = await work();
    out(`  ✓ ${label} (${((Date.now() - start) / 1000).toFixed(1)} s)`);
    return value;
  } finally {
    clearInterval(timer);
  }
}

async function poll<T>(
  what: string,
  f: () => Promise<T | undefined>,
  timeoutMs: number,
  intervalMs = 500,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new DemoError("not-converged", `timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

function section(title: string) {
  out();
  out(bold(`== ${title}`));
}

function matrixText(m: Matrix, expected?: Matrix, highlight: [number, number][] = []): string {
  const short = (id: string) => id.replace("tenant-", "");
  const w = Math.max(...m.pods.map((p) => short(p).length)) + 3;
  const head = `${" ".repeat(w)}${m.pods.map((_, j) => String(j + 1).padStart(2)).join(" ")}`;
  const rows = m.cells.map((row, i) => {
    const cells = row.map((c, j) => {
      const mark = c === "self" ? " ·" : c === "allow" ? " ✓" : " ✗";
      const wrong = expected !== undefined && expected.cells[i]?.[j] !== c;
      const hl = highlight.some(([a, b]) => a === i && b === j);
      const text = hl ? mark.replace(" ", "*") : mark;
      return wrong ? red(text) : c === "allow" ? green(text) : text;
    });
    return `${`${String(i + 1).padStart(2)} ${short(m.pods[i]!)}`.padEnd(w)}${cells.join(" ")}`;
  });
  return [head, ...rows].map((l) => `    ${l}`).join("\n");
}

/** The demo proper. Returns the process exit code. */
async function up(opts: { keep: boolean; reportPath: string; rebuild: boolean }): Promise<number> {
  const started = Date.now();
  const pkg = packageDir();
  const dist = join(pkg, "dist", "bin");
  const timings: { step: string; seconds: number }[] = [];
  section("0. Build: margay-node, margay, margay-ipam, margayctl (esbuild, when a source changed)");
  const build = await progress("checking the executables against the sources", () =>
    ensureDemoExecutables({ root: dirname(dirname(pkg)), outDir: dist, force: opts.rebuild }),
  );
  out(`  ${build.built ? "built" : "up to date"}: ${build.reason}`);
  timings.push({ step: "build", seconds: (Date.now() - started) / 1000 });
  for (const f of ["margay-node.cjs", "margay.cjs", "margayctl.cjs"])
    if (!existsSync(join(dist, f)))
      throw new DemoError("bad-input", `${join(dist, f)} is missing: build first (npx lerna run build)`);
  const work = await mkdtemp(join(tmpdir(), "margay-demo-"));
  const steps: ReportStep[] = [];
  let failures = 0;
  let lab: ClusterLab | undefined;
  const pods: DemoPod[] = [];
  /** Pod namespaces made so far (a failed ADD leaves one without a pod). */
  const namespaces: string[] = [];
  let stepStart = Date.now();
  let restarted = false;
  const timed = (step: string) => {
    timings.push({ step, seconds: (Date.now() - stepStart) / 1000 });
    stepStart = Date.now();
  };

  const ctlArgv = (args: readonly string[]) => {
    if (lab === undefined) throw new DemoError("bad-input", "no lab");
    return [
      "nsenter",
      `--net=/run/netns/${lab.hosts[0]!.ns}`,
      "--",
      process.execPath,
      join(dist, "margayctl.cjs"),
      "--datastore-type",
      "etcdv3",
      "--etcd-endpoints",
      ETCD_URL,
      ...args,
    ];
  };
  /** margayctl from host1's namespace (where etcd's address is reachable); throws on a non-zero exit. */
  const ctl = async (args: readonly string[], input?: string, echo = true): Promise<string> => {
    if (echo) out(`  $ margayctl ${args.join(" ")}`);
    const r = await run(ctlArgv(args), { input: input ?? "" });
    if (r.code !== 0)
      throw new DemoError(
        "command-failed",
        `margayctl ${args.join(" ")} exited ${r.code}: ${r.stderr.trim()}`,
        {
          args,
        },
      );
    return r.stdout;
  };
  const indent = (text: string) =>
    text
      .trimEnd()
      .split("\n")
      .map((l) => `    ${l}`)
      .join("\n");

  /** Executes the installed `margay` plugin in the host's namespace as a CNI runtime does. */
  const cni = async (command: "ADD" | "DEL", pod: Omit<DemoPod, "ip" | "probe">, phase: DemoPhase) => {
    const hostDir = join(work, "cni", pod.host.name);
    const list = JSON.parse(await readFile(join(hostDir, "net.d", "10-margay.conflist"), "utf8")) as {
      cniVersion: string;
      name: string;
      plugins: Record<string, unknown>[];
    };
    const plugin = list.plugins[0]!;
    // libcni's per-plugin config: the list's name and version injected, runtime args under `args`.
    const config = {
      ...plugin,
      cniVersion: list.cniVersion,
      name: list.name,
      args: { cni: { labels: labelsAt(pod.spec, phase) } },
    };
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
      CNI_COMMAND: command,
      CNI_CONTAINERID: pod.containerId,
      CNI_NETNS: `/run/netns/${pod.ns}`,
      CNI_IFNAME: "eth0",
      CNI_PATH: join(hostDir, "bin"),
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${pod.spec.namespace};K8S_POD_NAME=${pod.spec.name}`,
    };
    const r = await run(["ip", "netns", "exec", pod.host.ns, join(hostDir, "bin", String(plugin.type))], {
      input: JSON.stringify(config),
      env,
    });
    if (r.code !== 0)
      throw new DemoError(
        "command-failed",
        `CNI ${command} of ${podId(pod.spec)} failed: ${r.stdout}${r.stderr}`,
      );
    return r.stdout === "" ? undefined : (JSON.parse(r.stdout) as { ips?: { address: string }[] });
  };

  /**
   * Every flow at once, each a TCP connect from the source pod's probe. A denied flow is dropped, so it
   * costs the whole timeout: `previous` keeps the cells already as expected and probes only the others.
   */
  const measure = async (timeoutMs: number, previous?: Matrix, expected?: Matrix): Promise<Matrix> => {
    const ids = pods.map((p) => podId(p.spec));
    const cells = await Promise.all(
      pods.map((s, i) =>
        Promise.all(
          pods.map(async (d, j) => {
            if (s === d) return "self" as const;
            const before = previous?.cells[i]?.[j];
            if (before !== undefined && before === expected?.cells[i]?.[j]) return before;
            return (await lab!.canReach(s, d.ip, { proto: "tcp", timeoutMs }))
              ? ("allow" as const)
              : ("deny" as const);
          }),
        ),
      ),
    );
    return { pods: ids, cells };
  };

  /** Measures until the matrix is the expected one (policy takes a moment to be programmed) or time is up. */
  const measureUntil = async (phase: DemoPhase, title: string, timeoutMs = 40_000) => {
    const expected = expectedMatrix(
      pods.map((p) => p.spec),
      phase,
    );
    const deadline = Date.now() + timeoutMs;
    let measured = await progress(
      `measuring ${pods.length * (pods.length - 1)} TCP flows (${title})`,
      async () => {
        // A connect between pods takes milliseconds; 1 s is ample for a first pass, and a cell that is not
        // the expected one yet (policy still being programmed, a slow machine) is measured again alone.
        let m = await measure(1_000);
        let attempt = 1;
        while (matrixDiff(expected, m).length > 0 && Date.now() < deadline) {
          out(
            `    attempt ${attempt}: ${matrixDiff(expected, m).length} cell(s) not as expected yet, measuring them again`,
          );
          await new Promise((r) => setTimeout(r, 250));
          m = await measure(2_000, m, expected);
          attempt += 1;
        }
        return m;
      },
    );
    const diff = matrixDiff(expected, measured);
    measured = { pods: measured.pods, cells: measured.cells };
    return { expected, measured, diff };
  };

  const record = (
    phase: DemoPhase,
    title: string,
    r: { expected: Matrix; measured: Matrix; diff: string[] },
    note: string,
    highlight: [number, number][] = [],
  ) => {
    out(matrixText(r.measured, r.expected, highlight));
    if (r.diff.length === 0) out(`  ${green("matrix as expected")} (${note})`);
    else {
      failures += r.diff.length;
      out(`  ${red(`${r.diff.length} cell(s) differ from the expected matrix:`)}`);
      for (const d of r.diff) out(`    ${d}`);
    }
    steps.push({ kind: "matrix", phase, title, note, expected: r.expected, measured: r.measured, highlight });
  };

  const cleanup = async () => {
    await Promise.all(namespaces.map((ns) => run(["ip", "netns", "del", ns]).catch(() => undefined)));
    if (lab !== undefined) await lab.close();
    await rm(work, { recursive: true, force: true });
  };

  try {
    section("1. Cluster: 3 hosts, etcd, margay-node on each, BGP full mesh");
    lab = await progress("building the lab (namespaces, etcd, 3 agents ready)", () =>
      createClusterLab({
        hosts: 3,
        prefix: PREFIX,
        // One subnet: the lab's router (and its "outside" namespace) serves CrossSubnet stories, not this one.
        router: false,
        keepDir: opts.keep,
        agentEnv: {
          MARGAY_IPV4POOL_CIDR: POOL.cidr,
          MARGAY_IPV4POOL_BLOCK_SIZE: String(POOL.blockSize),
          // The peer table is read from each node's status resource: written every 2 s instead of 10 s,
          // the wait for the full mesh ends when the sessions do.
          MARGAY_STATUS_INTERVAL: "2s",
        },
      }),
    );
    const hosts = lab.hosts;
    for (const h of hosts) out(`    ${h.name}  ${h.address}  namespace ${h.ns}`);
    out(`    etcd   ${ETCD_URL}`);
    timed("cluster up");

    // install-cni on every host: what a DaemonSet's init container does.
    // The hosts' installs are independent: one process each, at once.
    await Promise.all(
      hosts.map(async (h) => {
        const dir = join(work, "cni", h.name);
        const r = await run([
          process.execPath,
          join(dist, "margay-node.cjs"),
          "install-cni",
          "--cni-bin-dir",
          join(dir, "bin"),
          "--cni-conf-dir",
          join(dir, "net.d"),
          "--agent-socket",
          h.socket,
          "--state-dir",
          h.stateDir,
          "--chain",
          "",
        ]);
        if (r.code !== 0) throw new DemoError("command-failed", `install-cni on ${h.name}: ${r.stderr}`);
      }),
    );
    out(
      `  install-cni: margay + margay-ipam and 10-margay.conflist on each host (under ${join(work, "cni")})`,
    );

    const peerTables = await progress(
      "waiting for the BGP full mesh (every host: 2 sessions Established)",
      () =>
        poll(
          "BGP sessions Established",
          async () => {
            const tables: Record<string, { address: string; state: string; routesImported: number }[]> = {};
            const statuses = await Promise.all(
              hosts.map(
                async (h) =>
                  JSON.parse(await ctl(["node", "status", h.name, "-o", "json"], undefined, false)) as {
                    status?: {
                      bgp?: { peers: { address: string; state: string; routesImported: number }[] };
                    };
                  },
              ),
            );
            for (const [i, h] of hosts.entries()) {
              const peers = statuses[i]?.status?.bgp?.peers ?? [];
              if (peers.length !== hosts.length - 1 || peers.some((p) => p.state !== "Established"))
                return undefined;
              tables[h.name] = peers;
            }
            return tables;
          },
          60_000,
          250,
        ),
    );
    // Asked at once, printed in order (each margayctl is a process that connects to etcd).
    const statusTexts = await Promise.all(
      hosts.map((h) => ctl(["node", "status", h.name], undefined, false)),
    );
    for (const [i, h] of hosts.entries()) {
      out();
      out(`  $ margayctl node status ${h.name}`);
      out(indent(statusTexts[i]!));
    }
    timed("BGP mesh");

    section("2. Pods: two tenants × frontend/backend/database, added through the margay CNI plugin");
    out(
      `  $ margayctl convert -f namespaces.yaml | margayctl apply -f -   (the tenants' namespace profiles)`,
    );
    const nsFile = join(work, "namespaces.yaml");
    await writeFile(nsFile, namespaceManifests());
    const profiles = await ctl(["convert", "-f", nsFile], undefined, false);
    await ctl(["apply", "-f", "-"], profiles, false);
    const specs = demoPods(hosts.length);
    await progress(`CNI ADD of ${specs.length} pods (CNI_COMMAND=ADD, config on stdin)`, async () => {
      // As a kubelet does for pods scheduled at once: each pod's sandbox (a network namespace) and ADD
      // run in parallel, each ADD its own plugin process.
      const added = await Promise.all(
        specs.map(async (spec, i) => {
          const ns = `${lab!.name}-pod${i + 1}`;
          const r = await run(["ip", "netns", "add", ns]);
          if (r.code !== 0) throw new DemoError("command-failed", `ip netns add ${ns}: ${r.stderr}`);
          namespaces.push(ns);
          await run(["ip", "-n", ns, "link", "set", "lo", "up"]);
          const base = {
            spec,
            host: hosts[spec.hostIndex]!,
            ns,
            containerId: `${lab!.name}-${spec.namespace}-${spec.name}`,
          };
          // The pod's probe (a listener on the wildcard address) starts while the plugin runs.
          const [result, probe] = await Promise.all([cni("ADD", base, "open"), lab!.probeIn(base.ns)]);
          const ip = result?.ips?.[0]?.address.split("/")[0];
          if (ip === undefined)
            throw new DemoError("command-failed", `CNI ADD of ${podId(base.spec)} returned no address`);
          return { ...base, ip, probe };
        }),
      );
      pods.push(...added);
      for (const p of pods)
        out(
          `    ${podId(p.spec).padEnd(18)} on ${p.host.name}  ${p.ip.padEnd(15)} tier=${p.spec.labels.tier}`,
        );
    });
    out();
    const blocks = await ctl(["ipam", "show", "--show-blocks"]);
    out(indent(blocks));
    timed("pods");

    section("3. Connectivity before policy (real TCP connects to a listener in each pod)");
    out(`  rows: source, columns: destination; ✓ connected, ✗ refused/timed out, · self`);
    for (const [i, p] of pods.entries())
      out(`    ${String(i + 1).padStart(2)} ${podId(p.spec)} (${p.ip} on ${p.host.name})`);
    record(
      "open",
      "Before policy",
      await measureUntil("open", "no policy"),
      "no policy: every pod reaches every other",
    );
    timed("matrix: open");

    section("4. Zero trust: tenant isolation, tier separation, a Kubernetes NetworkPolicy, default deny");
    const port = PROBE_PORTS.tcp;
    const policyFile = join(work, "zero-trust.yaml");
    await writeFile(policyFile, policyManifests(port));
    out(indent(await ctl(["apply", "-f", policyFile])));
    const k8sFile = join(work, "k8s-netpol.yaml");
    await writeFile(k8sFile, kubernetesPolicyManifests(port));
    out(`  $ margayctl convert -f k8s-netpol.yaml | margayctl apply -f -`);
    const converted = await ctl(["convert", "-f", k8sFile], undefined, false);
    out(indent(await ctl(["apply", "-f", "-"], converted, false)));
    out(indent(await ctl(["get", "tiers"])));
    record(
      "zero-trust",
      "After zero-trust policy",
      await measureUntil("zero-trust", "zero trust"),
      "only frontend → backend → database inside a tenant",
    );
    timed("matrix: zero trust");

    const denied = { from: "tenant-a/frontend", to: "tenant-a/database" };
    out();
    const explainArgs = [
      "policy",
      "explain",
      "--from",
      denied.from,
      "--to",
      denied.to,
      "--port",
      `${port}/tcp`,
    ];
    const explain = await ctl(explainArgs);
    out(indent(explain));
    steps.push({ kind: "explain", command: `margayctl ${explainArgs.join(" ")}`, text: explain });

    section("5. Dynamic: relabel one pod and watch its cells change");
    const weps = JSON.parse(
      await ctl(["get", "wep", "-n", RELABEL.namespace, "-o", "json"], undefined, false),
    ) as
      | { items?: { metadata: { name: string }; spec: { pod?: string } }[] }
      | { metadata: { name: string }; spec: { pod?: string } }[];
    const items = Array.isArray(weps) ? weps : (weps.items ?? []);
    const wep = items.find((w) => w.spec.pod === RELABEL.name);
    if (wep === undefined)
      throw new DemoError("command-failed", `no WorkloadEndpoint of ${RELABEL.namespace}/${RELABEL.name}`);
    const before = steps.findLast((s) => s.kind === "matrix");
    await ctl([
      "label",
      "wep",
      wep.metadata.name,
      `${RELABEL.key}=${RELABEL.value}`,
      "--overwrite",
      "-n",
      RELABEL.namespace,
    ]);
    const relabeled = await measureUntil("relabeled", "after relabel");
    const changed = before?.kind === "matrix" ? changedCells(before.measured, relabeled.measured) : [];
    record(
      "relabeled",
      `After relabeling ${RELABEL.namespace}/${RELABEL.name} to ${RELABEL.key}=${RELABEL.value}`,
      relabeled,
      `${changed.length} cell(s) changed (marked *)`,
      changed,
    );
    timed("relabel");

    section("6. Overlay: switch the pool to VXLAN (vxlanMode: Always)");
    const poolFile = join(work, "pool-vxlan.yaml");
    await writeFile(poolFile, poolManifest(POOL.name, POOL.cidr, POOL.blockSize, "Always"));
    out(indent(await ctl(["apply", "-f", poolFile])));
    const remote = pods.find((p) => p.host !== hosts[0])!;
    const vxlanRoute = async () => {
      const routes = await lab!.routes(hosts[0]!);
      const r = routes.find((x) => x.dst !== "default" && covers(x.dst, remote.ip));
      return r?.dev === VXLAN_DEVICE ? r : undefined;
    };
    const routeWait = `waiting for ${hosts[0]!.name} to route ${remote.ip}'s block through ${VXLAN_DEVICE}`;
    let viaDev = await progress(routeWait, () => poll("the VXLAN route", vxlanRoute, 10_000, 250)).catch(
      () => undefined,
    );
    if (viaDev === undefined) {
      // margay-node allocates its VXLAN tunnel address when it registers, at start: a pool switched to
      // VXLAN while it runs takes effect when the agents restart (they keep routes and rules meanwhile).
      out(`  the agents did not switch live (the VXLAN tunnel address is registered at agent start):`);
      await progress("restarting margay-node on every host (SIGTERM, start, /readyz)", async () => {
        await Promise.all(
          hosts.map(async (h) => {
            await lab!.stopAgent(h, "SIGTERM");
            lab!.startAgent(h);
            await lab!.waitReady(h);
          }),
        );
      });
      restarted = true;
      viaDev = await progress(routeWait, () => poll("the VXLAN route", vxlanRoute, 40_000)).catch(
        (e: unknown) => {
          failures += 1;
          out(`  ${red(`no VXLAN route: ${String(e)}`)}`);
          return undefined;
        },
      );
    }
    if (viaDev !== undefined)
      out(
        `    ${hosts[0]!.name}: ${viaDev.dst} dev ${viaDev.dev}${viaDev.gateway ? ` via ${viaDev.gateway}` : ""}`,
      );
    record(
      "vxlan",
      "Over VXLAN",
      await measureUntil("vxlan", "over VXLAN"),
      `unchanged: policy is independent of the encapsulation${restarted ? " (after restarting the agents)" : ""}`,
    );
    timed("vxlan");

    const nodeStatus: ReportHost[] = [];
    for (const h of hosts)
      nodeStatus.push({
        name: h.name,
        address: h.address,
        peers: peerTables[h.name] ?? [],
        pods: pods
          .filter((p) => p.host === h)
          .map((p) => ({ id: podId(p.spec), ip: p.ip, tier: p.spec.labels.tier ?? "" })),
      });
    const report: DemoReport = {
      title: "Margay demo",
      generatedAt: new Date().toISOString(),
      hosts: nodeStatus,
      blocks,
      steps,
      timings,
      failures,
    };
    await mkdir(dirname(opts.reportPath), { recursive: true });
    await writeFile(opts.reportPath, renderReport(report));

    if (opts.keep) {
      const state: KeptState = {
        lab: lab.name,
        dirs: [work, lab.dir],
        pidFile: `/run/margay-lab/${lab.name}.pid`,
      };
      await writeFile(STATE_FILE, JSON.stringify(state));
      section("Cluster kept (--keep)");
      out(`  Explore it with margayctl from host1's namespace, e.g.:`);
      out(
        `    ip netns exec ${hosts[0]!.ns} node ${join(dist, "margayctl.cjs")} --etcd-endpoints ${ETCD_URL} get wep -A`,
      );
      out(`  Pods' namespaces: ${pods.map((p) => p.ns).join(" ")}`);
      out(`  Remove it with: npm run demo -- down`);
    } else {
      section("7. Tear down");
      await progress("CNI DEL of every pod, stopping agents and etcd, deleting namespaces", async () => {
        await Promise.all(pods.map((p) => cni("DEL", p, "open").catch(() => undefined)));
        await cleanup();
      });
    }
    timed("teardown");
    printTimings(timings, started);
    out();
    out(`Report: ${opts.reportPath}`);
    out(
      `${failures === 0 ? green("All measured cells as expected.") : red(`${failures} cell(s) differ.`)} ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    return failures === 0 ? 0 : 1;
  } catch (e) {
    out(red(`demo failed: ${e instanceof Error ? e.message : String(e)}`));
    await cleanup().catch(() => undefined);
    printTimings(timings, started);
    return 2;
  } finally {
    if (!opts.keep) await rm(work, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** The time of each step (where a slow run spent it), and the total. */
function printTimings(timings: readonly { step: string; seconds: number }[], started: number) {
  out();
  out(bold("Time per step"));
  for (const t of timings) out(`  ${t.step.padEnd(20)} ${t.seconds.toFixed(1).padStart(6)} s`);
  out(`  ${"total".padEnd(20)} ${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s`);
}

/** True if CIDR `cidr` (IPv4) contains `ip`. */
function covers(cidr: string, ip: string): boolean {
  const [base, len] = cidr.includes("/") ? cidr.split("/") : [cidr, "32"];
  const n = (a: string) => a.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
  const bits = Number(len);
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(base ?? "")) return false;
  const mask = bits === 0 ? 0 : 2 ** 32 - 2 ** (32 - bits);
  return (n(base!) & mask) >>> 0 === (n(ip) & mask) >>> 0;
}

/** `demo down`: removes what `demo --keep` left (namespaces, processes in them, temp dirs). */
async function down(): Promise<number> {
  const state = JSON.parse(await readFile(STATE_FILE, "utf8").catch(() => "{}")) as Partial<KeptState>;
  // The demo process that owned the lab has exited, so the lab is stale: the lab's own cleaner removes it.
  const cleaned = await cleanStaleLabs(PREFIX);
  for (const d of state.dirs ?? []) await rm(d, { recursive: true, force: true });
  await rm(STATE_FILE, { force: true });
  const left = await listNamespaces(`${PREFIX}-`);
  out(cleaned.length === 0 ? "demo down: no kept demo cluster" : `demo down: removed ${cleaned.join(", ")}`);
  if (left.length > 0) out(`demo down: namespaces of a running demo left alone: ${left.join(" ")}`);
  return 0;
}

/** Parses argv and runs a verb; resolves with the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const args = [...argv];
  const verb = args[0] === "up" || args[0] === "down" ? args.shift()! : "up";
  let keep = false;
  let rebuild = false;
  let reportPath = resolve("demo-report.html");
  while (args.length > 0) {
    const a = args.shift()!;
    if (a === "--keep") keep = true;
    else if (a === "--rebuild") rebuild = true;
    else if (a === "--report" && args.length > 0) reportPath = resolve(args.shift()!);
    else if (a === "--help" || a === "-h") {
      out("usage: demo [up] [--keep] [--rebuild] [--report FILE]   |   demo down");
      return 0;
    } else {
      process.stderr.write(
        `demo: unknown argument ${a} (usage: demo [up] [--keep] [--rebuild] [--report FILE] | demo down)\n`,
      );
      return 2;
    }
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write("demo: needs root (network namespaces)\n");
    return 2;
  }
  return verb === "down" ? down() : up({ keep, reportPath, rebuild });
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`demo: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(2);
    },
  );
}
