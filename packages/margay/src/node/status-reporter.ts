/**
 * Writes this node's `NodeStatus` resource (Calico's CalicoNodeStatus, written by the agent itself):
 * agent health per component, chosen addresses, MTU, dataplane sync state and BGP sessions with their
 * RFC 4271 state, so `margayctl node status` can read a node's state from anywhere. Written every
 * `statusIntervalMs` and, debounced, whenever a component's health changes.
 *
 * @packageDocumentation
 */
import type {
  BGPPeerType,
  BGPSessionState,
  Logger,
  NodeStatus,
  NodeStatusBGPPeer,
  NodeStatusForeignRule,
  NodeStatusReport,
} from "@margay/api";
import { type Datastore, isDatastoreError } from "@margay/datastore";
import type { BgpPeerStatus } from "./bgp/agent.js";
import type { AgentConfig } from "./config/types.js";
import type { DataplanePipeline, Health, NodeAddresses } from "./context.js";
import type { AgentHealth } from "./health.js";

/** What the reporter reads from the agent's context. */
export interface StatusReporterContext {
  readonly config: Pick<AgentConfig, "nodeName" | "statusIntervalMs">;
  readonly datastore: Datastore;
  readonly logger: Logger;
  /** With `onChange` (an {@link AgentHealth}), health changes trigger a write. */
  readonly health: Health | AgentHealth;
  readonly signal?: AbortSignal | undefined;
}

/** Options of {@link startStatusReporter}. */
export interface StatusReporterOptions {
  /** The BGP part, when the backend is `bgp`. */
  readonly bgp?: { status(): readonly BgpPeerStatus[] } | undefined;
  /** The dataplane pipeline, once started. */
  readonly pipeline?:
    | (Pick<DataplanePipeline, "inSync" | "onRoutes"> & {
        /** The running pipeline's status: its last apply error is shown until an apply succeeds. */
        status?(): {
          readonly lastApplyError: string | undefined;
          /** Remote routes left unprogrammed (the first few are reported). */
          readonly unresolvedRoutes?:
            | readonly { readonly dst: string; readonly reason: string; readonly node?: string | undefined }[]
            | undefined;
          /** Foreign nftables chains that can drop before ours (the first few are reported). */
          readonly foreignRules?: readonly NodeStatusForeignRule[] | undefined;
        };
      })
    | undefined;
  readonly addresses: NodeAddresses;
  /** The workload MTU; a getter is read at each report (the agent's MTU follows the pools). */
  readonly mtu: number | (() => number | undefined) | undefined;
  /** Agent version. */
  readonly version: string;
  /** When the agent started. Default: now. */
  readonly startedAt?: Date | undefined;
  /** Delay that coalesces bursts of health changes into one write, ms. Default 200. */
  readonly debounceMs?: number | undefined;
  /** Clock (tests). Default `() => new Date()`. */
  readonly now?: (() => Date) | undefined;
}

/** The running reporter. */
export interface StatusReporter {
  /** Writes the status now (after any write in flight); resolves when written, never rejects. */
  report(): Promise<void>;
  /** The report that would be written now. */
  build(): NodeStatusReport;
  /** Stops the timer and the subscriptions, and waits for a write in flight. Idempotent. */
  close(): Promise<void>;
}

const STATE: Readonly<Record<BgpPeerStatus["state"], BGPSessionState>> = {
  idle: "Idle",
  connect: "Connect",
  active: "Active",
  "open-sent": "OpenSent",
  "open-confirm": "OpenConfirm",
  established: "Established",
};

const TYPE: Readonly<Record<BgpPeerStatus["type"], BGPPeerType>> = {
  mesh: "NodeMesh",
  global: "GlobalPeer",
  node: "NodePeer",
  // A reflector's client is configured by a BGPPeer selecting this node.
  "rr-client": "NodePeer",
};

/** Unresolved routes NodeStatus lists (the count is always whole): enough to name the cause. */
const UNRESOLVED_SHOWN = 5;

/** One BGP peer as NodeStatus shows it (RFC 4271 state names, Calico's peer types). */
export function nodeStatusPeer(p: BgpPeerStatus): NodeStatusBGPPeer {
  const since = Date.parse(p.since);
  return {
    address: p.address,
    asNumber: p.asNumber,
    type: TYPE[p.type],
    state: STATE[p.state],
    ...(Number.isNaN(since) ? {} : { since: new Date(since).toISOString() }),
    ...(p.lastError === undefined ? {} : { lastError: p.lastError }),
    routesImported: p.routesImported,
    routesExported: p.routesExported,
  };
}

