/**
 * The guides' commands, run as written: every ```sh block of a guide, in order, in one bash process
 * (`set -euo pipefail`), so a command that fails or a guide that drifts from the programs fails here.
 *
 * A guide "host" is a fresh network namespace whose only interface is `eth0` (10.88.0.1/24, a veth whose
 * peer stays in the namespace) and a default route via 10.88.0.254, in an empty temp directory, with `margay-node`, `margayctl` and `margay`
 * on PATH (the built bundles of this package: the e2e tier builds first). The host namespace is never
 * touched; namespaces, processes and files are removed even when the guide fails.
 *
 * A block fenced ```sh host-1 host-2 runs on those guide hosts of the several-hosts walkthrough (getting
 * started: three hosts with etcd): namespaces on one bridge, each with its own host name, mount namespace
 * and directory; a block for several hosts runs on each at once, and each host keeps its exported variables.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const repo = fileURLToPath(new URL("../../../../", import.meta.url));
const dist = join(repo, "packages/margay/dist/bin");

interface ShellBlock {
  line: number;
  code: string;
}

/** The ```sh blocks of a Markdown page (a `console` block is shown, not run). */
function shellBlocks(markdown: string): ShellBlock[] {
  const lines = markdown.split("\n");
  const out: ShellBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== "```sh") continue;
    let j = i + 1;
    while (j < lines.length && !lines[j]!.startsWith("```")) j++;
    out.push({ line: i + 1, code: lines.slice(i + 1, j).join("\n") });
    i = j;
  }
  return out;
}

