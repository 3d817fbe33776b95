import { DATAPLANE_DEFAULTS } from "../defaults.js";
import type { KernelCallOptions } from "../kernel/iproute.js";
import { validateInterfaceName } from "../kernel/names.js";
import { type NetnsHandle, inNetns, ipArgv } from "../kernel/netns.js";
import { type CommandRunner, createProcessRunner } from "../kernel/runner.js";
import { removeVxlan } from "../routes/vxlan.js";

/** What {@link teardownLinuxDataplane} removes; defaults match the driver's. */
export interface TeardownOptions extends KernelCallOptions {
  /** The namespace the driver programmed. */
  readonly netns: NetnsHandle;
  /** Runs kernel commands. Default: real processes. */
  readonly runner?: CommandRunner | undefined;
  /** Route protocol marking our routes. Default 80. */
  readonly routeProtocol?: number | undefined;
  /** Routing table. Default 254. */
  readonly routeTable?: number | undefined;
  /** VXLAN device. Default `vxlan.margay`. */
  readonly vxlanDevice?: string | undefined;
  /** nftables table (family inet). Default `margay`. */
  readonly nftTable?: string | undefined;
}

/**
 * Removes everything the Linux driver owns in a namespace: routes carrying its protocol number (both
 * families), the VXLAN device (with its neighbours and FDB entries), and the nftables table. Workload
 * veths belong to the CNI plugin and are left alone. Idempotent.
 */
export async function teardownLinuxDataplane(options: TeardownOptions): Promise<void> {
  const runner = options.runner ?? createProcessRunner();
  const { netns, signal } = options;
  const proto = String(options.routeProtocol ?? DATAPLANE_DEFAULTS.routeProtocol);
  const table = String(options.routeTable ?? DATAPLANE_DEFAULTS.routeTable);
  await removeVxlan(runner, netns, options.vxlanDevice ?? DATAPLANE_DEFAULTS.vxlanDevice, { signal });
  for (const family of ["-4", "-6"]) {
    await runner.run(ipArgv(netns, [family, "route", "flush", "table", table, "proto", proto]), { signal });
  }
  const t = validateInterfaceName(options.nftTable ?? "margay");
  await runner.run(inNetns(netns, ["nft", "-f", "-"]), {
    stdin: `add table inet ${t}\ndelete table inet ${t}\n`,
    signal,
  });
}
