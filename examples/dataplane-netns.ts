/**
 * @margay/dataplane: the Linux driver programming a real kernel, inside network namespaces it creates.
 *
 * A namespace stands in for a node (`eth0` 192.168.0.1/24); the workload plumber creates a pod's veth
 * into a second namespace (the CNI plugin's job, done by `margay-node` for it); the driver receives the
 * same update batches the memory driver takes (see the package README) and programs routes and
 * nftables. The kernel's routes are printed, then both namespaces are deleted, also on failure.
 *
 * Needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN), iproute2 and nftables. Run: `npx tsx
 * examples/dataplane-netns.ts` (after `npm run build`); `packages/margay/src/guides/examples.netns.test.ts` runs it.
 */
import { execFileSync } from "node:child_process";
import {
  createLinuxDataplane,
  createProcessRunner,
  createWorkloadPlumber,
  type DataplaneUpdate,
  namedNetns,
  pathNetns,
  workloadMtu,
} from "@margay/dataplane";

const ip = (...args: string[]) => execFileSync("ip", args, { encoding: "utf8" });
const nodeNs = `mg-example-node-${process.pid}`;
const podNs = `mg-example-pod-${process.pid}`;

ip("netns", "add", nodeNs);
try {
  ip("netns", "add", podNs);
  ip("-n", nodeNs, "link", "set", "lo", "up");
  ip("-n", nodeNs, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p");
  ip("-n", nodeNs, "addr", "add", "192.168.0.1/24", "dev", "eth0");
  ip("-n", nodeNs, "link", "set", "eth0p", "up");
  ip("-n", nodeNs, "link", "set", "eth0", "up");

  const node = namedNetns(nodeNs); // on a real node: CURRENT_NETNS
  const plumber = createWorkloadPlumber({ runner: createProcessRunner(), hostNetns: node });
  const pod = await plumber.add({
    endpoint: { namespace: "default", workload: "web-0" },
    containerNetns: pathNetns(`/var/run/netns/${podNs}`),
    addresses: ["10.244.0.5/32"],
    mtu: workloadMtu(1500, "none"),
  });
  console.log(`pod veth ${pod.hostIfName}`);

  const driver = createLinuxDataplane({ netns: node, nodeName: "node-a" });
  const state: DataplaneUpdate[] = [
    { kind: "host-update", node: "node-a", addresses: ["192.168.0.1/24"] },
    { kind: "host-update", node: "node-b", addresses: ["192.168.0.2/24"] },
    {
      kind: "pool-update",
      cidr: "10.244.0.0/16",
      encapsulation: "none",
      crossSubnet: false,
      natOutgoing: true,
    },
    { kind: "route-update", dst: "10.244.0.0/26", type: "local-block" },
    { kind: "route-update", dst: "10.244.1.0/26", type: "remote-block", nodes: ["node-b"] },
    { kind: "route-update", dst: "10.244.0.5/32", type: "local-workload", ifname: pod.hostIfName },
    { kind: "in-sync" }, // nothing is programmed before the first in-sync
  ];
  await driver.apply(state);
  // The kernel now holds the routes (the driver's protocol marks them as its own).
  for (const line of ip("-n", nodeNs, "route", "show", "root", "10.244.0.0/16").trim().split("\n")) {
    console.log(`route ${line.trim()}`);
  }
  const tables = ip("netns", "exec", nodeNs, "nft", "list", "tables");
  console.log(`nft ${tables.includes("inet margay") ? "table inet margay present" : "no margay table"}`);
  await driver.close();
} finally {
  ip("netns", "del", nodeNs);
  try {
    ip("netns", "del", podNs);
  } catch {
    // never created
  }
}
