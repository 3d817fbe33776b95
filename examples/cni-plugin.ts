/**
 * @margay/cni: a CNI IPAM plugin written with the skeleton, over @margay/ipam.
 *
 * The skeleton (`pluginMain`) reads the environment and stdin, validates the configuration,
 * negotiates the spec version and dispatches to the handlers below; a handler throws a `CniError` to
 * answer with a specific code. State lives in a memory datastore's snapshot file named by the
 * configuration (`snapshotPath`), one invocation at a time (the real margay-ipam also takes a lock
 * file and supports etcd: packages/margay/src/cni/ipam).
 *
 * ```json
 * { "cniVersion": "1.1.0", "name": "mynet", "type": "example-ipam",
 *   "snapshotPath": "/var/lib/example-ipam/state.json", "pool": "10.250.0.0/24" }
 * ```
 *
 * As a plugin: `npx tsx examples/cni-plugin.ts` with `CNI_COMMAND`, `CNI_CONTAINERID`, `CNI_NETNS`,
 * `CNI_IFNAME` set and the configuration on stdin. `scripts/examples.test.ts` drives every verb
 * through `runPlugin`, the same dispatcher without process state.
 */
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  CniError,
  type CmdArgs,
  type CniResult,
  type PluginHandlers,
  type PluginInfo,
  pluginMain,
} from "@margay/cni";
import { createMemoryDatastore, isDatastoreError } from "@margay/datastore";
import { createIpam, type Ipam } from "@margay/ipam";

/** Opens the state named by the configuration, runs `fn`, closes it (a plugin lives for one verb). */
async function withIpam<T>(args: CmdArgs, fn: (ipam: Ipam) => Promise<T>): Promise<T> {
  const { snapshotPath, pool } = args.config;
  if (typeof snapshotPath !== "string" || typeof pool !== "string") {
    throw new CniError(7, "snapshotPath and pool (strings) are required", { details: "configuration" });
  }
  const datastore = createMemoryDatastore({ snapshotPath });
  const ipam = createIpam({ datastore });
  try {
    try {
      await datastore.create({
        apiVersion: "margay.io/v1",
        kind: "IPPool",
        metadata: { name: args.config.name },
        spec: { cidr: pool },
      });
    } catch (e) {
      if (!isDatastoreError(e, "already-exists")) throw e;
    }
    return await fn(ipam);
  } finally {
    await ipam.close();
    await datastore.close();
  }
}

/** One attachment, one handle: `<network>.<containerID>`, as Calico and margay-ipam name them. */
const handleOf = (args: CmdArgs) => `${args.config.name}.${args.containerId}`;

export const handlers: PluginHandlers = {
  add: (args) =>
    withIpam(args, async (ipam): Promise<CniResult> => {
      const { ipv4 } = await ipam.autoAssign({
        handleId: handleOf(args),
        node: "localhost",
        num4: 1,
        attrs: { containerID: args.containerId, ifname: args.ifname },
      });
      const prefix = (args.config.pool as string).split("/")[1];
      return { cniVersion: args.cniVersion, ips: [{ address: `${ipv4[0]!.ip}/${prefix}` }] };
    }),
  // DEL must succeed when the attachment is already gone: releaseByHandle is idempotent.
  del: (args) => withIpam(args, async (ipam) => void (await ipam.releaseByHandle(handleOf(args)))),
  check: (args) =>
    withIpam(args, async (ipam) => {
      const held = await ipam.ipsByHandle(handleOf(args));
      for (const ip of args.prevResult?.ips ?? []) {
        const address = ip.address.split("/")[0]!;
        if (!held.includes(address))
          throw new CniError(11, `address ${address} is not allocated to this attachment`);
      }
    }),
};

export const info: PluginInfo = { about: "example-ipam", supportedVersions: ["0.4.0", "1.0.0", "1.1.0"] };

// Run as an executable (not when a test imports the handlers).
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await pluginMain(handlers, info);
}
