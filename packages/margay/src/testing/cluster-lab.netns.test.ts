import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ClusterLab, createClusterLab, LAB_ADDRESSES } from "./cluster-lab.js";
import { isClusterLabError } from "./errors.js";
import { runCommand } from "./process.js";
import { cleanStaleLabs, LAB_OWNER_DIR, listNamespaces } from "./stale.js";

// The lab without agents: the topology itself, etcd, BIRD and the clean-up the end-to-end tests rely on.
describe("cluster lab (no agent)", () => {
  let lab: ClusterLab;
  let before: string[];

  beforeAll(async () => {
    before = await listNamespaces();
    lab = await createClusterLab({ subnets: ["a", "a", "b"], startAgents: false });
  });
  afterAll(async () => {
    await lab?.close();
  });

  it("names every namespace with the lab's unique prefix", async () => {
    const mine = await listNamespaces(`${lab.name}-`);
    // switch, router, outside, etcd, 3 hosts
    expect(mine).toHaveLength(7);
    expect(before.filter((n) => n.startsWith(`${lab.name}-`))).toEqual([]);
  });

  it("hosts on subnet A reach each other across the bridge", async () => {
    const [h1, h2] = lab.hosts;
    const r = await lab.ping(h1!.ns, h2!.ip, { count: 2 });
    expect(r.received, r.output).toBe(2);
  });

  it("a host on subnet B reaches subnet A through the router, and the outside namespace", async () => {
    const h1 = lab.host("host1");
    const h3 = lab.host("host3");
    expect(h3.address).toBe("10.78.0.13/24");
    expect((await lab.ping(h3.ns, h1.ip)).received).toBe(1);
    const probe = await lab.probeIn(h3.ns);
    // The outside probe answers with the source it saw: no NAT on the router.
    expect(await probe.peerAddress(LAB_ADDRESSES.outside, 8080)).toBe(h3.ip);
  });

  it("etcd answers from every host namespace and from the lab process", async () => {
    for (const h of lab.hosts) {
      const p = await lab.probeIn(h.ns);
      const res = await p.httpGet(`${lab.etcdEndpoint}/health`);
      expect(res?.status, h.name).toBe(200);
      expect(JSON.parse(res!.body).health).toBe("true");
    }
    const ds = lab.datastore();
    await ds.create({
      kind: "IPPool",
      metadata: { name: "lab-check" },
      spec: { cidr: "10.250.0.0/16" },
    } as never);
    expect((await ds.list("IPPool")).items.map((i) => i.metadata.name)).toContain("lab-check");
  });

  it("stops and restarts etcd with its data", async () => {
    const p = await lab.probeIn(lab.host("host1").ns);
    await lab.stopEtcd();
    expect(await p.httpGet(`${lab.etcdEndpoint}/health`, 500)).toBeUndefined();
    await lab.startEtcd();
    expect((await p.httpGet(`${lab.etcdEndpoint}/health`))?.status).toBe(200);
    const ds = lab.datastore();
    await expect(ds.get({ kind: "IPPool", name: "lab-check" })).resolves.toMatchObject({
      metadata: { name: "lab-check" },
    });
  });

  it("runs BIRD as a top-of-rack peer that announces a prefix and reconfigures", async () => {
    const tor = await lab.addBirdPeer({ asNumber: 64513, announce: ["10.99.0.0/24"] });
    expect(tor.address).toBe("10.77.0.240");
    const routes = await tor.routes();
    expect(routes.get("10.99.0.0/24")?.protocol).toBe("announced");
    await tor.announce("10.99.1.0/24");
    expect((await tor.routes()).has("10.99.1.0/24")).toBe(true);
    await tor.withdraw("10.99.1.0/24");
    expect((await tor.routes()).has("10.99.1.0/24")).toBe(false);
    // No agent listens on 179: the sessions exist and are not Established.
    const sessions = await tor.sessions();
    expect(Object.keys(sessions).sort()).toEqual(["host1", "host2", "host3"]);
    expect(Object.values(sessions)).not.toContain("Established");
  });

  it("adds and removes a host", async () => {
    const h4 = await lab.addHost({ startAgent: false });
    expect(h4.name).toBe("host4");
    expect((await lab.ping(lab.host("host1").ns, h4.ip)).received).toBe(1);
    const namespacesBefore = await listNamespaces(`${lab.name}-`);
    await lab.removeHost(h4);
    expect(lab.hosts.map((h) => h.name)).toEqual(["host1", "host2", "host3"]);
    expect(await listNamespaces(h4.ns)).toEqual([]);
    // Removing it again changes nothing (the lab still owns, and later deletes, every other namespace).
    await lab.removeHost(h4);
    expect(lab.hosts.map((h) => h.name)).toEqual(["host1", "host2", "host3"]);
    expect(await listNamespaces(`${lab.name}-`)).toEqual(namespacesBefore.filter((n) => n !== h4.ns));
  });

  it("reports a missing host and a missing agent bundle as typed errors", async () => {
    expect(() => lab.host("nope")).toThrow(expect.objectContaining({ code: "bad-input" }));
    const err = await createClusterLab({ hosts: 1, agentBinary: "/nonexistent/margay-node.cjs" }).catch(
      (e) => e,
    );
    expect(isClusterLabError(err) && err.code).toBe("agent-missing");
  });

  it("close() kills every process and deletes every namespace and the directory", async () => {
    const dir = lab.dir;
    const mine = await listNamespaces(`${lab.name}-`);
    const pids = (
      await Promise.all(mine.map((ns) => runCommand(["ip", "netns", "pids", ns]).catch(() => "")))
    )
      .join(" ")
      .split(/\s+/)
      .filter((s) => s !== "");
    expect(pids.length).toBeGreaterThan(0); // etcd, the bridge, probes, BIRD
    await lab.close();
    expect(await listNamespaces(`${lab.name}-`)).toEqual([]);
    for (const pid of pids) expect(existsSync(`/proc/${pid}`), `pid ${pid}`).toBe(false);
    expect(existsSync(dir)).toBe(false);
    expect(existsSync(join(LAB_OWNER_DIR, `${lab.name}.pid`))).toBe(false);
  });
});

