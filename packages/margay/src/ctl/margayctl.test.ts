/**
 * The built margayctl against the memory datastore (a snapshot file in a temporary directory): golden
 * transcripts of every command and output format (`testdata/*.golden.txt`; MARGAYCTL_UPDATE_GOLDENS=1
 * rewrites them), and bad input of every kind: a non-zero documented exit code, one line on stderr, and
 * the datastore unchanged (its snapshot byte for byte, and `datastore export` before and after).
 *
 * Needs the bundle: `npx lerna run build --scope @margay/margay` (the first test says so if it is missing).
 */

import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createMemoryDatastore } from "@margay/datastore";
import { createIpam } from "@margay/ipam";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type CtlRun,
  golden,
  normalise,
  requireBuiltBinary,
  runMargayctl,
  TESTDATA,
  transcript,
} from "./ctl-harness.js";

let dir: string;
let snapshot: string;
const env = () => ({ DATASTORE_TYPE: "memory", MARGAY_SNAPSHOT_PATH: snapshot });
const paths = () => ({ [dir]: "<tmp>" });

async function ctl(args: string[], options: { stdin?: string; env?: Record<string, string> } = {}) {
  return runMargayctl(args, {
    env: { ...env(), ...options.env },
    cwd: TESTDATA,
    ...(options.stdin ? { stdin: options.stdin } : {}),
  });
}

/** Runs commands one after the other and returns their transcript. */
async function script(commands: (string[] | { args: string[]; stdin: string })[]): Promise<string> {
  const out: string[] = [];
  for (const c of commands) {
    const r = Array.isArray(c) ? await ctl(c) : await ctl(c.args, { stdin: c.stdin });
    out.push(transcript(r, paths()));
  }
  return out.join("\n");
}

