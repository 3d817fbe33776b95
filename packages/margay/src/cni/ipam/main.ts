/**
 * Entry of the `margay-ipam` executable. Only the skeleton is loaded eagerly: the IPAM, the datastore
 * and (for etcd) the gRPC client are imported on first use, so VERSION and error paths stay at the cost
 * of a bare Node start.
 *
 * `margay-ipam allocations` (not a CNI verb: runtimes never pass arguments) reads a plugin configuration
 * on stdin and prints the addresses its network holds, for `cni-conformance --inspect margay-ipam`.
 *
 * @packageDocumentation
 */

import { pluginMain } from "@margay/cni";

if (process.argv[2] === "allocations") {
  void import("./inspect.js").then((m) => m.inspectMain());
} else {
  void pluginMain(
    {
      add: async (a) => (await import("./plugin.js")).margayIpamHandlers.add(a),
      del: async (a) => (await import("./plugin.js")).margayIpamHandlers.del(a),
      check: async (a) => (await import("./plugin.js")).margayIpamHandlers.check(a),
      status: async (a) => (await import("./plugin.js")).margayIpamHandlers.status?.(a),
      gc: async (a) => (await import("./plugin.js")).margayIpamHandlers.gc?.(a),
    },
    { about: "margay-ipam", supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] },
  );
}
