/**
 * Shared steps of the end-to-end tests (`*.e2e.test.ts`): resources, route lookups, waits on BGP sessions
 * as the NodeStatus resources report them, and all-pairs reachability (a failed wait throws with what it saw).
 *
 * @packageDocumentation
 */
import { API_VERSION, addressBits, cidrContains, parseIp, tryParseCidr } from "@margay/api";
import type { Datastore, StoredObject } from "@margay/datastore";
import { type ClusterLab, type LabHost, type LabPod, type LabRoute, waitFor } from "../testing/index.js";

/** The agents' VXLAN device (the default `MARGAY_VXLAN_DEVICE`). */
export const VXLAN_DEVICE = "vxlan.margay";

/** An IPPool resource (no encapsulation, no NAT, /26 blocks unless `spec` says otherwise). */
export function pool(name: string, cidr: string, spec: Record<string, unknown> = {}): StoredObject {
  return {
    apiVersion: API_VERSION,
    kind: "IPPool",
    metadata: { name },
    spec: {
      cidr,
      blockSize: 26,
      ipipMode: "Never",
      vxlanMode: "Never",
      natOutgoing: false,
      nodeSelector: "all()",
      ...spec,
    },
  } as StoredObject;
}

/** The most specific route of `routes` that covers `ip` (the default route left out). */
export function routeCovering(routes: readonly LabRoute[], ip: string): LabRoute | undefined {
  const addr = parseIp(ip);
  let best: { r: LabRoute; len: number } | undefined;
  for (const r of routes) {
    if (r.dst === "default") continue;
    const dst = tryParseCidr(r.dst.includes("/") ? r.dst : `${r.dst}/${addressBits(addr.version)}`);
    if (dst === undefined || !cidrContains(dst, addr)) continue;
    if (best === undefined || dst.prefixLength > best.len) best = { r, len: dst.prefixLength };
  }
  return best?.r;
}

/** A BGP session as a NodeStatus lists it. */
export interface NodeStatusPeer {
  address: string;
  type: string;
  state: string;
}

/** The BGP sessions `node` last reported in its NodeStatus. */
export async function bgpPeers(ds: Datastore, node: string): Promise<NodeStatusPeer[]> {
  const s = await ds.get<StoredObject & { status?: { bgp?: { peers: NodeStatusPeer[] } } }>({
    kind: "NodeStatus",
    name: node,
  });
  return s.status?.bgp?.peers ?? [];
}

/** Waits until every host's status lists exactly `expected(host)` as Established peers. */
export async function waitForSessions(
  lab: ClusterLab,
  ds: Datastore,
  expected: (h: LabHost) => readonly string[],
  timeoutMs = 90_000,
) {
  for (const h of lab.hosts) {
    let seen: NodeStatusPeer[] = [];
    await waitFor(
      `${h.name}'s BGP sessions to ${expected(h).join(", ")} Established`,
      async () => {
        seen = await bgpPeers(ds, h.name);
        const up = seen
          .filter((p) => p.state === "Established")
          .map((p) => p.address.split("/")[0])
          .sort();
        return JSON.stringify(up) === JSON.stringify([...expected(h)].sort());
      },
      { timeoutMs, intervalMs: 500, describe: () => JSON.stringify(seen) },
    );
  }
}

/** Every ordered pair of distinct pods. */
export const pairs = (pods: readonly LabPod[]) =>
  pods.flatMap((a) => pods.filter((b) => b !== a).map((b) => [a, b] as const));

/** Asserts every pod reaches every other by ICMP, TCP and UDP (waiting for routes to converge first). */
export async function expectFullReachability(lab: ClusterLab, pods: readonly LabPod[]) {
  for (const [a, b] of pairs(pods)) {
    await waitFor(`${a.name} (${a.ip}) to reach ${b.name} (${b.ip}) over TCP`, () => lab.canReach(a, b), {
      timeoutMs: 30_000,
    });
    // Once TCP passes the path exists; UDP and ICMP get a few tries so a starved machine's slow echo is
    // not read as a drop.
    for (const proto of ["udp", "icmp"] as const) {
      await waitFor(
        `${a.name} -> ${b.name} over ${proto.toUpperCase()}`,
        () => lab.canReach(a, b, { proto }),
        {
          timeoutMs: 10_000,
        },
      );
    }
  }
}

/** One pod per host (`<prefix>-<host>`) from pool `poolName`. */
export async function addPods(lab: ClusterLab, prefix: string, poolName: string, hosts = lab.hosts) {
  const out: LabPod[] = [];
  for (const h of hosts) out.push(await lab.addPod(h, { name: `${prefix}-${h.name}`, pools: [poolName] }));
  return out;
}