function ip(args: string[]): void {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ip ${args.join(" ")}: ${r.stderr.trim()}`);
}

/** Runs one guide's blocks in `ns` and `dir`; resolves with the exit code and the combined output. */
function runGuide(
  page: string,
  ns: string | undefined,
  dir: string,
  bin: string,
): Promise<{ code: number | null; output: string }> {
  const blocks = shellBlocks(readFileSync(join(repo, "docs", page), "utf8"));
  // Each block is announced with its line so a failure names the block that failed.
  const script = ["set -euo pipefail", ...blocks.map((b) => `echo "### ${page}:${b.line}"\n${b.code}`)].join(
    "\n",
  );
  writeFileSync(join(dir, "guide.sh"), script);
  return new Promise((resolve) => {
    const [cmd, ...args] = ns === undefined ? ["bash"] : ["ip", "netns", "exec", ns, "bash"];
    const child = spawn(cmd!, [...args, join(dir, "guide.sh")], {
      cwd: dir,
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, HOME: dir },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      output += d.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 240_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** A ```sh block marked with the hosts it runs on (```sh host-1 host-2). */
interface HostBlock extends ShellBlock {
  hosts: string[];
}

/** The host-marked ```sh blocks of a Markdown page (unmarked ones are {@link shellBlocks}'). */
function hostBlocks(markdown: string): HostBlock[] {
  const lines = markdown.split("\n");
  const out: HostBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^```sh((?: host-\d+)+)$/.exec(lines[i]!);
    if (m === null) continue;
    let j = i + 1;
    while (j < lines.length && !lines[j]!.startsWith("```")) j++;
    out.push({ line: i + 1, hosts: m[1]!.trim().split(" "), code: lines.slice(i + 1, j).join("\n") });
    i = j;
  }
  return out;
}

/**
 * A guide host of the several-hosts walkthrough: its network namespace, working directory, and an anchor
 * process whose namespaces every block of the host joins — the network namespace, its own host name (UTS)
 * and one mount namespace (`ip netns exec`'s, with the host's /sys), so a pod namespace that
 * `ip netns add` mounts in one block is the one the host's agent enters from another, as on a real host.
 */
interface GuideHost {
  ns: string;
  dir: string;
  anchor: ChildProcess;
}

/** Runs one block on one host: bash in the host's namespaces (see {@link GuideHost}). */
function runOnHost(
  host: GuideHost,
  block: HostBlock,
  bin: string,
): Promise<{ code: number | null; output: string }> {
  // The host's terminal: the variables exported by its earlier blocks, kept in .guide-env.
  const file = join(host.dir, `.guide-block-${block.line}.sh`);
  writeFileSync(
    file,
    [
      "set -euo pipefail",
      // The block's file is in the host's directory: its working directory (entering a mount namespace
      // moves a process to /).
      'cd -- "$(dirname -- "$0")"',
      "if [ -f .guide-env ]; then source .guide-env; fi",
      block.code,
      "export -p > .guide-env",
    ].join("\n"),
  );
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${bin}:${process.env.PATH}`, HOME: host.dir };
  delete env.HOSTNAME;
  return new Promise((resolve) => {
    const child = spawn(
      "nsenter",
      ["-t", String(host.anchor.pid), "--mount", "--net", "--uts", `--wd=${host.dir}`, "bash", file],
      { cwd: host.dir, env, stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    child.stdout.on("data", (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      output += d.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 180_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/**
 * Runs a page's host-marked blocks in order; a block marked with several hosts runs on each at once.
 * Stops at the first block that fails on any host.
 */
async function runHostGuide(
  page: string,
  hosts: Readonly<Record<string, GuideHost>>,
  bin: string,
): Promise<{ code: number | null; output: string }> {
  let output = "";
  for (const block of hostBlocks(readFileSync(join(repo, "docs", page), "utf8"))) {
    const results = await Promise.all(
      block.hosts.map(async (name) => {
        const host = hosts[name];
        if (host === undefined) return { name, code: 1, output: `no guide host ${name}\n` };
        return { name, ...(await runOnHost(host, block, bin)) };
      }),
    );
    for (const r of results)
      output += `### ${page}:${block.line} [${r.name}]\n${r.output}${r.code === 0 ? "" : `(exit code ${r.code})\n`}`;
    const failed = results.find((r) => r.code !== 0);
    if (failed !== undefined) {
      // What the host's programs logged (margay-node.log, etcd.log) says why, more often than the block.
      for (const [name, h] of Object.entries(hosts))
        for (const f of readdirSync(h.dir).filter((f) => f.endsWith(".log")))
          output += `--- ${name}: ${f} (last lines)\n${readFileSync(join(h.dir, f), "utf8").split("\n").slice(-15).join("\n")}\n`;
      return { code: failed.code, output };
    }
  }
  return { code: 0, output };
}

/** A temp dir with `.bin/` holding what `install -m 0755 dist/bin/<x>.cjs /usr/local/bin/<x>` gives a reader. */
function guideDir(): { dir: string; bin: string } {
  if (!existsSync(join(dist, "margay-node.cjs"))) {
    throw new Error(`no build at ${dist}: run npx lerna run build --scope @margay/margay`);
  }
  const dir = mkdtempSync(join(tmpdir(), "margay-guide-"));
  const bin = join(dir, ".bin");
  mkdirSync(bin);
  for (const name of ["margay-node", "margayctl", "margay"]) {
    writeFileSync(join(bin, name), `#!/bin/sh\nexec node ${join(dist, `${name}.cjs`)} "$@"\n`);
    chmodSync(join(bin, name), 0o755);
  }
  return { dir, bin };
}

describe("docs/migrating-from-calico.md", () => {
  let dir = "";
  let bin = "";
  beforeAll(() => {
    ({ dir, bin } = guideDir());
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("runs every sh block: convert, apply, get, export and import", async () => {
    const { code, output } = await runGuide("migrating-from-calico.md", undefined, dir, bin);
    expect(code, output).toBe(0);
    expect(output).toContain("ippool/default-ipv4 created");
    expect(output).toMatch(/default-ipv4 +10\.244\.0\.0\/16 .*CrossSubnet/);
    expect(output).toMatch(/imported \d+ objects into the memory datastore/);
  });
});

describe("docs/troubleshooting.md", () => {
  let dir = "";
  let bin = "";
  beforeAll(() => {
    ({ dir, bin } = guideDir());
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("runs every sh block: a bad setting is exit 3 naming it, ipam check, margayctl's not-found code", async () => {
    const { code, output } = await runGuide("troubleshooting.md", undefined, dir, bin);
    expect(code, output).toBe(0);
    expect(output).toContain('env:MARGAY_VXLAN_PORT: "99999" must be an integer in [1, 65535]');
    expect(output).toContain("IPAM is consistent.");
    expect(output).toContain("error: not found: node/nope");
    expect(output.match(/^exit code 3$/gm)).toHaveLength(2);
  });
});

describe("docs/deployment.md", () => {
  let dir = "";
  let bin = "";
  beforeAll(() => {
    ({ dir, bin } = guideDir());
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("runs every sh block: the environment file resolves, systemd accepts the unit", async () => {
    const { code, output } = await runGuide("deployment.md", undefined, dir, bin);
    expect(code, output).toBe(0);
    const config = JSON.parse(output.slice(output.indexOf("{"))) as {
      config: { nodeName: string; datastore: { type: string; endpoints: string[] } };
    };
    expect(config.config.nodeName).toBe("host-1");
    expect(config.config.datastore.type).toBe("etcd");
    expect(config.config.datastore.endpoints).toHaveLength(3);
    expect(readFileSync(join(dir, "margay-node.service"), "utf8")).toContain(
      `ExecStart=${join(bin, "margay-node")}`,
    );
  });
});

describe("docs/getting-started.md", () => {
  const ns = `mg-guide-host-${process.pid}`;
  let dir = "";
  let bin = "";

  beforeAll(() => {
    ({ dir, bin } = guideDir());
    ip(["netns", "add", ns]);
    ip(["-n", ns, "link", "set", "lo", "up"]);
    ip(["-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"]);
    ip(["-n", ns, "addr", "add", "10.88.0.1/24", "dev", "eth0"]);
    ip(["-n", ns, "link", "set", "eth0p", "up"]);
    ip(["-n", ns, "link", "set", "eth0", "up"]);
    ip(["-n", ns, "route", "add", "default", "via", "10.88.0.254", "dev", "eth0"]);
  });

  afterAll(() => {
    const pidFile = join(dir, "margay-node.pid");
    if (dir && existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, "utf8").trim());
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone: the guide stopped it
      }
    }
    for (const pod of ["mg-guide-web", "mg-guide-db"]) spawnSync("ip", ["netns", "del", pod]);
    spawnSync("ip", ["netns", "del", ns]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("runs every sh block: agent ready, two pods ping, a policy denies and explain says why", async () => {
    const { code, output } = await runGuide("getting-started.md", ns, dir, bin);
    expect(code, output).toBe(0);
    expect(output).toContain('"ready":true');
    expect(output).toMatch(/Addresses: +IPv4 10\.88\.0\.1\/24, on eth0/);
    expect(output).toMatch(/1 packets transmitted, 1 received/);
    expect(output).toMatch(/2 packets transmitted, 0 received/);
    expect(output).toMatch(/DENY ICMP demo\/web \(10\.244\.\S+\) -> demo\/db/);
    expect(output).toMatch(/ALLOW TCP demo\/web .* port 5432/);
    expect(output).toContain("networkpolicy/demo/db-ingress created");
    // After DEL and the agent's stop, the endpoints are gone from the model.
    expect(output.trimEnd().split("\n").at(-1)).toMatch(/^No resources found/);
  });
});

describe("docs/getting-started.md, three hosts with etcd", () => {
  const tag = process.pid.toString(36);
  const sw = `mg-gs-sw-${tag}`;
  const names = ["host-1", "host-2", "host-3"];
  const hosts: Record<string, GuideHost> = {};
  let dir = "";
  let bin = "";

  beforeAll(async () => {
    ({ dir, bin } = guideDir());
    // One subnet: a bridge in a switch namespace (holding the hosts' default gateway, 10.88.1.254).
    ip(["netns", "add", sw]);
    ip(["-n", sw, "link", "add", "br0", "type", "bridge"]);
    ip(["-n", sw, "addr", "add", "10.88.1.254/24", "dev", "br0"]);
    ip(["-n", sw, "link", "set", "br0", "up"]);
    for (const [i, name] of names.entries()) {
      const ns = `mg-gs-h${i + 1}-${tag}`;
      const hostDir = join(dir, name);
      mkdirSync(hostDir);
      ip(["netns", "add", ns]);
      const anchor = spawn(
        "ip",
        [
          "netns",
          "exec",
          ns,
          "unshare",
          "--uts",
          "sh",
          "-c",
          'hostname "$1" && exec sleep infinity',
          "sh",
          name,
        ],
        { stdio: "ignore" },
      );
      hosts[name] = { ns, dir: hostDir, anchor };
      ip(["-n", ns, "link", "set", "lo", "up"]);
      ip(["-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", `gs${i + 1}`, "netns", sw]);
      ip(["-n", sw, "link", "set", `gs${i + 1}`, "master", "br0", "up"]);
      ip(["-n", ns, "addr", "add", `10.88.1.${i + 1}/24`, "dev", "eth0"]);
      ip(["-n", ns, "link", "set", "eth0", "up"]);
      ip(["-n", ns, "route", "add", "default", "via", "10.88.1.254", "dev", "eth0"]);
    }
    // Each anchor is up once its host name is set (it then sleeps in its namespaces).
    for (const [name, h] of Object.entries(hosts)) {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const r = spawnSync("nsenter", ["-t", String(h.anchor.pid), "--uts", "hostname"], {
          encoding: "utf8",
        });
        if (r.stdout.trim() === name) break;
        if (Date.now() > deadline)
          throw new Error(`guide host ${name}: anchor not ready (${r.stderr.trim()})`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  });

  afterAll(() => {
    // Whatever the guide left running in the hosts' namespaces (agents, etcd) goes, then the namespaces.
    for (const { ns, anchor } of Object.values(hosts)) {
      anchor.kill("SIGKILL");
      const pids = spawnSync("ip", ["netns", "pids", ns], { encoding: "utf8" }).stdout.split("\n");
      for (const pid of pids.filter((p) => /^\d+$/.test(p)))
        try {
          process.kill(Number(pid), "SIGKILL");
        } catch {
          // already gone
        }
    }
    for (const pod of ["mg-guide-web", "mg-guide-db"]) spawnSync("ip", ["netns", "del", pod]);
    for (const { ns } of Object.values(hosts)) spawnSync("ip", ["netns", "del", ns]);
    spawnSync("ip", ["netns", "del", sw]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("runs every host block: etcd, three agents in a BGP mesh, pods on two hosts ping, a live policy denies", async () => {
    const { code, output } = await runHostGuide("getting-started.md", hosts, bin);
    expect(code, output).toBe(0);
    expect(output).toContain("http://10.88.1.1:2379 is healthy");
    expect(output.match(/\{"status":"ok","live":true,"ready":true/g)?.length).toBe(3);
    for (const name of names) expect(output).toMatch(new RegExp(`^${name}\\b`, "m"));
    // host-1's two sessions, to host-2 and host-3.
    expect(output).toMatch(/10\.88\.1\.2\b.*Established/);
    expect(output).toMatch(/10\.88\.1\.3\b.*Established/);
    expect(output).toMatch(/via 10\.88\.1\.2 dev eth0/);
    expect(output).toMatch(/1 packets transmitted, 1 received/);
    expect(output).toMatch(/2 packets transmitted, 0 received/);
    expect(output).toMatch(/DENY ICMP demo\/web \(10\.244\.\S+\) -> demo\/db/);
    expect(output.trimEnd().split("\n").at(-1)).toMatch(/^No resources found/);
  }, 400_000);
});

describe("docs/vendor-guides.md", () => {
  let dir = "";
  let bin = "";
  beforeAll(() => {
    ({ dir, bin } = guideDir());
    // What `npm install -D @margay/datastore @margay/dataplane @margay/cni vitest` gives the vendor's
    // project: the packages (this checkout's, built) and the two commands the page runs.
    const modules = join(dir, "node_modules");
    mkdirSync(join(modules, "@margay"), { recursive: true });
    mkdirSync(join(modules, ".bin"));
    for (const pkg of ["datastore", "dataplane", "cni"]) {
      if (!existsSync(join(repo, "packages", pkg, "dist")))
        throw new Error(`@margay/${pkg} is not built: npx lerna run build --scope @margay/${pkg}`);
      symlinkSync(join(repo, "packages", pkg), join(modules, "@margay", pkg));
    }
    symlinkSync(join(repo, "node_modules", "vitest"), join(modules, "vitest"));
    symlinkSync("../vitest/vitest.mjs", join(modules, ".bin", "vitest"));
    symlinkSync("../@margay/cni/dist/testing/cli.js", join(modules, ".bin", "cni-conformance"));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("runs every sh block: a datastore backend, a driver in its own process and a CNI chain pass their kits", async () => {
    const run = await runGuide("vendor-guides.md", undefined, dir, bin);
    // vitest colours its report when its parent does: read it plain.
    const output = run.output.replace(/\x1b\[[0-9;]*m/g, "");
    expect(run.code, output).toBe(0);
    expect(output).toMatch(/counting-datastore\.conformance\.test\.ts \(\d+ tests?/);
    expect(output).toMatch(/my-driver\.conformance\.test\.ts \(\d+ tests?/);
    expect(output).not.toMatch(/Tests +\d+ failed/);
    expect(output).toMatch(/CNI conformance: bridge \(network mynet, version 1\.0\.0\)/);
    expect(output).toMatch(/add-check-del +PASS/);
    expect(output).toMatch(/\d+ pass, 0 fail/);
  }, 280_000);
});
