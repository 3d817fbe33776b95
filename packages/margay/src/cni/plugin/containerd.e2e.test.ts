/**
 * A real container runtime through `margay`: Debian's containerd (one per lab host, own root/state/socket,
 * in the host's network namespace) runs ten containers with `ctr run --cni` on two lab hosts (real
 * `margay-node` agents, etcd, BGP mesh). The image is built here from Debian's `busybox-static` and
 * imported with `ctr image import` (no registry). Every container reaches every other across hosts.
 * `ctr` skips DEL when a detached task is killed: the addresses stay allocated until the node-scoped GC
 * (CNI GC through the installed plugin, with the attachments the runtime still holds) frees them.
 */
import { copyFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Datastore, StoredObject } from "@margay/datastore";
import { convertNamespace } from "@margay/policy";
import { rawExec } from "@margay/cni/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ClusterLab, createClusterLab, type LabHost, waitFor } from "../../testing/index.js";
import { runCommand } from "../../testing/process.js";
import { buildBusyboxImage, startContainerd, TEST_IMAGE, type TestContainerd } from "./containerd-support.js";
import { buildAgentBundle, buildPluginDir, ipPool, workloadAllocations } from "./test-support.js";

const NS = "margay"; // containerd namespace
const GRACE_MS = 60_000; // the agent's gc grace period (not configurable yet)

interface Container {
  readonly id: string;
  readonly host: LabHost;
  readonly pid: number;
  readonly ip: string;
  readonly addedAt: number;
}

