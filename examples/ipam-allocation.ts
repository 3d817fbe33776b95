/**
 * @margay/ipam: Calico-style block-affinity IPAM over a datastore.
 *
 * Two hosts share one pool with /28 blocks: each host claims a block of its own (block affinity), so
 * its pods' addresses aggregate into one route per block; a host whose block is full claims another.
 * Releases are by handle (`<network>.<containerID>`), idempotent.
 *
 * Run: `npx tsx examples/ipam-allocation.ts` (after `npm run build`); `scripts/examples.test.ts` runs it.
 */
import { createMemoryDatastore } from "@margay/datastore";
import { createIpam } from "@margay/ipam";

const datastore = createMemoryDatastore();
await datastore.create({
  apiVersion: "margay.io/v1",
  kind: "IPPool",
  metadata: { name: "pods" },
  spec: { cidr: "10.244.0.0/24", blockSize: 28 },
});
const ipam = createIpam({ datastore });
try {
  // 18 pods on host-a (a /28 block holds 16 addresses: the 17th needs a second block), 2 on host-b.
  const placed: { pod: string; node: string; ip: string; block: string }[] = [];
  for (const [node, count] of [
    ["host-a", 18],
    ["host-b", 2],
  ] as const) {
    for (let i = 0; i < count; i++) {
      const pod = `${node}-pod-${i}`;
      const { ipv4 } = await ipam.autoAssign({
        handleId: `k8s-pod-network.${pod}`,
        node,
        num4: 1,
        attrs: { pod, namespace: "default", node },
      });
      placed.push({ pod, node, ip: ipv4[0]!.ip, block: ipv4[0]!.block });
    }
  }
  for (const node of ["host-a", "host-b"]) {
    const mine = placed.filter((p) => p.node === node);
    const blocks = [...new Set(mine.map((p) => p.block))];
    console.log(`${node}: ${mine.length} pods in block(s) ${blocks.join(", ")}`);
  }

  // Release one pod twice: the second release finds nothing and is not an error.
  console.log("released:", await ipam.releaseByHandle("k8s-pod-network.host-b-pod-0"));
  console.log("released again:", await ipam.releaseByHandle("k8s-pod-network.host-b-pod-0"));

  for (const pool of await ipam.utilisation()) {
    console.log(`pool ${pool.name} ${pool.cidr}: ${pool.inUse} in use of ${pool.capacity}`);
    for (const b of pool.blocks)
      console.log(`  block ${b.cidr} ${b.affinity ?? "(no affinity)"} ${b.inUse}/${b.capacity}`);
  }
} finally {
  await ipam.close();
  await datastore.close();
}
