/**
 * The `margay` CNI plugin's verbs. The plugin owns no state and holds no credentials: every verb is one
 * call to the local agent's workload API (`createWorkloadClient`), which allocates, plumbs the veth,
 * writes the WorkloadEndpoint and answers once routes and policy are programmed. What it does itself:
 * - turn the runtime's inputs (configuration, capabilities, `CNI_ARGS`) into one request;
 * - turn the agent's reply into the CNI result (the skeleton converts it to the runtime's version);
 * - turn every failure into a coded CNI error with the agent's reason (never a stack);
 * - DEL never blocks a pod's termination: when the agent cannot answer, the plugin removes the host-side
 *   veth itself and spools the rest of the DEL for the agent to finish at its start.
 *
 * @packageDocumentation
 */
import { execFile } from "node:child_process";
import {
  type CmdArgs,
  CniError,
  CniErrorCode,
  type CniResult,
  type GcArgs,
  isCniError,
  type PluginHandlers,
  type StatusArgs,
} from "@margay/cni";
import { createWorkloadClient, type WorkloadClient } from "../../node/workload/client.js";
import {
  cniStatusError,
  isWorkloadApiError,
  toCniError,
  WorkloadErrorCode,
} from "../../node/workload/errors.js";
import type { WorkloadAddReply, WorkloadDelRequest } from "../../node/workload/protocol.js";
import { addRequest, delRequest, type MargayPluginConfig, parseMargayConfig } from "./config.js";
// Static: a dynamic import of a module sharing @margay/cni would make the bundler initialise all of
// @margay/cni eagerly; host-local's builtins are loaded lazily by the bundle instead (build-bundle.ts).
import { createHostLocalDelegate } from "./host-local.js";

/** What the plugin does outside the agent call; injected by tests. */
export interface MargayPluginDeps {
  /** A workload API client on `socket`. Default: {@link createWorkloadClient}. */
  readonly client?: ((socket: string, timeoutMs: number) => WorkloadClient) | undefined;
  /** Writes a spooled DEL under the agent's state directory. Default: the workload API's `spoolDel`. */
  readonly spool?: ((stateDir: string, req: WorkloadDelRequest) => Promise<string>) | undefined;
  /** Removes a host interface if it exists (true when removed). Default: `ip link del <name>`. */
  readonly removeLink?: ((name: string) => Promise<boolean>) | undefined;
  /** The host-side veth name of an identity. Default: `@margay/api`'s `workloadInterfaceName`. */
  readonly interfaceName?:
    | ((
        identity: { namespace: string; workload: string; endpoint?: string },
        prefix: string,
      ) => Promise<string>)
    | undefined;
  /** Diagnostics (stderr). Default: silent. */
  readonly warn?: ((line: string) => void) | undefined;
}

/** Errors of the agent for which DEL finishes on its own (the agent is absent, stopping or too slow). */
const AGENT_GONE: readonly WorkloadErrorCode[] = [
  WorkloadErrorCode.AgentUnavailable,
  WorkloadErrorCode.DeadlineExceeded,
  WorkloadErrorCode.ShuttingDown,
  WorkloadErrorCode.NotReady,
];

function cniError(e: unknown, verb: "add" | "del" | "check" | "status" | "gc"): CniError {
  const c = toCniError(e, verb);
  return new CniError(c.code, c.msg, c.details === undefined ? {} : { details: c.details });
}

/** The CNI result of an add reply (1.x shape; the skeleton converts to the runtime's version). */
export function resultOf(reply: WorkloadAddReply, cniVersion: string): CniResult {
  return {
    cniVersion,
    interfaces: reply.interfaces.map((i) => ({
      name: i.name,
      mac: i.mac,
      ...(i.sandbox === undefined ? {} : { sandbox: i.sandbox }),
    })),
    ips: reply.ips.map((ip) => ({ address: ip.address, gateway: ip.gateway, interface: ip.interface })),
    routes: reply.routes.map((r) => ({ dst: r.dst, gw: r.gw })),
    dns: {},
  };
}

function defaultRemoveLink(name: string): Promise<boolean> {
  // A static import: the executable runs inside a vm.Script (the code-cache loader), where a dynamic
  // import() of a Node builtin has no loader and fails.
  return new Promise((resolve, reject) => {
    execFile("ip", ["link", "del", "dev", name], { timeout: 5_000 }, (err, _out, stderr) => {
      if (err === null) return resolve(true);
      // Already gone (the runtime deleted the namespace, or a DEL before us): nothing to do.
      if (/Cannot find device|does not exist/i.test(String(stderr))) return resolve(false);
      reject(new Error(`ip link del ${name}: ${String(stderr).trim() || err.message}`));
    });
  });
}

async function defaultInterfaceName(
  identity: { namespace: string; workload: string; endpoint?: string },
  prefix: string,
): Promise<string> {
  // Loaded only on this path: node:crypto is not part of the plugin's start.
  const { workloadInterfaceName } = await import("../../../../api/src/interface-name.js");
  return workloadInterfaceName(identity, prefix);
}

