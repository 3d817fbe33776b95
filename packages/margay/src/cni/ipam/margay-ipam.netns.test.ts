import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { NetConf, NetConfList } from "@margay/cni";
import type { ConformanceReport } from "@margay/cni/testing";
import { DEFAULT_PLUGIN_ENV } from "@margay/cni";
import {
  createNetns,
  formatReport,
  type Invocation,
  netnsLinks,
  randomContainerId,
  rawExec,
  runBadInput,
  runConformance,
  STRICT_BAD_INPUTS,
  type TestNetns,
  validAddInvocation,
} from "@margay/cni/testing";
import { createMemoryDatastore } from "@margay/datastore";
import { createIpam } from "@margay/ipam";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildMargayIpamBundle } from "./build-bundle.js";
import { acquireFileLock } from "./file-lock.js";

// margay-ipam as Debian's bridge and ptp use it: the one-file executable as shipped, in a CNI_PATH
// directory (its V8 code cache lands next to it), state in the memory backend's snapshot file.

const DEBIAN = "/usr/lib/cni";
let dir: string;
let binDir: string;
let snapshotPath: string;

/** Every address the IPAM holds, read from the snapshot under the plugin's own lock. */
async function allocations(): Promise<string[]> {
  await mkdir(dirname(snapshotPath), { recursive: true });
  const lock = await acquireFileLock(`${snapshotPath}.lock`);
  try {
    const ds = createMemoryDatastore({ snapshotPath });
    const ipam = createIpam({ datastore: ds });
    try {
      const report = await ipam.check([]);
      return report.leaks.flatMap((l) => l.ips);
    } finally {
      await ipam.close();
      await ds.close();
    }
  } finally {
    await lock.release();
  }
}