describe("stale lab cleaner", () => {
  it("deletes the namespaces of a lab whose owner process is gone, and leaves live labs alone", async () => {
    const dead = spawn("true");
    const deadPid = await new Promise<number>((r) => dead.once("exit", () => r(dead.pid!)));
    const stale = "mglt-0dead0";
    const live = "mglt-11ee11";
    const orphan = "mglt-0afa00"; // no owner record at all
    await mkdir(LAB_OWNER_DIR, { recursive: true });
    await writeFile(join(LAB_OWNER_DIR, `${stale}.pid`), `${deadPid}\n`);
    await writeFile(join(LAB_OWNER_DIR, `${live}.pid`), `${process.pid}\n`);
    try {
      await runCommand(["ip", "netns", "add", `${stale}-sw`]);
      await runCommand(["ip", "netns", "add", `${live}-sw`]);
      await runCommand(["ip", "netns", "add", `${orphan}-h1`]);
      expect((await cleanStaleLabs("mglt")).sort()).toEqual([orphan, stale].sort());
      expect(await listNamespaces(`${stale}-`)).toEqual([]);
      expect(await listNamespaces(`${orphan}-`)).toEqual([]);
      expect(await listNamespaces(`${live}-`)).toEqual([`${live}-sw`]);
    } finally {
      await runCommand(["ip", "netns", "del", `${stale}-sw`]).catch(() => undefined);
      await runCommand(["ip", "netns", "del", `${live}-sw`]).catch(() => undefined);
      await runCommand(["ip", "netns", "del", `${orphan}-h1`]).catch(() => undefined);
      await runCommand(["rm", "-f", join(LAB_OWNER_DIR, `${stale}.pid`), join(LAB_OWNER_DIR, `${live}.pid`)]);
    }
  });
});
