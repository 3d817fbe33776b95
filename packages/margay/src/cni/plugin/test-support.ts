/**
 * Shared steps of the `margay` plugin's lab tests: a built plugin, a conflist for a lab host, and the
 * inspectors the conformance kit needs (addresses the agent's IPAM holds for workloads, host-side
 * veths left on a host). Test-only.
 *
 * @packageDocumentation
 */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NetConfList } from "@margay/cni";
import type { Datastore, StoredObject } from "@margay/datastore";
import { createIpam } from "@margay/ipam";
import type { ClusterLab, LabHost } from "../../testing/index.js";
import { buildMargayNodeBundle } from "../../node/config/build-bundle.js";
import { buildMargayPluginBundle } from "./build-bundle.js";

/**
 * Bundles margay-node from the workspace sources (as tsup does) into `dir/margay-node.cjs`, so the lab
 * runs the agent of this tree (with the workload API's DEL spool), not a stale `dist`.
 */
export async function buildAgentBundle(dir: string): Promise<string> {
  return (await buildMargayNodeBundle(join(dir, "margay-node.cjs"))).path;
}

/** Builds the plugin into a fresh directory; returns the directory (a CNI_PATH entry). */
export async function buildPluginDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "margay-cni-bin-"));
  await buildMargayPluginBundle(join(dir, "margay"));
  return dir;
}

/** A conflist running `margay` against `host`'s agent at `cniVersion`, optionally chained. */
export function margayConfList(
  host: LabHost,
  cniVersion: string,
  chained: readonly Record<string, unknown>[] = [],
  extra: Record<string, unknown> = {},
): NetConfList {
  return {
    cniVersion,
    name: "margay",
    plugins: [
      {
        type: "margay",
        agent_socket: host.socket,
        state_dir: host.stateDir,
        ipam: { type: "margay" },
        ...extra,
      },
      ...chained,
    ] as NetConfList["plugins"],
  };
}

/** An IPPool resource (no encapsulation, no NAT, /26 blocks unless `spec` says otherwise). */
export { pool as ipPool } from "../../node/e2e-support.js";

/** Every address the agents' IPAM holds for workloads (handles `margay:<cid>:<if>`), sorted. */
export function workloadAllocations(ds: Datastore): () => Promise<string[]> {
  const ipam = createIpam({ datastore: ds });
  return async () => {
    const handles = await ds.list<StoredObject & { spec: { handleId: string } }>("IPAMHandle");
    const out: string[] = [];
    for (const h of handles.items) {
      if (!h.spec.handleId.startsWith("margay:")) continue;
      out.push(...(await ipam.ipsByHandle(h.spec.handleId)));
    }
    return out.sort();
  };
}

/** Host-side workload veths (`mgy*`) in a lab host's namespace. */
export async function hostWorkloadLinks(lab: ClusterLab, host: LabHost): Promise<string[]> {
  const out = await lab.exec(host.ns, ["ip", "-j", "link", "show"]);
  return (JSON.parse(out || "[]") as { ifname: string }[])
    .map((l) => l.ifname)
    .filter((n) => n.startsWith("mgy"))
    .sort();
}
