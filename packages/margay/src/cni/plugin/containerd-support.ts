/**
 * Test-only helpers to run a real containerd (Debian's) against the `margay` plugin without touching the
 * host: an OCI image built from Debian's `busybox-static` (no registry), a containerd with its own
 * root/state/socket inside a lab host's namespace, and `ctr` run in a private mount namespace where
 * `/etc/cni/net.d` and `/opt/cni/bin` (the only directories `ctr run --cni` reads) are overlays over
 * temporary directories.
 *
 * @packageDocumentation
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFile, mkdir, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { runCommand } from "../../testing/process.js";

/** The image reference the test image is imported as. */
export const TEST_IMAGE = "margay.test/busybox:1";

const BUSYBOX = "/bin/busybox";
const APPLETS = ["sh", "sleep", "ping", "ip", "ifconfig", "nc", "cat", "hostname", "wget", "httpd"];

const digest = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/**
 * Builds an OCI image archive (one layer: busybox-static and its applet links) at `out`, from files on this
 * machine only. Returns `out`.
 */
export async function buildBusyboxImage(dir: string, out: string): Promise<string> {
  const rootfs = join(dir, "rootfs");
  await rm(dir, { recursive: true, force: true });
  for (const d of ["bin", "etc", "tmp", "proc", "sys", "dev"])
    await mkdir(join(rootfs, d), { recursive: true });
  await copyFile(BUSYBOX, join(rootfs, "bin/busybox"));
  for (const a of APPLETS) await symlink("busybox", join(rootfs, "bin", a));
  await writeFile(join(rootfs, "etc/passwd"), "root:x:0:0:root:/:/bin/sh\n");
  const layerTar = join(dir, "layer.tar");
  await runCommand(["tar", "--numeric-owner", "--owner=0", "--group=0", "-C", rootfs, "-cf", layerTar, "."]);
  const layer = await readFile(layerTar);
  const layout = join(dir, "oci");
  await mkdir(join(layout, "blobs/sha256"), { recursive: true });
  const blob = async (b: Buffer) => {
    const d = digest(b);
    await writeFile(join(layout, "blobs/sha256", d.slice(7)), b);
    return { digest: d, size: b.length };
  };
  const layerDesc = await blob(layer);
  const config = Buffer.from(
    JSON.stringify({
      architecture: process.arch === "x64" ? "amd64" : process.arch,
      os: "linux",
      config: { Cmd: ["/bin/sh"], Env: ["PATH=/bin"] },
      rootfs: { type: "layers", diff_ids: [layerDesc.digest] },
    }),
  );
  const configDesc = await blob(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", ...configDesc },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", ...layerDesc }],
    }),
  );
  const manifestDesc = await blob(manifest);
  await writeFile(join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await writeFile(
    join(layout, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          ...manifestDesc,
          annotations: { "io.containerd.image.name": TEST_IMAGE, "org.opencontainers.image.ref.name": "1" },
        },
      ],
    }),
  );
  await runCommand(["tar", "-C", layout, "-cf", out, "."]);
  return out;
}

// Runs argv[after "--"] with /etc and /opt overlaid (upper dirs given), in the mount namespace `unshare`
// made for it: what ctr sees as /etc/cni/net.d and /opt/cni/bin lives in the test's temp directory.
const OVERLAY_EXEC = `
const { execFileSync, spawnSync } = require("node:child_process");
const [etcUpper, etcWork, optUpper, optWork, , ...cmd] = process.argv.slice(1);
execFileSync("mount", ["-t", "overlay", "overlay", "-o", "lowerdir=/etc,upperdir=" + etcUpper + ",workdir=" + etcWork, "/etc"]);
execFileSync("mount", ["-t", "overlay", "overlay", "-o", "lowerdir=/opt,upperdir=" + optUpper + ",workdir=" + optWork, "/opt"]);
const r = spawnSync(cmd[0], cmd.slice(1), { stdio: "inherit" });
process.exit(r.status === null ? 1 : r.status);
`;

const SHIM_SOCKETS = "/run/containerd/s";

/** True when something listens on the unix socket `path`. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(path);
    c.once("connect", () => {
      c.destroy();
      resolve(true);
    });
    c.once("error", () => resolve(false));
  });
}

/** PIDs of the containerd shims serving `socket` (their command line names it). */
async function shimPids(socket: string): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const cmd = await readFile(`/proc/${name}/cmdline`, "utf8").catch(() => "");
    const argv = cmd.split("\0");
    if (argv[0]?.endsWith("containerd-shim-runc-v2") && argv.includes(socket)) out.push(Number(name));
  }
  return out;
}

/** A containerd inside a lab host's namespace, and `ctr` against it. */
export interface TestContainerd {
  readonly socket: string;
  /** Runs `ctr --address <socket> <args>` in the host namespace with the overlaid CNI directories. */
  ctr(args: readonly string[], options?: { timeoutMs?: number }): Promise<string>;
  /** The CNI configuration directory `ctr` sees as /etc/cni/net.d. */
  readonly confDir: string;
  /** The CNI bin directory `ctr` sees as /opt/cni/bin. */
  readonly binDir: string;
  /**
   * Flags every `ctr run` of the test passes: runc's state and ctr's FIFOs under the test's directory
   * (their defaults, /run/containerd/runc and /run/containerd/fifo, are shared by every containerd of
   * the machine: two of ours would see each other's containers).
   */
  readonly runFlags: readonly string[];
  close(): Promise<void>;
}