function ipamSection(cidr: string) {
  return {
    type: "margay-ipam",
    datastore: { type: "memory", snapshotPath },
    node: "node-a",
    pools: [{ cidr, blockSize: 28 }],
    routes: [{ dst: "0.0.0.0/0" }],
  };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mgcni-margay-ipam-"));
  binDir = join(dir, "bin");
  await mkdir(binDir);
  snapshotPath = join(dir, "state", "ipam.json");
  await buildMargayIpamBundle(join(binDir, "margay-ipam"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const EXPECTED = {
  version: "pass",
  "add-check-del": "pass",
  "del-without-add": "pass",
  "del-twice": "pass",
  "del-after-netns-gone": "pass",
  "bad-input": "pass",
  "chained-prev-result": "pass",
  "concurrent-adds": "pass",
  status: "not-applicable",
  gc: "not-applicable",
};

describe("Debian bridge / ptp with margay-ipam, chained with portmap and tuning, through the kit", () => {
  const chains: Array<[string, Record<string, unknown>, string]> = [
    ["bridge", { type: "bridge", bridge: "mgcnibr1", isGateway: true }, "10.249.0.0/24"],
    ["ptp", { type: "ptp" }, "10.249.1.0/24"],
  ];
  for (const [name, main, cidr] of chains) {
    it(`${name} + margay-ipam → portmap → tuning passes every scenario the main plugin's version allows`, async () => {
      const config: NetConfList = {
        cniVersion: "1.0.0",
        cniVersions: ["1.0.0", "1.1.0"],
        name: `mg-${name}`,
        plugins: [
          { ...main, type: String(main.type), ipam: ipamSection(cidr) },
          { type: "portmap", capabilities: { portMappings: true } },
          { type: "tuning", sysctl: { "net.ipv4.conf.all.log_martians": "0" } },
        ],
      };
      const report = await runConformance({ config, path: [binDir, DEBIAN], allocations, concurrency: 6 });
      const table = formatReport(report);
      expect(Object.fromEntries(report.scenarios.map((s) => [s.id, s.outcome])), table).toEqual(EXPECTED);
      // Debian's bridge/ptp stop at 1.0.0, so the chain runs at 1.0.0; margay-ipam itself speaks 1.1.0
      // (its STATUS/GC are tested below).
      expect(report.testedVersion).toBe("1.0.0");
      expect(report.supportedVersions[name]).toEqual(["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"]);
      const reason = (id: string) => report.scenarios.find((s) => s.id === id)!.reason;
      // bad-input feeds the first plugin (Debian's): its one SHOULD deviation, as in the Debian report.
      expect(reason("bad-input")).toMatch(
        /^15\/16 .*SHOULD deviations: CNI_COMMAND missing → exit 0 \(wanted code 4\)$/,
      );
      expect(reason("add-check-del")).toMatch(
        new RegExp(
          `^ADD put ${cidr.slice(0, cidr.lastIndexOf("."))}\\.\\d+ on eth0; CHECK ok; DEL removed it and released the address$`,
        ),
      );
      expect(reason("concurrent-adds")).toBe("6 parallel ADDs got 6 distinct addresses; all released");
      expect(await allocations()).toEqual([]);
    });
  }
});

describe("margay-ipam on its own", () => {
  let ns: TestNetns;
  let conf: NetConf;
  let valid: Invocation;
  let bin: string;
  beforeAll(async () => {
    ns = await createNetns("mgcni");
    bin = join(binDir, "margay-ipam");
    conf = { cniVersion: "1.1.0", name: "mg-solo", type: "bridge", ipam: ipamSection("10.249.2.0/24") };
    valid = validAddInvocation(conf, { netns: ns.path, path: [binDir] });
  });
  afterAll(async () => {
    await ns.close();
  });

  for (const c of STRICT_BAD_INPUTS) {
    it(`bad input: ${c.name} → ${c.expectCode === "any" ? "an error" : `code ${c.expectCode}`}, nothing allocated`, async () => {
      const r = await runBadInput(bin, c, valid, conf);
      expect(r.ok, r.observed).toBe(true);
      expect(r.exec.exitCode).not.toBe(0);
      expect(await allocations()).toEqual([]);
      expect((await netnsLinks(ns.name)).map((l) => l.ifname)).toEqual(["lo"]);
    });
  }

  const extra: Array<[string, (c: Record<string, unknown>) => void, number, RegExp]> = [
    [
      "ipam.datastore missing",
      (c) => delete (c.ipam as Record<string, unknown>).datastore,
      7,
      /^\$\.ipam\.datastore:/,
    ],
    [
      "ipam.datastore.type unknown",
      (c) => ((c.ipam as { datastore: { type: string } }).datastore.type = "redis"),
      7,
      /^\$\.ipam\.datastore\.type:/,
    ],
    [
      "ipam.pools[0].cidr invalid",
      (c) => ((c.ipam as { pools: Array<{ cidr: string }> }).pools[0]!.cidr = "10.1.2.3"),
      7,
      /^\$\.ipam\.pools\[0\]\.cidr:/,
    ],
    ["ipam.pools empty", (c) => ((c.ipam as { pools: unknown[] }).pools = []), 7, /^\$\.ipam\.pools:/],
    [
      "ipam.routes[0].dst not a CIDR",
      (c) => ((c.ipam as { routes: unknown[] }).routes = [{ dst: "default" }]),
      7,
      /^\$\.ipam\.routes\[0\]\.dst:/,
    ],
  ];
  for (const [name, mutate, code, msg] of extra) {
    it(`bad ipam config: ${name} → code ${code} naming the path`, async () => {
      const c = structuredClone(conf) as Record<string, unknown>;
      mutate(c);
      const r = await rawExec(bin, valid.env, JSON.stringify(c));
      expect(r.exitCode).toBe(1);
      const obj = JSON.parse(r.stdout) as { code: number; msg: string };
      expect(obj.code).toBe(code);
      expect(obj.msg).toMatch(msg);
      expect(await allocations()).toEqual([]);
    });
  }

  it("ADD is idempotent per handle, CHECK verifies it, STATUS is ready, GC frees what is not valid", async () => {
    const env = (id: string, command: string) => ({
      ...valid.env,
      CNI_CONTAINERID: id,
      CNI_COMMAND: command,
    });
    const [a, b] = [randomContainerId(), randomContainerId()];
    const ra = JSON.parse((await rawExec(bin, env(a, "ADD"), valid.stdin)).stdout) as {
      ips: Array<{ address: string; gateway: string }>;
    };
    const again = JSON.parse((await rawExec(bin, env(a, "ADD"), valid.stdin)).stdout) as typeof ra;
    expect(again.ips).toEqual(ra.ips);
    expect(ra.ips[0]!.gateway).toBe("10.249.2.1");
    expect(ra.ips[0]!.address).toMatch(/^10\.249\.2\.\d+\/24$/);
    const rb = JSON.parse((await rawExec(bin, env(b, "ADD"), valid.stdin)).stdout) as typeof ra;
    expect(rb.ips[0]!.address).not.toBe(ra.ips[0]!.address);
    const check = await rawExec(
      bin,
      env(a, "CHECK"),
      JSON.stringify({ ...conf, prevResult: { cniVersion: "1.1.0", ...ra } }),
    );
    expect(check.exitCode, check.stdout).toBe(0);
    const wrong = await rawExec(
      bin,
      env(a, "CHECK"),
      JSON.stringify({ ...conf, prevResult: { cniVersion: "1.1.0", ...rb } }),
    );
    expect(JSON.parse(wrong.stdout)).toMatchObject({ code: 120 });

    const status = await rawExec(bin, { ...DEFAULT_PLUGIN_ENV, CNI_COMMAND: "STATUS" }, valid.stdin);
    expect(status).toMatchObject({ exitCode: 0, stdout: "" });

    // No grace period here: b is a leak the moment it is not listed (the default, 60 s, protects
    // ADDs in flight; margay-ipam-etcd.interop.test.ts shows an ADD racing a GC survives it).
    const gcConf = {
      ...conf,
      ipam: { ...(conf.ipam as Record<string, unknown>), gcGracePeriodMs: 0 },
      "cni.dev/valid-attachments": [{ containerID: a, ifname: "eth0" }],
    };
    const gc = await rawExec(
      bin,
      { ...DEFAULT_PLUGIN_ENV, CNI_COMMAND: "GC", CNI_PATH: binDir },
      JSON.stringify(gcConf),
    );
    expect(gc.exitCode, gc.stdout).toBe(0);
    const host = (r: typeof ra) => r.ips[0]!.address.split("/")[0]!;
    expect(await allocations()).toEqual([host(ra)]);
    await rawExec(bin, env(a, "DEL"), valid.stdin);
    expect(await allocations()).toEqual([]);
  });

  it("STATUS reports code 50 when the datastore is unreachable", async () => {
    const c = {
      ...conf,
      ipam: {
        ...ipamSection("10.249.3.0/24"),
        datastore: { type: "etcd", endpoints: ["http://127.0.0.1:9"], requestTimeoutMs: 500 },
      },
    };
    const r = await rawExec(bin, { ...DEFAULT_PLUGIN_ENV, CNI_COMMAND: "STATUS" }, JSON.stringify(c));
    expect(r.exitCode).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ code: 50 });
  });

  it("16 concurrent ADDs through the lock file get distinct addresses", async () => {
    const ids = Array.from({ length: 16 }, () => randomContainerId());
    const outs = await Promise.all(
      ids.map((id) => rawExec(bin, { ...valid.env, CNI_CONTAINERID: id }, valid.stdin)),
    );
    expect(outs.map((o) => o.exitCode)).toEqual(ids.map(() => 0));
    const addrs = outs.map(
      (o) => (JSON.parse(o.stdout) as { ips: Array<{ address: string }> }).ips[0]!.address,
    );
    expect(new Set(addrs).size).toBe(16);
    expect((await allocations()).length).toBe(16);
    await Promise.all(
      ids.map((id) => rawExec(bin, { ...valid.env, CNI_COMMAND: "DEL", CNI_CONTAINERID: id }, valid.stdin)),
    );
    expect(await allocations()).toEqual([]);
  });
});

describe("cni-conformance --inspect margay-ipam", () => {
  const CLI = fileURLToPath(new URL("../../../../cni/src/testing/cli.ts", import.meta.url));
  const TSX = createRequire(import.meta.url).resolve("tsx");
  const cli = (args: string[]) =>
    promisify(execFile)(process.execPath, ["--import", TSX, CLI, ...args]).then(
      (r) => ({ code: 0, ...r }),
      (e: { code: number; stdout: string; stderr: string }) => ({
        code: e.code,
        stdout: e.stdout,
        stderr: e.stderr,
      }),
    );

  it("checks addresses through margay-ipam's own store, so the report claims release only when checked", async () => {
    const file = join(dir, "ptp-margay.conflist");
    await writeFile(
      file,
      JSON.stringify({
        cniVersion: "1.0.0",
        name: "mg-cli",
        plugins: [{ type: "ptp", ipam: ipamSection("10.249.4.0/24") }],
      }),
    );
    const args = [
      "--config",
      file,
      "--path",
      `${binDir}:${DEBIAN}`,
      "--scenarios",
      "add-check-del,concurrent-adds",
      "--json",
    ];
    const inspected = await cli([...args, "--inspect", "margay-ipam"]);
    expect(inspected.code, inspected.stderr + inspected.stdout).toBe(0);
    const report = JSON.parse(inspected.stdout) as ConformanceReport;
    expect(report.allocationsChecked).toBe(true);
    const reason = (r: ConformanceReport, id: string) => r.scenarios.find((s) => s.id === id)!.reason;
    // add-check-del fails when the inspector does not list the address ADD returned: this proves it reads the store.
    expect(reason(report, "add-check-del")).toMatch(/DEL removed it and released the address$/);
    expect(reason(report, "concurrent-adds")).toBe("4 parallel ADDs got 4 distinct addresses; all released");

    const blind = await cli(args);
    expect(blind.code, blind.stderr).toBe(0);
    const blindReport = JSON.parse(blind.stdout) as ConformanceReport;
    expect(blindReport.allocationsChecked).toBe(false);
    expect(reason(blindReport, "concurrent-adds")).toMatch(/release not checked: no allocations inspector/);
    expect(reason(blindReport, "add-check-del")).not.toMatch(/released/);

    // The generic hook: any command printing addresses (here the same subcommand, as a JSON argv).
    const conf = JSON.stringify({
      cniVersion: "1.0.0",
      name: "mg-cli",
      type: "ptp",
      ipam: ipamSection("10.249.4.0/24"),
    });
    const confFile = join(dir, "mg-cli-ipam.json");
    await writeFile(confFile, conf);
    const script = join(dir, "inspect.mjs");
    await writeFile(
      script,
      [
        'import { spawnSync } from "node:child_process";',
        'import { readFileSync } from "node:fs";',
        'const r = spawnSync(process.argv[2], ["allocations"], { input: readFileSync(process.argv[3]) });',
        "process.stdout.write(r.stdout);",
        "process.stderr.write(r.stderr);",
        "process.exit(r.status ?? 1);",
      ].join("\n"),
    );
    // The space-separated form (no shell: split into arguments).
    const hook = await cli([
      ...args,
      "--inspect",
      `${process.execPath} ${script} ${join(binDir, "margay-ipam")} ${confFile}`,
    ]);
    expect(hook.code, hook.stderr + hook.stdout).toBe(0);
    const hookReport = JSON.parse(hook.stdout) as ConformanceReport;
    expect(hookReport.allocationsChecked).toBe(true);
    expect(reason(hookReport, "concurrent-adds")).toBe(
      "4 parallel ADDs got 4 distinct addresses; all released",
    );
  });
});
