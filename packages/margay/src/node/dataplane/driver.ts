/**
 * The agent's dataplane driver, chosen by configuration: the Linux driver in process (default) or an
 * out-of-process driver speaking the protobuf protocol on its stdin/stdout.
 *
 * @packageDocumentation
 */
import {
  type CommandRunner,
  CURRENT_NETNS,
  createLinuxDataplane,
  createProcessRunner,
  type DataplaneDriver,
  type ForeignChainFinding,
  margayHooks,
  readLegacyIptablesDrops,
  readShadowingChains,
  type LinuxDataplaneOptions,
  type NetnsHandle,
  spawnDataplane,
  teardownLinuxDataplane,
} from "@margay/dataplane";
import type { AgentConfig } from "../config/types.js";
import type { AgentContext } from "../context.js";
import { PipelineError, PipelineErrorCode } from "./errors.js";

/** A driver the pipeline runs, plus how to remove what it programmed (`close({ teardown: true })`). */
export interface AgentDriver extends DataplaneDriver {
  /**
   * Removes everything the driver programmed (routes of our protocol, the VXLAN device, the nftables
   * table). Absent when the driver cannot (a remote driver owns its own state).
   */
  teardown?(): Promise<void>;
  /**
   * Foreign nftables base chains that can drop traffic before our table sees it (report only). Absent
   * when the driver cannot tell (a remote driver's namespace is its own).
   */
  foreignRules?(): Promise<readonly ForeignChainFinding[]>;
}

/** Options of {@link createAgentDriver}. */
export interface AgentDriverOptions {
  /** Veth and tunnel MTU the agent derived (the VXLAN device gets it). Default: the driver's (1450). */
  readonly mtu?: number | undefined;
  /** Namespace the Linux driver programs. Default: the agent's own (`margay-node` runs in the host's). */
  readonly netns?: NetnsHandle | undefined;
  /** Runs kernel commands (tests). Default: real processes. */
  readonly runner?: CommandRunner | undefined;
}

/**
 * Calico's `defaultEndpointToHostAction` on our nftables driver. `Return` hands the packet on to the host's
 * other rules: in nftables an `accept` in our table ends only our table's verdict and every other table at
 * the hook still sees the packet, which is what Calico's `Return` (fall through to the INPUT chain) means.
 */
export function endpointToHostVerdict(
  action: AgentConfig["dataplane"]["endpointToHostAction"],
): "accept" | "drop" {
  return action === "Drop" ? "drop" : "accept";
}

/** The Linux driver's options as the agent's configuration sets them. */
export function linuxDriverOptions(
  config: AgentConfig,
  options: AgentDriverOptions & { readonly logger?: LinuxDataplaneOptions["logger"] } = {},
): LinuxDataplaneOptions {
  return {
    netns: options.netns ?? CURRENT_NETNS,
    nodeName: config.nodeName,
    runner: options.runner,
    routeProtocol: config.dataplane.routeProtocol,
    vxlanDevice: config.vxlan.device,
    vxlanVni: config.vxlan.vni,
    vxlanPort: config.vxlan.port,
    vxlanMtu: options.mtu,
    reconcileIntervalMs: config.dataplane.reconcileIntervalMs,
    logger: options.logger,
    nftables: {
      enabled: true,
      table: config.dataplane.nftTable,
      // Traffic of a `<prefix>*` interface no endpoint names is dropped (fail closed): every prefix the
      // agent names workloads with must be here.
      workloadPrefixes: [...config.interfacePrefixes],
      endpointToHost: endpointToHostVerdict(config.dataplane.endpointToHostAction),
    },
  };
}

/**
 * Creates the driver `ctx.config.dataplane.driver` names: `linux` → `createLinuxDataplane` over the
 * agent's namespace; `remote` → `spawnDataplane(config.dataplane.remoteCommand)`.
 *
 * @throws PipelineError `invalid-options` for `remote` without a command; the dataplane's own errors
 * (`invalid-options`, `command-failed` when the remote driver cannot start).
 */
export async function createAgentDriver(
  ctx: AgentContext,
  options: AgentDriverOptions = {},
): Promise<AgentDriver> {
  const { config } = ctx;
  const logger = ctx.logger;
  if (config.dataplane.driver === "remote") {
    const argv = config.dataplane.remoteCommand;
    if (argv === undefined || argv.length === 0) {
      throw new PipelineError(
        PipelineErrorCode.InvalidOptions,
        "the remote dataplane driver needs a command",
        {
          field: "dataplane.remoteCommand",
        },
      );
    }
    logger.info({ component: "dataplane", argv: [...argv] }, "starting remote dataplane driver");
    return spawnDataplane(argv, { logger, signal: ctx.signal });
  }
  if (config.dataplane.driver !== "linux") {
    throw new PipelineError(PipelineErrorCode.InvalidOptions, "unknown dataplane driver", {
      field: "dataplane.driver",
      value: config.dataplane.driver,
    });
  }
  const linuxOptions = linuxDriverOptions(config, { ...options, logger });
  const driver = createLinuxDataplane(linuxOptions);
  const teardown = () =>
    teardownLinuxDataplane({
      netns: linuxOptions.netns,
      runner: options.runner,
      routeProtocol: config.dataplane.routeProtocol,
      vxlanDevice: config.vxlan.device,
      nftTable: config.dataplane.nftTable,
    });
  // The Linux driver renders its filter chains at priority 0 (linux/options.ts in @margay/dataplane).
  const ours = margayHooks({ table: config.dataplane.nftTable, priority: 0 });
  const runner = options.runner ?? createProcessRunner();
  const ns = linuxOptions.netns ?? CURRENT_NETNS;
  const foreignRules = async () => [
    ...(await readShadowingChains(runner, ns, ours)),
    ...(await readLegacyIptablesDrops(runner, ns, ours)),
  ];
  return Object.assign(driver, { teardown, foreignRules });
}