beforeAll(() => {
  requireBuiltBinary();
  dir = mkdtempSync(join(tmpdir(), "margayctl-"));
  snapshot = join(dir, "datastore.json");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ALL_KINDS =
  "ippool,ipamconfig,ipreservation,node,wep,hep,profile,tier,netpol,gnp,networkset,globalnetworkset,bgppeer,bgpconfig,agentconfig";

describe("margayctl (built binary, memory datastore)", () => {
  it("resource verbs and every output format match the golden transcript", { timeout: 180_000 }, async () => {
    const text = await script([
      ["apply", "-f", "all-kinds.yaml"],
      ["apply", "-f", "all-kinds.yaml"],
      ["get", ALL_KINDS, "-A"],
      ["get", ALL_KINDS, "-A", "-o", "wide"],
      ["get", ALL_KINDS, "-A", "-o", "yaml"],
      ["get", "pools", "-o", "json"],
      ["get", "pool", "pool-a", "-o", "yaml"],
      ["get", "ippools", "-o", "name"],
      ["get", "pools", "-o", "custom-columns=NAME:.metadata.name,CIDR:.spec.cidr,ZONE:.metadata.labels.zone"],
      ["get", "pools", "-l", "zone == 'a'"],
      ["get", "pools", "-l", "zone=a"],
      ["create", "-f", "calico.yaml"],
      ["create", "-f", "calico.yaml", "--skip-exists"],
      ["replace", "-f", "replace.yaml"],
      ["patch", "ippool", "pool-a", "-p", '{"spec":{"disabled":true}}'],
      ["label", "ippool", "pool-a", "rack=r1", "zone=b", "--overwrite"],
      ["label", "ippool", "pool-a", "rack", "--remove"],
      ["get", "pool", "pool-a", "calico-pool", "-o", "wide"],
      { args: ["apply", "-f", "-"], stdin: readFileSync(join(TESTDATA, "k8s-netpol.yaml"), "utf8") },
      ["get", "netpol", "-n", "prod", "-o", "wide"],
      ["delete", "ippool", "calico-pool"],
      ["delete", "-f", "calico.yaml", "--skip-not-exists"],
      ["convert", "-f", "calico.yaml"],
      ["convert", "-f", "k8s-netpol.yaml", "-o", "json"],
      ["version"],
      ["--help"],
      ["get", "--help"],
    ]);
    const g = golden("memory-resources.golden.txt", text);
    expect(g.actual).toBe(g.expected);
  });

  it("ipam show / check / release / configure match the golden transcript", {
    timeout: 180_000,
  }, async () => {
    const ipamSnap = join(dir, "ipam.json");
    const ds = createMemoryDatastore({ snapshotPath: ipamSnap });
    await ds.create({
      apiVersion: "margay.io/v1",
      kind: "IPPool",
      metadata: { name: "pool-a" },
      spec: { cidr: "10.244.0.0/24", blockSize: 28 },
    });
    for (const n of ["node-1", "node-2"])
      await ds.create({ apiVersion: "margay.io/v1", kind: "Node", metadata: { name: n }, spec: {} });
    await ds.create({
      apiVersion: "margay.io/v1",
      kind: "WorkloadEndpoint",
      metadata: { name: "node--1-k8s-a-eth0", namespace: "x" },
      spec: { node: "node-1", pod: "a", interfaceName: "mgya", ipNetworks: ["10.244.0.1/32"] },
    } as never);
    const ipam = createIpam({ datastore: ds });
    await ipam.claimAffinity("10.244.0.0/28", "node-1");
    await ipam.claimAffinity("10.244.0.16/28", "node-2");
    await ipam.assignIP("10.244.0.1", {
      handleId: "k8s-pod-network.c1",
      node: "node-1",
      attrs: { namespace: "x", pod: "a" },
    });
    await ipam.assignIP("10.244.0.2", {
      handleId: "k8s-pod-network.c2",
      node: "node-1",
      attrs: { namespace: "x", pod: "gone" },
    });
    // node-2 borrows from node-1's block.
    await ipam.assignIP("10.244.0.3", {
      handleId: "k8s-pod-network.c3",
      node: "node-2",
      attrs: { namespace: "y", pod: "b" },
    });
    await ipam.assignIP("10.244.0.17", {
      handleId: "tunnel.node-2",
      node: "node-2",
      attrs: { type: "vxlanTunnelAddress" },
    });
    await ipam.close();
    await ds.flush();
    await ds.close();
    const report = join(dir, "report.json");
    const e = { MARGAY_SNAPSHOT_PATH: ipamSnap };
    const out: string[] = [];
    for (const args of [
      ["ipam", "show"],
      ["ipam", "show", "--show-blocks"],
      ["ipam", "show", "--by-node", "--show-borrowed", "--show-leaks"],
      ["ipam", "show", "-o", "json", "--show-blocks"],
      ["ipam", "show", "--ip", "10.244.0.3"],
      ["ipam", "show", "--show-configuration"],
      ["ipam", "check", "-o", report],
      ["ipam", "release", "--from-report", report],
      ["ipam", "show", "--show-leaks"],
      ["ipam", "release", "--ip", "10.244.0.1"],
      ["ipam", "configure", "--strictaffinity=true", "--max-blocks-per-host", "4"],
      ["ipam", "show", "--show-configuration", "-o", "json"],
    ])
      out.push(transcript(await ctl(args, { env: e }), paths()));
    const g = golden("memory-ipam.golden.txt", out.join("\n"));
    expect(g.actual).toBe(g.expected);
    const file = JSON.parse(readFileSync(report, "utf8"));
    expect(file.report.leaks.map((l: { handleId: string }) => l.handleId).sort()).toEqual([
      "k8s-pod-network.c2",
      "k8s-pod-network.c3",
    ]);
  });

  it("node list / node status read NodeStatus; export + import migrate a datastore; completion", {
    timeout: 180_000,
  }, async () => {
    const snap = join(dir, "nodes.json");
    const ds = createMemoryDatastore({ snapshotPath: snap });
    for (const n of ["node-1", "node-2"])
      await ds.create({
        apiVersion: "margay.io/v1",
        kind: "Node",
        metadata: { name: n },
        spec: { bgp: { asNumber: 64512, ipv4Address: `10.0.0.${n.slice(-1)}/24` } },
      });
    await ds.create({
      apiVersion: "margay.io/v1",
      kind: "NodeStatus",
      metadata: { name: "node-1" },
      spec: { node: "node-1" },
      status: {
        agent: {
          version: "0.1.0",
          startedAt: "2026-01-02T03:04:05Z",
          ready: false,
          components: [
            { name: "datastore", live: true, ready: true },
            { name: "bgp", live: true, ready: false, reason: "peer 10.0.0.2 not established" },
          ],
        },
        addresses: { ipv4: "10.0.0.1/24", interface: "eth0" },
        mtu: 1450,
        dataplane: { inSync: true, lastApply: "2026-01-02T03:05:00Z" },
        bgp: {
          peers: [
            {
              address: "10.0.0.2",
              asNumber: 64512,
              type: "NodeMesh",
              state: "Active",
              since: "2026-01-02T03:04:10Z",
              lastError: "TCP 179 refused",
              routesImported: 0,
              routesExported: 1,
            },
          ],
        },
        updatedAt: "2026-01-02T03:06:00Z",
      },
    } as never);
    await ds.flush();
    await ds.close();
    const e = { MARGAY_SNAPSHOT_PATH: snap };
    const out: string[] = [];
    for (const args of [
      ["node", "list"],
      ["node", "list", "-o", "wide"],
      ["node", "status", "node-1"],
      ["node", "status", "node-2"],
      ["version"],
    ])
      out.push(transcript(await ctl(args, { env: e }), paths()));
    const g = golden("memory-nodes.golden.txt", out.join("\n"));
    expect(g.actual).toBe(g.expected);

    // Migration: export, import into an empty datastore, export again: the same objects.
    const dump = join(dir, "dump.yaml");
    const copy = join(dir, "copy.json");
    expect((await ctl(["datastore", "export", "-o", dump], { env: e })).code).toBe(0);
    const imported = await ctl(["datastore", "import", "-f", dump], { env: { MARGAY_SNAPSHOT_PATH: copy } });
    expect(imported.stdout).toBe("imported 3 objects into the memory datastore\n");
    const again = await ctl(["datastore", "export"], { env: { MARGAY_SNAPSHOT_PATH: copy } });
    expect(normalise(again.stdout)).toBe(normalise(readFileSync(dump, "utf8")));

    const bash = await ctl(["completion", "bash"]);
    expect(bash.code).toBe(0);
    writeFileSync(join(dir, "c.bash"), bash.stdout);
    // The script parses, and completes resource types after `get` and subcommands after `ipam`.
    const probe = (words: string) =>
      execFileSync(
        "bash",
        [
          "-c",
          `source ${join(dir, "c.bash")}; COMP_WORDS=(${words}); COMP_CWORD=$((\${#COMP_WORDS[@]}-1)); _margayctl; echo "\${COMPREPLY[*]}"`,
        ],
        {
          encoding: "utf8",
        },
      ).trim();
    expect(probe('margayctl get "ipp"').split(" ")).toEqual(["ippool", "ippools"]);
    expect(probe('margayctl ipam ""').split(" ").slice(0, 4)).toEqual([
      "show",
      "check",
      "release",
      "configure",
    ]);
    expect((await ctl(["completion", "zsh"])).stdout).toContain("#compdef margayctl");
  });
});

/** One bad invocation: expected exit code and a fragment of its one-line cause. */
interface BadCase {
  name: string;
  args: string[];
  code: number;
  cause: string;
  env?: Record<string, string>;
  stdin?: string;
}

const BAD: BadCase[] = [
  {
    name: "invalid field in the 2nd document",
    args: ["apply", "-f", "bad/invalid-second.yaml"],
    code: 2,
    cause:
      'bad/invalid-second.yaml: document 1, line 8: invalid GlobalNetworkPolicy "broken": spec.ingress[0].destination.ports[1]',
  },
  {
    name: "YAML syntax error",
    args: ["create", "-f", "bad/syntax.yaml"],
    code: 2,
    cause: "bad/syntax.yaml: document 0, line",
  },
  {
    name: "unknown kind",
    args: ["apply", "-f", "bad/unknown-kind.yaml"],
    code: 2,
    cause: 'unknown kind "Gateway"',
  },
  {
    name: "unsupported apiVersion",
    args: ["apply", "-f", "bad/bad-apiversion.yaml"],
    code: 2,
    cause: "unsupported apiVersion",
  },
  {
    name: "duplicate object in a batch",
    args: ["apply", "-f", "bad/duplicate.yaml"],
    code: 2,
    cause: "ippool/twice is also defined at",
  },
  {
    name: "bad selector in a List item",
    args: ["apply", "-f", "bad/bad-selector-list.yaml"],
    code: 2,
    cause: "item 1",
  },
  {
    name: "bad document on stdin",
    args: ["apply", "-f", "-"],
    stdin: "kind: IPPool\n",
    code: 2,
    cause: "<stdin>: document 0",
  },
  {
    name: "create of an existing object",
    args: ["create", "-f", "all-kinds.yaml"],
    code: 3,
    cause: "already exists: ippool/pool-a",
  },
  {
    name: "create batch whose 2nd object exists (the 1st is new)",
    args: ["create", "-f", "bad/create-mixed.yaml"],
    code: 3,
    cause: "already exists: ippool/pool-a (nothing written",
  },
  {
    name: "replace batch whose 2nd object is missing (the 1st exists)",
    args: ["replace", "-f", "bad/replace-mixed.yaml"],
    code: 3,
    cause: "not found: ippool/ghost-pool (nothing written)",
  },
  {
    name: "apply with a stale resourceVersion (compare-and-swap; its batch mate not written either)",
    args: ["apply", "-f", "bad/stale-rv.yaml"],
    code: 1,
    cause: "conflict",
  },
  {
    name: "replace of a missing object",
    args: ["replace", "-f", "calico.yaml"],
    code: 3,
    cause: "not found: ippool/calico-pool",
  },
  {
    name: "delete of a missing object",
    args: ["delete", "ippool", "nope", "pool-a"],
    code: 3,
    cause: "not found: ippool/nope",
  },
  {
    name: "get of a missing object",
    args: ["get", "gnp", "nope"],
    code: 3,
    cause: "not found: globalnetworkpolicy/nope",
  },
  {
    name: "unknown resource type",
    args: ["get", "gateways"],
    code: 2,
    cause: 'unknown resource type "gateways"',
  },
  {
    name: "unknown output format",
    args: ["get", "pools", "-o", "xml"],
    code: 2,
    cause: "-o: unknown output format",
  },
  {
    name: "bad custom-columns",
    args: ["get", "pools", "-o", "custom-columns=NAME"],
    code: 2,
    cause: "expected HEADING:.field.path",
  },
  { name: "bad label selector", args: ["get", "pools", "-l", "zone == 'a' &&"], code: 2, cause: "-l:" },
  { name: "unknown flag", args: ["get", "pools", "--colour"], code: 2, cause: "unknown option '--colour'" },
  { name: "-n with -A", args: ["get", "wep", "-n", "x", "-A"], code: 2, cause: "cannot be used together" },
  {
    name: "patch to an invalid value",
    args: ["patch", "ippool", "pool-a", "-p", '{"spec":{"blockSize":99}}'],
    code: 2,
    cause: "ippool/pool-a: spec.blockSize",
  },
  {
    name: "patch renaming",
    args: ["patch", "ippool", "pool-a", "-p", '{"metadata":{"name":"other"}}'],
    code: 2,
    cause: "cannot be changed",
  },
  {
    name: "patch that is not an object",
    args: ["patch", "ippool", "pool-a", "-p", "[1]"],
    code: 2,
    cause: "must be an object",
  },
  {
    name: "label clash without --overwrite",
    args: ["label", "ippool", "pool-a", "zone=b"],
    code: 2,
    cause: "(--overwrite replaces it)",
  },
  {
    name: "label of a missing object",
    args: ["label", "node", "ghost", "a=b"],
    code: 3,
    cause: "not found: node/ghost",
  },
  {
    name: "missing file",
    args: ["apply", "-f", "bad/nope.yaml"],
    code: 1,
    cause: "-f bad/nope.yaml: cannot read it (ENOENT)",
  },
  {
    name: "directory without manifests",
    args: ["apply", "-f", "bad/empty-dir"],
    code: 2,
    cause: "holds no .yaml",
  },
  {
    name: "bad datastore type",
    args: ["get", "pools", "--datastore-type", "consul"],
    code: 2,
    cause: "--datastore-type: datastore type must be",
  },
  {
    name: "config file with an unknown field",
    args: ["get", "pools", "--config", "bad/bad-config.cfg"],
    env: { DATASTORE_TYPE: "", MARGAY_SNAPSHOT_PATH: "" },
    code: 2,
    cause: "spec.snapshotPth: unknown field",
  },
  {
    name: "missing CA file",
    args: [
      "get",
      "pools",
      "--datastore-type",
      "etcdv3",
      "--etcd-endpoints",
      "https://127.0.0.1:1",
      "--etcd-ca-cert-file",
      "/nonexistent/ca.crt",
    ],
    code: 2,
    cause: "--etcd-ca-cert-file: cannot read CA certificate file /nonexistent/ca.crt (ENOENT)",
  },
  {
    name: "etcd password in the environment",
    args: ["get", "pools"],
    env: { ETCD_PASSWORD: "hunter2" },
    code: 2,
    cause: "env:ETCD_PASSWORD",
  },
  {
    name: "ipam release of a bad address",
    args: ["ipam", "release", "--ip", "10.0.0.300"],
    code: 2,
    cause: "--ip: not an IP address",
  },
  {
    name: "ipam release from a bad report",
    args: ["ipam", "release", "--from-report", "bad/bad-report.json"],
    code: 2,
    cause: "report.leaks[0].ips must be IP addresses",
  },
  {
    name: "ipam configure with a bad value",
    args: ["ipam", "configure", "--strictaffinity", "yes"],
    code: 2,
    cause: "--strictaffinity: expected true or false",
  },
  {
    name: "datastore import of manifests (not an export)",
    args: ["datastore", "import", "-f", "all-kinds.yaml"],
    code: 2,
    cause: "all-kinds.yaml: not a datastore export",
  },
  {
    name: "datastore import into a non-empty datastore",
    args: ["datastore", "import", "-f", "export-one.yaml"],
    code: 3,
    cause: "the target datastore is not empty",
  },
  {
    name: "datastore import of an invalid export",
    args: ["datastore", "import", "-f", "bad/not-an-export.yaml"],
    code: 2,
    cause: "items[0] (ippool/p): spec.cidr",
  },
  {
    name: "policy explain of an unknown pod",
    args: ["policy", "explain", "--from", "x/ghost", "--to", "10.0.0.1"],
    code: 3,
    cause: "no workload endpoint for pod x/ghost",
  },
  {
    name: "policy explain with a bad port",
    args: ["policy", "explain", "--from", "10.0.0.2", "--to", "10.0.0.1", "--port", "80/tcp/x"],
    code: 2,
    cause: "--port: expected",
  },
  {
    name: "policy matrix with a bad --with file",
    args: ["policy", "matrix", "--with", "bad/invalid-second.yaml"],
    code: 2,
    cause: "spec.ingress[0].destination.ports[1]",
  },
];

describe("margayctl bad input (built binary, memory datastore)", () => {
  it(`${BAD.length} kinds of bad input: documented exit code, one line on stderr, datastore unchanged`, {
    timeout: 240_000,
  }, async () => {
    // A populated datastore every case runs against (its own copy, so the cases run concurrently).
    const base = join(dir, "bad-base.json");
    const seeded = await runMargayctl(["apply", "-f", "all-kinds.yaml"], {
      env: { DATASTORE_TYPE: "memory", MARGAY_SNAPSHOT_PATH: base },
      cwd: TESTDATA,
    });
    expect(seeded.code, seeded.stderr).toBe(0);
    const before = readFileSync(base);
    const exportOf = async (snap: string) =>
      (
        await runMargayctl(["datastore", "export"], {
          env: { DATASTORE_TYPE: "memory", MARGAY_SNAPSHOT_PATH: snap },
        })
      ).stdout;
    const exported = await exportOf(base);
    const results: { c: BadCase; r: CtlRun; snap: string }[] = [];
    const queue = [...BAD.entries()];
    const worker = async () => {
      for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
        const [i, c] = next;
        const snap = join(dir, `bad-${i}.json`);
        copyFileSync(base, snap);
        const r = await runMargayctl(c.args, {
          env: { DATASTORE_TYPE: "memory", MARGAY_SNAPSHOT_PATH: snap, ...c.env },
          cwd: TESTDATA,
          ...(c.stdin !== undefined ? { stdin: c.stdin } : {}),
        });
        results.push({ c, r, snap });
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    const wrong: string[] = [];
    for (const { c, r, snap } of results) {
      const lines = r.stderr.split("\n").filter((l) => l !== "");
      if (r.code !== c.code) wrong.push(`${c.name}: exit ${r.code}, expected ${c.code} (${r.stderr.trim()})`);
      if (lines.length !== 1)
        wrong.push(`${c.name}: ${lines.length} lines on stderr: ${JSON.stringify(r.stderr)}`);
      if (!r.stderr.includes(c.cause))
        wrong.push(`${c.name}: stderr ${JSON.stringify(r.stderr)} lacks ${JSON.stringify(c.cause)}`);
      if (r.stdout !== "") wrong.push(`${c.name}: wrote to stdout: ${JSON.stringify(r.stdout)}`);
      if (existsSync(snap) && !readFileSync(snap).equals(before))
        wrong.push(`${c.name}: the snapshot changed`);
    }
    expect(wrong).toEqual([]);
    // And through the CLI itself: the export of a datastore that saw a failed batch is unchanged.
    expect(await exportOf(join(dir, "bad-0.json"))).toBe(exported);
    const g = golden(
      "memory-bad-input.golden.txt",
      results
        .sort((a, b) => BAD.indexOf(a.c) - BAD.indexOf(b.c))
        .map(({ c, r }) => `# ${c.name}\n${transcript(r, { [dir]: "<tmp>" })}`)
        .join("\n"),
    );
    expect(g.actual).toBe(g.expected);
  });
});
