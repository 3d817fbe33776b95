/**
 * The README test: the "Install on a Debian host" steps of this directory's README run as written (bash,
 * the README's own block) on a fresh layout — CNI directories that do not exist yet, under a temporary
 * directory — with the package's executables built from this tree; then a pod is added and deleted
 * through the installed configuration list against a real agent (the cluster lab), and uninstall-cni
 * removes exactly what install-cni wrote.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createCniRuntime, parseNetConfList } from "@margay/cni";
import { createNetns } from "@margay/cni/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ClusterLab, createClusterLab, type LabHost } from "../../testing/index.js";
import { buildMargayIpamBundle } from "../ipam/build-bundle.js";
import { buildMargayPluginBundle } from "./build-bundle.js";
import { buildAgentBundle, hostWorkloadLinks } from "./test-support.js";

const README = new URL("./README.md", import.meta.url);

/** The first ```sh block under the "Install on a Debian host" heading. */
async function installSteps(): Promise<string> {
  const text = await readFile(README, "utf8");
  const section = text.slice(text.indexOf("## Install on a Debian host"));
  const m = /```sh\n([\s\S]*?)```/.exec(section);
  if (m === null) throw new Error("README: no sh block in the install section");
  return m[1]!;
}

function run(file: string, args: string[], env: Record<string, string>) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(file, args, { env, timeout: 240_000 }, (err, stdout, stderr) =>
      resolve({ code: err === null ? 0 : ((err as { code?: number }).code ?? 1), stdout, stderr }),
    );
  });
}

describe("plugin README: install on a fresh Debian host, as written", () => {
  let root: string;
  let lab: ClusterLab;
  let host: LabHost;
  let env: Record<string, string>;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "margay-readme-"));
    const dist = join(root, "pkg/dist");
    await buildMargayPluginBundle(join(dist, "bin/margay.cjs"));
    await buildMargayIpamBundle(join(dist, "bin/margay-ipam.cjs"));
    const agent = await buildAgentBundle(join(dist, "bin"));
    lab = await createClusterLab({ hosts: 1, router: false, datastore: "memory", agentBinary: agent });
    host = lab.hosts[0]!;
    env = {
      PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
      MARGAY_DIST: dist,
      CNI_BIN_DIR: join(root, "opt/cni/bin"),
      CNI_NET_DIR: join(root, "etc/cni/net.d"),
      MARGAY_AGENT_SOCKET: host.socket,
      MARGAY_STATE_DIR: host.stateDir,
    };
  });

  afterAll(async () => {
    await lab?.close();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it("the steps succeed on a host without CNI directories, twice (idempotent)", async () => {
    await expect(stat(env.CNI_BIN_DIR!)).rejects.toMatchObject({ code: "ENOENT" });
    const script = join(root, "install.sh");
    await writeFile(script, await installSteps());
    const first = await run("bash", ["-eu", script], env);
    expect(first.code, `${first.stdout}\n${first.stderr}`).toBe(0);
    expect(first.stdout).toMatch(/"supportedVersions":\["0\.3\.0","0\.3\.1","0\.4\.0","1\.0\.0","1\.1\.0"\]/);
    expect((await readdir(env.CNI_BIN_DIR!)).sort()).toEqual(
      ["bandwidth", "loopback", "margay", "margay-ipam", "portmap", "tuning"].sort(),
    );
    const second = await run("bash", ["-eu", script], env);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/unchanged +.*10-margay\.conflist/);
  });

  it("a pod added through the installed list gets its address from the agent; DEL removes it", async () => {
    const list = parseNetConfList(await readFile(join(env.CNI_NET_DIR!, "10-margay.conflist")));
    expect(list.plugins.map((p) => p.type)).toEqual(["margay", "portmap", "bandwidth"]);
    await using pod = await createNetns("mgreadme");
    const runtime = createCniRuntime({
      path: [env.CNI_BIN_DIR!],
      cacheDir: join(root, "cache"),
      launcher: ["ip", "netns", "exec", host.ns],
    });
    const rt = {
      containerId: "readme-1",
      netns: pod.path,
      ifname: "eth0",
      args: { IgnoreUnknown: "1", K8S_POD_NAMESPACE: "default", K8S_POD_NAME: "readme" },
      capabilityArgs: { portMappings: [{ hostPort: 18081, containerPort: 80, protocol: "tcp" }] },
    };
    try {
      const result = (await runtime.addNetworkList(list, rt)) as { ips: { address: string }[] };
      const ip = result.ips[0]!.address;
      expect(ip).toMatch(/\/32$/);
      const addrs = await lab.exec(pod.name, ["ip", "-o", "-4", "addr", "show", "dev", "eth0"]);
      expect(addrs).toContain(ip);
      expect(await hostWorkloadLinks(lab, host)).toHaveLength(1);
      await runtime.delNetworkList(list, rt);
      expect(await hostWorkloadLinks(lab, host)).toEqual([]);
    } finally {
      await runtime.delNetworkList(list, rt).catch(() => undefined);
    }
  });

  it("uninstall-cni removes exactly what install-cni wrote (the user's links stay)", async () => {
    const r = await run(
      process.execPath,
      [join(env.MARGAY_DIST!, "bin/margay-node.cjs"), "uninstall-cni", "--cni-conf-dir", env.CNI_NET_DIR!],
      env,
    );
    expect(r.code, r.stderr).toBe(0);
    expect((await readdir(env.CNI_BIN_DIR!)).sort()).toEqual(["bandwidth", "loopback", "portmap", "tuning"]);
    expect(await readdir(env.CNI_NET_DIR!)).toEqual([]);
  });
});