/** Starts writing `NodeStatus <nodeName>`; the first write happens at once. */
export function startStatusReporter(
  ctx: StatusReporterContext,
  options: StatusReporterOptions,
): StatusReporter {
  const now = options.now ?? (() => new Date());
  const startedAt = (options.startedAt ?? now()).toISOString();
  const debounceMs = options.debounceMs ?? 200;
  const node = ctx.config.nodeName;
  const log = ctx.logger;
  let lastApply: string | undefined;
  let closed = false;
  let lastFailure: string | undefined;

  const build = (): NodeStatusReport => {
    const h = ctx.health.snapshot();
    const components = Object.entries(h.components).map(([name, c]) => ({
      name,
      live: c.live,
      ready: c.ready,
      ...(c.reason === undefined ? {} : { reason: c.reason }),
    }));
    const dp = h.components.dataplane;
    const pipeStatus = options.pipeline?.status?.();
    const applyError = pipeStatus?.lastApplyError;
    const unresolved = pipeStatus?.unresolvedRoutes ?? [];
    const foreign = pipeStatus?.foreignRules ?? [];
    const dpOk = (dp === undefined || (dp.live && dp.ready)) && applyError === undefined;
    const lastError = applyError ?? (dp !== undefined && !(dp.live && dp.ready) ? dp.reason : undefined);
    const mtu = typeof options.mtu === "function" ? options.mtu() : options.mtu;
    const report: NodeStatusReport = {
      agent: { version: options.version, startedAt, ready: h.ready, components },
      addresses: {
        ...(options.addresses.ipv4 === undefined ? {} : { ipv4: options.addresses.ipv4 }),
        ...(options.addresses.ipv6 === undefined ? {} : { ipv6: options.addresses.ipv6 }),
        ...(options.addresses.interface === undefined ? {} : { interface: options.addresses.interface }),
      },
      ...(mtu === undefined ? {} : { mtu }),
      dataplane: {
        inSync: (options.pipeline?.inSync ?? false) && dpOk,
        ...(lastApply === undefined ? {} : { lastApply }),
        ...(lastError === undefined ? {} : { lastError }),
        ...(unresolved.length === 0
          ? {}
          : {
              unresolvedRoutes: {
                count: unresolved.length,
                routes: unresolved.slice(0, UNRESOLVED_SHOWN).map((u) => ({
                  dst: u.dst,
                  reason: u.reason,
                  ...(u.node === undefined ? {} : { node: u.node }),
                })),
              },
            }),
        ...(foreign.length === 0
          ? {}
          : {
              foreignRules: {
                count: foreign.length,
                chains: foreign.slice(0, UNRESOLVED_SHOWN).map((f) => ({
                  family: f.family,
                  table: f.table,
                  chain: f.chain,
                  hook: f.hook,
                  priority: f.priority,
                  why: f.why,
                  ...(f.owner === undefined ? {} : { owner: f.owner }),
                })),
              },
            }),
      },
      ...(options.bgp === undefined ? {} : { bgp: { peers: options.bgp.status().map(nodeStatusPeer) } }),
      updatedAt: now().toISOString(),
    };
    return report;
  };

  const write = async (): Promise<void> => {
    const status = build();
    for (let attempt = 0; attempt < 3; attempt++) {
      let current: NodeStatus | undefined;
      try {
        current = await ctx.datastore.get<NodeStatus>({ kind: "NodeStatus", name: node });
      } catch (e) {
        if (!(isDatastoreError(e) && e.code === "not-found")) throw e;
      }
      const object: NodeStatus = {
        apiVersion: "margay.io/v1",
        kind: "NodeStatus",
        metadata: current === undefined ? { name: node } : { ...current.metadata },
        spec: { node },
        status,
      };
      try {
        if (current === undefined) await ctx.datastore.create(object);
        else await ctx.datastore.update(object);
        return;
      } catch (e) {
        // Someone else (an operator's tool) wrote it meanwhile: read again and write ours over it.
        const retry = isDatastoreError(e) && (e.code === "conflict" || e.code === "already-exists");
        if (!retry) throw e;
      }
    }
  };

  // One write at a time; a request during a write schedules exactly one more.
  let inFlight: Promise<void> | undefined;
  let again = false;
  const run = (): Promise<void> => {
    if (inFlight !== undefined) {
      again = true;
      return inFlight;
    }
    inFlight = (async () => {
      do {
        again = false;
        try {
          await write();
          if (lastFailure !== undefined) log.info({}, "node status written again");
          lastFailure = undefined;
        } catch (e) {
          const msg = e instanceof Error ? e.message : String(e);
          // Once per distinct failure: a datastore outage must not flood the log every interval.
          if (msg !== lastFailure) log.warn({ err: e, node }, "cannot write node status");
          lastFailure = msg;
        }
      } while (again && !closed);
    })().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };

  let debounce: NodeJS.Timeout | undefined;
  const soon = () => {
    if (closed || debounce !== undefined) return;
    debounce = setTimeout(() => {
      debounce = undefined;
      void run();
    }, debounceMs);
  };

  const unsubscribers: (() => void)[] = [];
  if ("onChange" in ctx.health) unsubscribers.push(ctx.health.onChange(soon));
  if (options.pipeline !== undefined)
    unsubscribers.push(
      options.pipeline.onRoutes(() => {
        const first = lastApply === undefined;
        lastApply = now().toISOString();
        // The first apply is the in-sync moment: worth a write of its own; later ones ride the interval.
        if (first) soon();
      }),
    );
  const timer = setInterval(() => void run(), ctx.config.statusIntervalMs);
  timer.unref();

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      closed = true;
      clearInterval(timer);
      if (debounce !== undefined) clearTimeout(debounce);
      for (const u of unsubscribers) u();
      await inFlight;
    })();
    return closing;
  };
  ctx.signal?.addEventListener("abort", () => void close(), { once: true });
  void run();

  return {
    report: () => (closed ? Promise.resolve() : run()),
    build,
    close,
  };
}
