import { type Logger, silentLogger } from "@margay/api";
import { DATAPLANE_DEFAULTS } from "../defaults.js";
import { DataplaneError, DataplaneErrorCode } from "../errors.js";
import { validateInterfaceName } from "../kernel/names.js";
import type { NetnsHandle } from "../kernel/netns.js";
import { type CommandRunner, createProcessRunner } from "../kernel/runner.js";
import type { NftRenderOptions } from "../nft/render.js";
import type { RouteTableSpec } from "../routes/kernel-routes.js";
import type { RoutePlanOptions } from "../routes/plan.js";
import { dataplanePrefix } from "../workload/plumbing.js";
import type { LinuxDataplaneOptions } from "./linux-driver.js";

/** {@link LinuxDataplaneOptions} with every default applied and every value checked. */
export interface ResolvedLinuxOptions {
  readonly runner: CommandRunner;
  readonly ns: NetnsHandle;
  /** The caller's logger (silent by default), as the child `component: "dataplane"`. */
  readonly log: Logger;
  /** Our route protocol number and table. */
  readonly spec: RouteTableSpec;
  /** Route plan options, less what the IPIP probe decides. */
  readonly base: Omit<RoutePlanOptions, "ipipSupported">;
  /** Periodic reconciliation in ms (0: none). */
  readonly interval: number;
  readonly nftEnabled: boolean;
  readonly render: NftRenderOptions;
  readonly persistentIp: boolean;
}

function checkInt(name: string, v: number, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new DataplaneError(DataplaneErrorCode.InvalidOptions, `${name} out of range`, {
      details: { [name]: v, min, max },
    });
  }
  return v;
}

/** Applies the defaults ({@link DATAPLANE_DEFAULTS}); throws `invalid-options` on a bad value. */
export function resolveLinuxOptions(options: LinuxDataplaneOptions): ResolvedLinuxOptions {
  const nftOptions = options.nftables ?? {};
  return {
    runner: options.runner ?? createProcessRunner(),
    ns: options.netns,
    log: (options.logger ?? silentLogger).child({ component: "dataplane" }),
    spec: {
      protocol: checkInt("routeProtocol", options.routeProtocol ?? DATAPLANE_DEFAULTS.routeProtocol, 5, 255),
      table: checkInt("routeTable", options.routeTable ?? DATAPLANE_DEFAULTS.routeTable, 1, 0xfffffffe),
    },
    base: {
      nodeName: options.nodeName,
      vxlanDevice: validateInterfaceName(options.vxlanDevice ?? DATAPLANE_DEFAULTS.vxlanDevice),
      vxlanVni: checkInt("vxlanVni", options.vxlanVni ?? DATAPLANE_DEFAULTS.vxlanVni, 1, 0xffffff),
      vxlanPort: checkInt("vxlanPort", options.vxlanPort ?? DATAPLANE_DEFAULTS.vxlanPort, 1, 65535),
      vxlanMtu: checkInt("vxlanMtu", options.vxlanMtu ?? DATAPLANE_DEFAULTS.vxlanMtu, 68, 65535),
      ipipDevice: DATAPLANE_DEFAULTS.ipipDevice,
    },
    interval: checkInt(
      "reconcileIntervalMs",
      options.reconcileIntervalMs ?? DATAPLANE_DEFAULTS.reconcileIntervalMs,
      0,
      2 ** 31 - 1,
    ),
    nftEnabled: nftOptions.enabled ?? true,
    render: {
      table: validateInterfaceName(nftOptions.table ?? "margay"),
      workloadPrefixes: (nftOptions.workloadPrefixes ?? [DATAPLANE_DEFAULTS.ifPrefix]).map(dataplanePrefix),
      endpointToHost: nftOptions.endpointToHost ?? "accept",
      marks: nftOptions.marks ?? { allow: 0x10000, pass: 0x20000 },
      priority: 0,
    },
    persistentIp: options.persistentIp ?? true,
  };
}
