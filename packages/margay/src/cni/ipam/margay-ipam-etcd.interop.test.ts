import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_PLUGIN_ENV } from "@margay/cni";
import { randomContainerId, rawExec } from "@margay/cni/testing";
import { createEtcdDatastore } from "@margay/datastore";
import { type EtcdServer, startEtcd } from "@margay/datastore/testing";
import { createIpam } from "@margay/ipam";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildMargayIpamBundle } from "./build-bundle.js";

// margay-ipam over a private etcd: the multi-host mode, where concurrency is etcd's compare-and-swap,
// not a lock file. The plugin is the one-file bundle, run as a process.

let dir: string;
let bin: string;
let etcd: EtcdServer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mgcni-ipam-etcd-"));
  [bin, etcd] = await Promise.all([buildMargayIpamBundle(join(dir, "margay-ipam")), startEtcd()]);
});
afterAll(async () => {
  await etcd?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function allocated(): Promise<string[]> {
  const ds = createEtcdDatastore({ endpoints: etcd.endpoints });
  const ipam = createIpam({ datastore: ds });
  try {
    return (await ipam.check([])).leaks.flatMap((l) => l.ips).sort();
  } finally {
    await ipam.close();
    await ds.close();
  }
}

describe("margay-ipam with the etcd datastore", () => {
  it("two nodes allocate concurrently without duplicates; DEL and GC release", async () => {
    const conf = (node: string) =>
      JSON.stringify({
        cniVersion: "1.1.0",
        name: "mg-etcd",
        type: "ptp",
        ipam: {
          type: "margay-ipam",
          datastore: { type: "etcd", endpoints: etcd.endpoints },
          node,
          pools: [{ cidr: "10.246.0.0/24", blockSize: 28 }],
        },
      });
    const env = (id: string, command = "ADD") => ({
      ...DEFAULT_PLUGIN_ENV,
      CNI_COMMAND: command,
      CNI_CONTAINERID: id,
      CNI_NETNS: "/proc/self/ns/net",
      CNI_IFNAME: "eth0",
      CNI_PATH: dir,
    });
    const ids = Array.from({ length: 8 }, () => randomContainerId());
    const outs = await Promise.all(
      ids.map((id, i) => rawExec(bin, env(id), conf(i % 2 === 0 ? "node-a" : "node-b"))),
    );
    for (const o of outs) expect(o.exitCode, o.stdout + o.stderr).toBe(0);
    const addrs = outs.map(
      (o) => (JSON.parse(o.stdout) as { ips: Array<{ address: string }> }).ips[0]!.address,
    );
    expect(new Set(addrs).size).toBe(8);
    expect((await allocated()).length).toBe(8);

    for (const id of ids.slice(0, 6)) {
      const d = await rawExec(bin, env(id, "DEL"), conf("node-a"));
      expect(d.exitCode, d.stdout).toBe(0);
    }
    const keep = ids[6]!;
    const gcConf = {
      ...JSON.parse(conf("node-a")),
      "cni.dev/valid-attachments": [{ containerID: keep, ifname: "eth0" }],
    };
    const gc = await rawExec(
      bin,
      { ...DEFAULT_PLUGIN_ENV, CNI_COMMAND: "GC", CNI_PATH: dir },
      JSON.stringify(gcConf),
    );
    expect(gc.exitCode, gc.stdout).toBe(0);
    expect(await allocated()).toEqual([addrs[6]!.split("/")[0]]);
    const status = await rawExec(bin, { ...DEFAULT_PLUGIN_ENV, CNI_COMMAND: "STATUS" }, conf("node-a"));
    expect(status.exitCode, status.stdout).toBe(0);
    await rawExec(bin, env(keep, "DEL"), conf("node-a"));
    expect(await allocated()).toEqual([]);
  });
});