/** Starts containerd (root, state, socket under `dir`) in namespace `ns`; waits until `ctr version` answers. */
export async function startContainerd(ns: string, dir: string): Promise<TestContainerd> {
  const root = join(dir, "root");
  const state = join(dir, "state");
  const socket = join(dir, "containerd.sock");
  const overlay = join(dir, "overlay");
  for (const d of [root, state, ...["etc-up", "etc-work", "opt-up", "opt-work"].map((x) => join(overlay, x))])
    await mkdir(d, { recursive: true });
  const confDir = join(overlay, "etc-up/cni/net.d");
  const binDir = join(overlay, "opt-up/cni/bin");
  await mkdir(confDir, { recursive: true });
  await mkdir(binDir, { recursive: true });
  const shimSocketsBefore = new Set(await readdir(SHIM_SOCKETS).catch(() => [] as string[]));
  const config = join(dir, "config.toml");
  await writeFile(
    config,
    [
      "version = 2",
      `root = ${JSON.stringify(root)}`,
      `state = ${JSON.stringify(state)}`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      "[grpc]",
      `  address = ${JSON.stringify(socket)}`,
      "[ttrpc]",
      `  address = ${JSON.stringify(`${socket}.ttrpc`)}`,
      "",
    ].join("\n"),
  );
  const log = join(dir, "containerd.log");
  const { openSync, closeSync } = await import("node:fs");
  const fd = openSync(log, "a");
  let child: ChildProcess;
  try {
    child = spawn("nsenter", [`--net=/run/netns/${ns}`, "containerd", "--config", config], {
      stdio: ["ignore", fd, fd],
    });
  } finally {
    closeSync(fd);
  }
  child.on("error", () => undefined);
  const ctr = (args: readonly string[], o: { timeoutMs?: number } = {}) =>
    runCommand(
      [
        // nsenter, not `ip netns exec`: the latter remounts /sys, hiding the cgroup mounts runc needs.
        "nsenter",
        `--net=/run/netns/${ns}`,
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        process.execPath,
        "-e",
        OVERLAY_EXEC,
        join(overlay, "etc-up"),
        join(overlay, "etc-work"),
        join(overlay, "opt-up"),
        join(overlay, "opt-work"),
        "--",
        "ctr",
        "--address",
        socket,
        ...args,
      ],
      { timeoutMs: o.timeoutMs ?? 60_000 },
    );
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await runCommand(["ctr", "--address", socket, "version"], { timeoutMs: 5_000 });
      break;
    } catch (e) {
      if (child.exitCode !== null || Date.now() > deadline)
        throw new Error(
          `containerd did not start (exit ${child.exitCode}): ${(await readFile(log, "utf8").catch(() => "")).slice(-2000)}`,
          { cause: e },
        );
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const runcRoot = join(dir, "runc");
  const fifoDir = join(dir, "fifo");
  await mkdir(runcRoot, { recursive: true });
  await mkdir(fifoDir, { recursive: true });
  return {
    socket,
    ctr,
    confDir,
    binDir,
    runFlags: ["--runc-root", runcRoot, "--fifo-dir", fifoDir],
    async close() {
      // Kill every task (and its shim) before containerd itself.
      try {
        const tasks = await runCommand(["ctr", "--address", socket, "task", "ls", "-q"], {
          timeoutMs: 10_000,
        });
        for (const id of tasks.split("\n").filter(Boolean))
          await runCommand(["ctr", "--address", socket, "task", "kill", "-s", "SIGKILL", id]).catch(() => "");
        await new Promise((r) => setTimeout(r, 500));
        for (const id of tasks.split("\n").filter(Boolean))
          await runCommand(["ctr", "--address", socket, "task", "delete", "-f", id]).catch(() => "");
      } catch {
        // containerd already gone
      }
      child.kill("SIGTERM");
      await new Promise<void>((r) => {
        if (child.exitCode !== null || child.signalCode !== null) r();
        else {
          const t = setTimeout(() => {
            child.kill("SIGKILL");
            r();
          }, 10_000);
          child.once("exit", () => {
            clearTimeout(t);
            r();
          });
        }
      });
      // Shims outlive containerd on purpose; ours (found by our unique socket path) must not outlive the test.
      const shims = await shimPids(socket);
      for (const pid of shims) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      // Until they are gone their sockets still accept connections.
      const gone = (pid: number) =>
        readFile(`/proc/${pid}/stat`, "utf8").then(
          (t) => / Z /.test(t),
          () => true,
        );
      for (let i = 0; i < 50; i++) {
        if ((await Promise.all(shims.map(gone))).every(Boolean)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      // containerd 1.6 puts shim sockets in /run/containerd/s whatever its state directory: remove the
      // ones that appeared while it ran and no longer answer (dead shims of this test).
      for (const name of await readdir(SHIM_SOCKETS).catch(() => [] as string[])) {
        if (shimSocketsBefore.has(name)) continue;
        const path = join(SHIM_SOCKETS, name);
        if (!(await answers(path))) await rm(path, { force: true });
      }
      // Killed shims leave their containers' rootfs mounted under the state directory: unmount every
      // mount below `dir`, deepest first, so the lab can remove its directory.
      const mounts = (await readFile("/proc/self/mountinfo", "utf8"))
        .split("\n")
        .map((l) => l.split(" ")[4] ?? "")
        .filter((m) => m.startsWith(`${dir}/`))
        .sort()
        .reverse();
      for (const m of mounts)
        await runCommand(["umount", m]).catch(() => runCommand(["umount", "-l", m]).catch(() => ""));
    },
  };
}