async function defaultSpool(stateDir: string, req: WorkloadDelRequest): Promise<string> {
  const { spoolDel } = await import("../../node/workload/spool.js");
  return spoolDel(stateDir, req);
}

/** The host-side interface of a previous result: the interface without a sandbox. */
function hostInterfaceOf(args: CmdArgs): string | undefined {
  return args.prevResult?.interfaces?.find((i) => i.sandbox === undefined || i.sandbox === "")?.name;
}

/** The plugin's handlers for `pluginMain` (the skeleton validates the environment and configuration). */
export function createMargayHandlers(deps: MargayPluginDeps = {}): PluginHandlers {
  const clientOf = deps.client ?? ((socket, timeoutMs) => createWorkloadClient(socket, { timeoutMs }));
  const spool = deps.spool ?? defaultSpool;
  const removeLink = deps.removeLink ?? defaultRemoveLink;
  const interfaceName = deps.interfaceName ?? defaultInterfaceName;
  const warn = deps.warn ?? (() => undefined);

  /** The agent's facts a host-local delegation needs (pod CIDRs, gc grace). */
  async function ipamFacts(cfg: MargayPluginConfig, signal: AbortSignal) {
    const st = await clientOf(cfg.agentSocket, cfg.statusTimeoutMs).status({ signal });
    return { podCidrs: st.podCidrs ?? [], gcGracePeriodMs: st.gcGracePeriodMs ?? 60_000 };
  }

  /** ADD through host-local: its addresses, then the agent plumbs and writes them (no agent IPAM). */
  async function addWithHostLocal(
    args: CmdArgs,
    cfg: MargayPluginConfig,
    hostLocal: Readonly<Record<string, unknown>>,
  ): Promise<CniResult> {
    const delegate = createHostLocalDelegate(hostLocal);
    let facts: Awaited<ReturnType<typeof ipamFacts>>;
    try {
      facts = await ipamFacts(cfg, args.signal);
    } catch (e) {
      throw cniError(e, "add");
    }
    const ipamResult = await delegate.add(args, facts);
    const externalIps = (ipamResult.ips ?? []).map((i) => i.address.slice(0, i.address.lastIndexOf("/")));
    // host-local honours IP= and the ips capability itself: the agent gets what it chose.
    const { ips: _asked, pools: _pools, ...req } = addRequest(args, cfg);
    try {
      if (externalIps.length === 0)
        throw new CniError(CniErrorCode.Internal, "host-local ADD returned no address");
      const reply = await clientOf(cfg.agentSocket, cfg.addTimeoutMs).add(
        { ...req, externalIps },
        { signal: args.signal },
      );
      return {
        ...resultOf(reply, args.cniVersion),
        ...(ipamResult.dns === undefined ? {} : { dns: ipamResult.dns }),
      };
    } catch (e) {
      // Nothing stays allocated by a failed ADD.
      await delegate
        .del(args, facts)
        .catch((d: unknown) =>
          warn(`margay: ADD ${args.containerId}: host-local release after failure: ${(d as Error).message}`),
        );
      throw isCniError(e) ? e : cniError(e, "add");
    }
  }

  /** DEL without the agent: remove the veth (the pod's side goes with it) and spool the release. */
  async function delWithoutAgent(
    args: CmdArgs,
    cfg: MargayPluginConfig,
    req: WorkloadDelRequest,
    why: string,
  ) {
    let name = hostInterfaceOf(args);
    if (name === undefined) {
      try {
        name = await interfaceName(
          {
            namespace: req.namespace ?? "default",
            workload: req.pod ?? req.containerId,
            endpoint: req.ifName,
          },
          cfg.workloadInterfacePrefix,
        );
      } catch (e) {
        warn(`margay: DEL ${args.containerId}: no interface name: ${(e as Error).message}`);
      }
    }
    let veth = "host veth unknown";
    if (name !== undefined) {
      try {
        veth = (await removeLink(name)) ? `host veth ${name} removed` : `host veth ${name} already gone`;
      } catch (e) {
        veth = `host veth ${name} not removed: ${(e as Error).message}`;
      }
    }
    try {
      const file = await spool(cfg.stateDir, req);
      warn(`margay: DEL ${args.containerId}/${args.ifname}: ${why}; ${veth}; release spooled in ${file}`);
    } catch (e) {
      // Nothing more the plugin can do: the node-scoped GC frees the addresses later.
      warn(
        `margay: DEL ${args.containerId}/${args.ifname}: ${why}; ${veth}; spool failed: ${(e as Error).message}`,
      );
    }
  }

  return {
    async add(args) {
      const cfg = parseMargayConfig(args.config);
      if (cfg.hostLocal !== undefined) return addWithHostLocal(args, cfg, cfg.hostLocal);
      const req = addRequest(args, cfg);
      try {
        const reply = await clientOf(cfg.agentSocket, cfg.addTimeoutMs).add(req, { signal: args.signal });
        return resultOf(reply, args.cniVersion);
      } catch (e) {
        throw cniError(e, "add");
      }
    },

    async del(args) {
      // A DEL must not be stopped by configuration it does not need: fall back to the defaults.
      let cfg: MargayPluginConfig;
      try {
        cfg = parseMargayConfig(args.config);
      } catch (e) {
        warn(`margay: DEL ${args.containerId}: configuration: ${(e as Error).message}; using defaults`);
        cfg = parseMargayConfig({ cniVersion: args.cniVersion, name: args.config.name, type: "margay" });
      }
      const req = delRequest(args);
      let agentError: CniError | undefined;
      try {
        await clientOf(cfg.agentSocket, cfg.delTimeoutMs).del(req, { signal: args.signal });
      } catch (e) {
        if (isWorkloadApiError(e, ...AGENT_GONE) || (isWorkloadApiError(e) && e.retryable)) {
          await delWithoutAgent(args, cfg, req, `agent ${e.code}: ${e.message}`);
        } else agentError = cniError(e, "del");
      }
      if (cfg.hostLocal !== undefined) {
        // host-local's reservation goes whatever the agent said (it releases by attachment; without the
        // agent's pod CIDRs a stand-in range does).
        const facts = await ipamFacts(cfg, args.signal).catch(() => undefined);
        await createHostLocalDelegate(cfg.hostLocal).del(args, facts);
      }
      if (agentError !== undefined) throw agentError;
    },

    async check(args) {
      const cfg = parseMargayConfig(args.config);
      if (args.prevResult === undefined)
        throw new CniError(CniErrorCode.InvalidNetworkConfig, "CHECK needs prevResult (the ADD's result)");
      const req = addRequest(args, cfg);
      const fromPrev = (args.prevResult.ips ?? []).map((i) => i.address.slice(0, i.address.lastIndexOf("/")));
      const ips = req.ips ?? fromPrev;
      let reply: Awaited<ReturnType<WorkloadClient["check"]>>;
      try {
        if (cfg.hostLocal !== undefined) {
          const facts = await ipamFacts(cfg, args.signal);
          await createHostLocalDelegate(cfg.hostLocal).check(args, facts);
          const { ips: _asked, pools: _pools, ...rest } = req;
          reply = await clientOf(cfg.agentSocket, cfg.statusTimeoutMs).check(
            { ...rest, externalIps: fromPrev },
            { signal: args.signal },
          );
        } else
          reply = await clientOf(cfg.agentSocket, cfg.statusTimeoutMs).check(
            { ...req, ...(ips.length === 0 ? {} : { ips }) },
            { signal: args.signal },
          );
      } catch (e) {
        throw isCniError(e) ? e : cniError(e, "check");
      }
      const missing = fromPrev.filter((ip) => !reply.ips.includes(ip));
      if (missing.length > 0)
        throw new CniError(
          170,
          `CHECK: prevResult addresses ${missing.join(", ")} not held by the attachment`,
        );
      const host = hostInterfaceOf(args);
      if (host !== undefined && host !== reply.hostInterface)
        throw new CniError(170, `CHECK: prevResult host interface ${host} is not ${reply.hostInterface}`);
    },

    async status(args: StatusArgs) {
      const cfg = parseMargayConfig(args.config);
      let reply: Awaited<ReturnType<WorkloadClient["status"]>>;
      try {
        reply = await clientOf(cfg.agentSocket, cfg.statusTimeoutMs).status({ signal: args.signal });
      } catch (e) {
        throw cniError(e, "status");
      }
      const err = cniStatusError(reply);
      if (err !== undefined)
        throw new CniError(err.code, err.msg, err.details === undefined ? {} : { details: err.details });
    },

    async gc(args: GcArgs) {
      const cfg = parseMargayConfig(args.config);
      try {
        await clientOf(cfg.agentSocket, Math.max(cfg.statusTimeoutMs, 120_000)).gc(
          {
            validAttachments: args.validAttachments.map((a) => ({
              containerId: a.containerID,
              ifName: a.ifname,
            })),
          },
          { signal: args.signal },
        );
      } catch (e) {
        throw cniError(e, "gc");
      }
      if (cfg.hostLocal !== undefined) {
        let facts: Awaited<ReturnType<typeof ipamFacts>>;
        try {
          facts = await ipamFacts(cfg, args.signal);
        } catch (e) {
          throw cniError(e, "gc");
        }
        const released = await createHostLocalDelegate(cfg.hostLocal).gc(
          {
            config: JSON.parse(args.stdin.toString("utf8")) as Record<string, unknown>,
            path: args.path,
            signal: args.signal,
          },
          args.validAttachments,
          facts,
        );
        if (released.length > 0) warn(`margay: GC: host-local released ${released.join(", ")}`);
      }
    },
  };
}

/** The handlers with the real agent client, spool and `ip`. */
export const margayHandlers: PluginHandlers = createMargayHandlers({
  warn: (line) => process.stderr.write(`${line}\n`),
});