describe("containerd (Debian) runs ten containers on two lab hosts through margay", () => {
  let lab: ClusterLab;
  let ds: Datastore;
  let binDir: string;
  let allocations: () => Promise<string[]>;
  const runtimes = new Map<string, TestContainerd>();
  const containers: Container[] = [];

  const ctr = (host: LabHost, args: readonly string[]) => runtimes.get(host.name)!.ctr(["-n", NS, ...args]);
  const runContainer = (host: LabHost, id: string) =>
    ctr(host, [
      "run",
      ...runtimes.get(host.name)!.runFlags,
      "-d",
      "--cni",
      "--snapshotter",
      "native",
      "--null-io",
      TEST_IMAGE,
      id,
      "/bin/sleep",
      "100000",
    ]);
  const inNetns = (pid: number, argv: readonly string[]) =>
    runCommand(["nsenter", `--net=/proc/${pid}/ns/net`, ...argv], { timeoutMs: 15_000 });
  const reaches = (from: Container, to: Container) =>
    inNetns(from.pid, ["ping", "-n", "-q", "-c", "1", "-W", "2", to.ip]).then(
      () => true,
      () => false,
    );

  beforeAll(async () => {
    binDir = await buildPluginDir();
    lab = await createClusterLab({
      hosts: 2,
      router: false,
      startAgents: false,
      agentBinary: await buildAgentBundle(binDir),
      agentEnv: { MARGAY_NETWORKING_BACKEND: "bgp", NO_DEFAULT_POOLS: "true" },
    });
    try {
      ds = lab.datastore();
      await ds.create(ipPool("ctr", "10.247.0.0/16"));
      // What the cluster's controller makes of the namespace: the profile every endpoint in it carries
      // (without it an endpoint's traffic is denied, as in Calico).
      await ds.create(convertNamespace({ metadata: { name: "default" } }) as unknown as StoredObject);
      for (const h of lab.hosts) lab.startAgent(h);
      for (const h of lab.hosts) await lab.waitReady(h);
      allocations = workloadAllocations(ds);
      const image = await buildBusyboxImage(join(lab.dir, "image"), join(lab.dir, "busybox-oci.tar"));
      for (const h of lab.hosts) {
        const c = await startContainerd(h.ns, join(lab.dir, `containerd-${h.name}`));
        runtimes.set(h.name, c);
        // What install-cni does on a node, into the directories ctr reads (/opt/cni/bin, /etc/cni/net.d).
        await copyFile(join(binDir, "margay"), join(c.binDir, "margay"));
        await writeFile(
          join(c.confDir, "10-margay.conflist"),
          JSON.stringify({
            cniVersion: "1.0.0",
            name: "margay",
            plugins: [
              { type: "margay", agent_socket: h.socket, state_dir: h.stateDir, ipam: { type: "margay" } },
            ],
          }),
        );
        await c.ctr(["-n", NS, "image", "import", image], { timeoutMs: 120_000 });
      }
    } catch (e) {
      const logs = await Promise.all(
        lab.hosts.map(async (h) => `--- ${h.name}\n${(await lab.logs(h)).slice(-2000)}`),
      );
      for (const c of runtimes.values()) await c.close();
      await lab.close();
      throw new Error(`${e instanceof Error ? e.message : String(e)}\n${logs.join("\n")}`, { cause: e });
    }
  });

  afterAll(async () => {
    for (const c of runtimes.values()) await c.close().catch(() => undefined);
    await lab?.close();
    if (binDir) await rm(binDir, { recursive: true, force: true });
  });

  it("ctr run --cni starts ten containers (five per host), each with an address from its host's block", async () => {
    for (let i = 0; i < 10; i++) {
      const host = lab.hosts[i % 2]!;
      const id = `c${i}`;
      const addedAt = Date.now();
      await runContainer(host, id);
      const tasks = await ctr(host, ["task", "ls"]);
      const pid = Number(new RegExp(`^${id}\\s+(\\d+)\\s+RUNNING`, "m").exec(tasks)?.[1]);
      expect(pid, tasks).toBeGreaterThan(0);
      // The container's network namespace as the kernel holds it (`ctr task exec` output can be lost
      // when the exec'd process exits fast on a loaded machine; the exit status is not).
      const addr = await inNetns(pid, ["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
      const ip = /inet (\d+\.\d+\.\d+\.\d+)\/32/.exec(addr)?.[1];
      expect(ip, addr).toBeDefined();
      containers.push({ id, host, pid, ip: ip!, addedAt });
    }
    expect(new Set(containers.map((c) => c.ip)).size).toBe(10);
    expect((await allocations()).sort()).toEqual(containers.map((c) => c.ip).sort());
  });

  it("every container reaches every other, on its host and across hosts (90 pairs)", async () => {
    const [a, b] = [containers[0]!, containers[1]!];
    // The first cross-host pair waits for BGP to carry the blocks; then every pair must answer at once.
    await waitFor(`${a.id} to reach ${b.id} across hosts`, () => reaches(a, b), {
      timeoutMs: 90_000,
      intervalMs: 1_000,
    });
    const failed: string[] = [];
    await Promise.all(
      containers.map(async (from) => {
        for (const to of containers) {
          if (to === from) continue;
          if (!(await reaches(from, to)))
            failed.push(`${from.id}@${from.host.name} -> ${to.id}@${to.host.name}`);
        }
      }),
    );
    expect(failed).toEqual([]);
    // And from inside a container with its own busybox ping (exit status 0: a reply came back).
    await ctr(a.host, ["task", "exec", "--exec-id", "ping-1", a.id, "/bin/ping", "-c", "1", "-W", "2", b.ip]);
  });

  it("killed detached tasks skip DEL (addresses stay); the node-scoped GC frees them and keeps the live ones", async () => {
    const killed = containers.slice(0, 4);
    const kept = containers.slice(4);
    for (const c of killed) {
      await ctr(c.host, ["task", "kill", "-s", "SIGKILL", c.id]);
      await waitFor(
        `${c.id} to stop`,
        async () =>
          /STOPPED/.test(
            await ctr(c.host, ["task", "ls"]).then(
              (t) => t.split("\n").find((l) => l.startsWith(`${c.id} `)) ?? "",
            ),
          ),
        { timeoutMs: 20_000 },
      );
      await ctr(c.host, ["task", "delete", c.id]);
      await ctr(c.host, ["container", "delete", c.id]);
    }
    // ctr ran no CNI DEL: every address is still allocated, the endpoints still written.
    expect((await allocations()).sort()).toEqual(containers.map((c) => c.ip).sort());
    const weps = (
      await ds.list<StoredObject & { spec: { containerID: string; ipNetworks: string[]; node: string } }>(
        "WorkloadEndpoint",
      )
    ).items;
    expect(weps).toHaveLength(10);
    // The runtime knows its attachments by the CNI_CONTAINERID ctr used; read it from the endpoints.
    const cidOf = (c: Container) =>
      weps.find((w) => w.spec.ipNetworks.includes(`${c.ip}/32`))!.spec.containerID;

    const gc = async (host: LabHost) => {
      const valid = kept
        .filter((c) => c.host === host)
        .map((c) => ({ containerID: cidOf(c), ifname: "eth0" }));
      const r = await rawExec(
        join(runtimes.get(host.name)!.binDir, "margay"),
        {
          CNI_COMMAND: "GC",
          CNI_PATH: runtimes.get(host.name)!.binDir,
          PATH: process.env.PATH ?? "/usr/bin:/bin",
        },
        JSON.stringify({
          cniVersion: "1.1.0",
          name: "margay",
          type: "margay",
          agent_socket: host.socket,
          state_dir: host.stateDir,
          "cni.dev/valid-attachments": valid,
        }),
      );
      expect(r.exitCode, `${r.stdout}${r.stderr}`).toBe(0);
    };
    // Past the agent's grace period (it protects ADDs in flight), GC on each node frees what the runtime
    // no longer lists.
    const wait = Math.max(...killed.map((c) => c.addedAt)) + GRACE_MS + 2_000 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    for (const h of lab.hosts) await gc(h);
    expect((await allocations()).sort()).toEqual(kept.map((c) => c.ip).sort());
    const left = (await ds.list<StoredObject & { spec: { ipNetworks: string[] } }>("WorkloadEndpoint")).items;
    expect(left.flatMap((w) => w.spec.ipNetworks).sort()).toEqual(kept.map((c) => `${c.ip}/32`).sort());
    // The live containers are untouched and still reach each other across hosts.
    await waitFor(`${kept[0]!.id} to reach ${kept[1]!.id}`, () => reaches(kept[0]!, kept[1]!), {
      timeoutMs: 30_000,
    });
  });

  it("after the kills and the GC, each node serves ADDs again", async () => {
    const before = (await allocations()).length;
    for (const h of lab.hosts) await runContainer(h, `again-${h.name}`);
    expect((await allocations()).length).toBe(before + lab.hosts.length);
  });
});
