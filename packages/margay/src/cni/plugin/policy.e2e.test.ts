/**
 * Policy from the first packet: a pod added through `margay` whose policy denies a peer never answers that
 * peer, not even during its ADD. The peers ping the pod's (requested) address continuously from before the
 * ADD until after it: the allowed peer gets replies once the ADD returns, the denied one gets none — the
 * agent answers ADD only once routes and policy are programmed, and the dataplane drops traffic of a
 * workload interface that has no endpoint yet.
 */
import { join } from "node:path";
import { createCniRuntime } from "@margay/cni";
import { createNetns } from "@margay/cni/testing";
import type { Datastore, StoredObject } from "@margay/datastore";
import { convertNamespace, convertNetworkPolicy } from "@margay/policy";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ClusterLab, createClusterLab, type LabHost } from "../../testing/index.js";
import { buildAgentBundle, buildPluginDir, ipPool, margayConfList } from "./test-support.js";

const DB_IP = "10.248.5.5";

describe("margay: a pod whose policy denies a peer is unreachable from its first packet", () => {
  let lab: ClusterLab;
  let ds: Datastore;
  let host: LabHost;
  let binDir: string;

  beforeAll(async () => {
    binDir = await buildPluginDir();
    lab = await createClusterLab({
      hosts: 1,
      router: false,
      startAgents: false,
      agentBinary: await buildAgentBundle(binDir),
      agentEnv: { NO_DEFAULT_POOLS: "true", MARGAY_NETWORKING_BACKEND: "none" },
    });
    try {
      ds = lab.datastore();
      await ds.create(ipPool("pods", "10.248.0.0/16"));
      await ds.create(convertNamespace({ metadata: { name: "default" } }) as unknown as StoredObject);
      host = lab.hosts[0]!;
      lab.startAgent(host);
      await lab.waitReady(host);
    } catch (e) {
      await lab.close();
      throw e;
    }
  });
  afterAll(async () => {
    await lab?.close();
  });

  it("the denied peer gets no reply at any time; the allowed one does as soon as ADD returns", async () => {
    const list = margayConfList(host, "1.0.0");
    const runtime = createCniRuntime({ path: [binDir], cacheDir: join(lab.dir, "cni-cache-policy") });
    await using webNs = await createNetns("mgpol");
    await using evilNs = await createNetns("mgpol");
    await using dbNs = await createNetns("mgpol");
    const att = (id: string, ns: { path: string }, app: string, extra: Record<string, unknown> = {}) => ({
      rt: {
        containerId: id,
        netns: ns.path,
        ifname: "eth0",
        args: { K8S_POD_NAMESPACE: "default", K8S_POD_NAME: id },
      },
      list: { ...list, plugins: [{ ...list.plugins[0]!, args: { cni: { labels: { app } } }, ...extra }] },
    });
    const web = att("web", webNs, "web");
    const evil = att("evil", evilNs, "evil");
    const db = att("db", dbNs, "db", { runtimeConfig: { ips: [DB_IP] } });
    try {
      await runtime.addNetworkList(web.list, web.rt);
      await runtime.addNetworkList(evil.list, evil.rt);
      await ds.create(
        convertNetworkPolicy({
          metadata: { name: "db-from-web", namespace: "default" },
          spec: {
            podSelector: { matchLabels: { app: "db" } },
            policyTypes: ["Ingress"],
            ingress: [{ from: [{ podSelector: { matchLabels: { app: "web" } } }] }],
          },
        }) as unknown as StoredObject,
      );
      // Both peers ping the address the pod will get, every 10 ms, from before its ADD until well after.
      const pings = [webNs.name, evilNs.name].map((ns) =>
        lab.ping(ns, DB_IP, { count: 600, intervalS: 0.01 }),
      );
      await new Promise((r) => setTimeout(r, 500));
      const t0 = Date.now();
      const result = (await runtime.addNetworkList(db.list, db.rt)) as { ips: { address: string }[] };
      const addMs = Date.now() - t0;
      expect(result.ips[0]!.address).toBe(`${DB_IP}/32`);
      const [fromWeb, fromEvil] = await Promise.all(pings);
      expect(fromEvil!.transmitted, fromEvil!.output).toBeGreaterThan(300);
      expect(fromEvil!.received, `denied peer got replies (ADD took ${addMs} ms)`).toBe(0);
      expect(fromWeb!.received, fromWeb!.output).toBeGreaterThan(0);
      // And after: still denied, still allowed.
      expect((await lab.ping(evilNs.name, DB_IP, { count: 3 })).received).toBe(0);
      expect((await lab.ping(webNs.name, DB_IP, { count: 3 })).received).toBe(3);
    } finally {
      for (const a of [db, evil, web]) await runtime.delNetworkList(a.list, a.rt).catch(() => undefined);
    }
  });
});
