/**
 * The node agent's BGP part (calico-node's BIRD + confd, in process): follows `Node`, `BGPPeer` and
 * `BGPConfiguration` with its own syncer, keeps one `@margay/bgp` speaker's peers equal to
 * {@link deriveBgpPeers} (peers added and removed one by one; the speaker is only re-created when its
 * own identity changes: AS, router id, listen addresses or cluster id), advertises this node's blocks and
 * borrowed addresses as the dataplane programs them, and feeds the routes it learns into the pipeline.
 *
 * Graceful restart (RFC 4724): the speaker advertises the capability with our restart time and the
 * forwarding-state bit (the kernel keeps our routes while the agent is down); sessions start only once the
 * dataplane is in sync and every export is in the RIB, so the End-of-RIB that follows the initial
 * advertisement at Established closes a complete set; `close({ graceful: true })` ends the sessions
 * without a NOTIFICATION, so helping peers keep our routes until we are back.
 *
 * @packageDocumentation
 */
import type { BGPConfiguration, BGPPeer, Logger, Node } from "@margay/api";
import {
  createSpeaker,
  type PeerOptions,
  type Policy,
  type PeerStatus,
  type Speaker,
  type SpeakerEvent,
} from "@margay/bgp";
import { createSyncer, type Syncer } from "@margay/datastore";
import type { RoutingChange } from "@margay/routing";
import { Counter, Gauge } from "prom-client";
import type { AgentContext, DataplanePipeline, NodeAddresses } from "../context.js";
import {
  type BgpDerivation,
  type DesiredBgpPeer,
  deriveBgpPeers,
  type PrefixAdvertisementRule,
} from "./derive.js";
import { ExportSet, ImportSet } from "./routes.js";
import { cidrContainsCidr, type IpCidr, tryParseCidr } from "@margay/api";
import type { ServiceFeed } from "../kubernetes/service-feed.js";
import { deriveServiceAdvertisement, isServicePrefix } from "./service-advertisement.js";

/** RFC 4271 session states, as the speaker names them. */
export type BgpSessionState = "idle" | "connect" | "active" | "open-sent" | "open-confirm" | "established";

/** One peer as `status()` reports it (read by the NodeStatus reporter and `margayctl node status`). */
export interface BgpPeerStatus {
  /** Speaker peer id: the address, with `:port` when not 179. */
  readonly id: string;
  readonly address: string;
  readonly port: number;
  /** The peer's AS. */
  readonly asNumber: number;
  /** mesh, global or node (`BGPPeer` scope), or rr-client when this node reflects routes to the peer. */
  readonly type: "mesh" | "global" | "node" | "rr-client";
  /** `node-to-node mesh` or `BGPPeer <name>`. */
  readonly source: string;
  /** The node at the other end, when it is one. */
  readonly peerNode: string | undefined;
  readonly state: BgpSessionState;
  /** When the session entered `state` (ISO 8601). */
  readonly since: string;
  /** The last error in operator words (`TCP 179 refused`, `NOTIFICATION received: Cease/...`), if any. */
  readonly lastError: string | undefined;
  /** Prefixes of the peer in our RIB. */
  readonly routesImported: number;
  /** Prefixes advertised to the peer. */
  readonly routesExported: number;
}

/** The running BGP part. */
export interface BgpAgent {
  /** Every configured peer, sorted by id. */
  status(): BgpPeerStatus[];
  /**
   * Stops: the syncer, the pipeline subscription and the speaker. `graceful: true` (SIGTERM) closes the
   * sessions without a NOTIFICATION, so peers keep our routes for our restart time. Idempotent.
   */
  close(options?: { readonly graceful?: boolean }): Promise<void>;
}

/** Options of {@link startBgp}. */
export interface StartBgpOptions {
  readonly pipeline: DataplanePipeline;
  /** This node's chosen addresses: used when its Node resource has no BGP address yet. */
  readonly addresses: NodeAddresses;
  /**
   * Kubernetes mode: Services and EndpointSlices, for the host routes of `externalTrafficPolicy: Local`
   * services. Without it only the BGPConfiguration's service ranges are advertised.
   */
  readonly services?: ServiceFeed | undefined;
}

const KINDS = ["Node", "BGPPeer", "BGPConfiguration"] as const;
const RETRY_MS = 5_000;

interface SpeakerIdentity {
  readonly asn: number;
  readonly routerId: string;
  readonly listen: string;
  readonly clusterId: string | undefined;
}

function identityOf(d: BgpDerivation): SpeakerIdentity {
  return {
    asn: d.localAsNumber,
    routerId: d.routerId,
    listen: d.listenAddresses.map((a) => `${a}|${d.listenPort}`).join(","),
    clusterId: d.routeReflectorClusterId,
  };
}

function sameIdentity(a: SpeakerIdentity, b: SpeakerIdentity): boolean {
  return a.asn === b.asn && a.routerId === b.routerId && a.listen === b.listen && a.clusterId === b.clusterId;
}

function peerOptions(p: DesiredBgpPeer): PeerOptions {
  return {
    address: p.address,
    port: p.port,
    asn: p.asNumber,
    localAddress: p.localAddress,
    passive: p.passive,
    routeReflectorClient: p.routeReflectorClient,
    families: [p.family === 4 ? "ipv4" : "ipv6"],
    gracefulRestart: true,
    gracefulRestartTime: p.gracefulRestartSeconds,
    description: p.source,
  };
}

function samePeer(a: DesiredBgpPeer, b: DesiredBgpPeer): boolean {
  return JSON.stringify(peerOptions(a)) === JSON.stringify(peerOptions(b));
}

/** An operator's reading of a peer's last error. */
export function describePeerError(st: Pick<PeerStatus, "port" | "lastError" | "state">): string | undefined {
  const e = st.lastError;
  if (e === null) return undefined;
  const errno = /\b(E[A-Z]+)\b/.exec(e.detail ?? "")?.[1];
  if (errno === "ECONNREFUSED") return `TCP ${st.port} refused`;
  if (errno !== undefined) return `TCP ${st.port} ${errno}`;
  if (e.code !== undefined) {
    const dir = e.sent ? "sent" : "received";
    return `NOTIFICATION ${dir}: code ${e.code} subcode ${e.subcode ?? 0}${e.detail ? ` (${e.detail})` : ""}`;
  }
  return e.detail ? `${e.reason}: ${e.detail}` : e.reason;
}

function communitiesFor(prefix: string, rules: readonly PrefixAdvertisementRule[]) {
  const c = tryParseCidr(prefix);
  const communities: string[] = [];
  const largeCommunities: string[] = [];
  if (c !== undefined) {
    for (const r of rules) {
      const rc = tryParseCidr(r.cidr);
      if (rc !== undefined && rc.version === c.version && cidrContainsCidr(rc, c)) {
        communities.push(...r.communities);
        largeCommunities.push(...r.largeCommunities);
      }
    }
  }
  return { communities, largeCommunities };
}

/**
 * Starts the BGP part. Returns at once; the speaker starts once the datastore and the dataplane are in
 * sync. Health is reported as component `bgp`; metrics `margay_bgp_*` are registered on `ctx.metrics`.
 */
export function startBgp(ctx: AgentContext, options: StartBgpOptions): BgpAgent {
  return new BgpAgentImpl(ctx, options);
}

class BgpAgentImpl implements BgpAgent {
  readonly #ctx: AgentContext;
  readonly #pipeline: DataplanePipeline;
  readonly #addresses: NodeAddresses;
  readonly #log: Logger;
  readonly #ac = new AbortController();
  readonly #syncer: Syncer;
  readonly #nodes = new Map<string, Node>();
  readonly #peers = new Map<string, BGPPeer>();
  readonly #configs = new Map<string, BGPConfiguration>();
  readonly #exports = new ExportSet();
  readonly #imports = new ImportSet(
    (p) => this.#exports.has(p) || this.#serviceExports.has(p) || isServicePrefix(p, this.#serviceRanges),
  );
  /** Service prefixes this node advertises (ranges, and host routes of local services). */
  #serviceExports = new Set<string>();
  /** Every node's service ranges: learned service routes are not programmed (kube-proxy serves them). */
  #serviceRanges: readonly IpCidr[] = [];
  readonly #serviceFeed: ServiceFeed | undefined;
  readonly #offServices: (() => void) | undefined;
  readonly #warned = new Set<string>();
  readonly #since = new Map<string, { state: string; at: Date }>();
  readonly #metricNames: string[] = [];
  readonly #updates: Counter<"direction">;
  #datastoreSynced = false;
  #pipelineSynced = false;
  #derivation: BgpDerivation | undefined;
  #speaker: Speaker | undefined;
  #identity: SpeakerIdentity | undefined;
  #offSpeaker: (() => void) | undefined;
  #desired = new Map<string, DesiredBgpPeer>();
  #advertised = new Map<string, string>(); // prefix → attribute key
  #startError: string | undefined;
  #retry: NodeJS.Timeout | undefined;
  #queue: Promise<void> = Promise.resolve();
  #pendingLearned: RoutingChange[] = [];
  #closing: Promise<void> | undefined;
  readonly #offRoutes: () => void;
  /** The agent stops (SIGTERM): a graceful restart for our peers. */
  readonly #onAbort = () => void this.close({ graceful: true });

  constructor(ctx: AgentContext, o: StartBgpOptions) {
    this.#ctx = ctx;
    this.#pipeline = o.pipeline;
    this.#addresses = o.addresses;
    this.#serviceFeed = o.services;
    this.#log = ctx.logger.child({ component: "bgp" });
    this.#updates = this.#registerMetrics();
    this.#report();
    this.#syncer = createSyncer({
      datastore: ctx.datastore,
      kinds: KINDS,
      logger: this.#log,
      signal: this.#ac.signal,
    });
    void this.#follow();
    // Each call is only a trigger: the programmed set is read whole, because a resync batch hands
    // listeners the full set without the removals it implies. Only local routes are parsed.
    this.#offRoutes = this.#pipeline.onRoutes(() => {
      this.#enqueue(async () => {
        this.#applyExports(this.#exports.reset(this.#pipeline.routes().values()));
        if (!this.#pipelineSynced && this.#pipeline.inSync) {
          this.#pipelineSynced = true;
          await this.#reconcile();
        }
      });
    });
    if (this.#pipeline.inSync) {
      this.#enqueue(async () => {
        this.#applyExports(this.#exports.reset(this.#pipeline.routes().values()));
        this.#pipelineSynced = true;
        await this.#reconcile();
      });
    }
    this.#offServices = this.#serviceFeed?.onChange(() =>
      this.#enqueue(() => {
        if (this.#datastoreSynced) this.#applyServices();
      }),
    );
    if (ctx.signal.aborted) void this.close({ graceful: true });
    else ctx.signal.addEventListener("abort", this.#onAbort, { once: true });
  }

  // ---- event loop ------------------------------------------------------------------------------

  /** One serialized loop: syncer batches, dataplane routes, speaker events and timers never interleave. */
  #enqueue(task: () => void | Promise<void>): void {
    this.#queue = this.#queue.then(async () => {
      if (this.#closing !== undefined) return;
      try {
        await task();
      } catch (e) {
        this.#log.error({ err: e }, "bgp task failed");
      }
    });
  }

  async #follow(): Promise<void> {
    try {
      for await (const batch of this.#syncer) {
        let synced = false;
        for (const ev of batch) {
          if (ev.type === "in-sync") {
            synced = true;
            continue;
          }
          const map = ev.kind === "Node" ? this.#nodes : ev.kind === "BGPPeer" ? this.#peers : this.#configs;
          if (ev.type === "upsert") (map as Map<string, unknown>).set(ev.key.name, ev.object);
          else map.delete(ev.key.name);
        }
        this.#enqueue(async () => {
          if (synced) this.#datastoreSynced = true;
          if (this.#datastoreSynced) await this.#reconcile();
        });
      }
    } catch (e) {
      if (this.#closing !== undefined) return;
      this.#log.error({ err: e }, "bgp syncer stopped");
      this.#startError = `datastore syncer stopped: ${e instanceof Error ? e.message : String(e)}`;
      this.#report();
    }
  }

  // ---- reconciliation --------------------------------------------------------------------------

  #nodesWithSelf(): Node[] {
    const c = this.#ctx.config;
    const self = this.#nodes.get(c.nodeName);
    const bgp = { ...(self?.spec?.bgp ?? {}) };
    // Registration may not have written our addresses yet: fall back to the chosen ones.
    if (bgp.ipv4Address === undefined && this.#addresses.ipv4 !== undefined)
      bgp.ipv4Address = this.#addresses.ipv4;
    if (bgp.ipv6Address === undefined && this.#addresses.ipv6 !== undefined)
      bgp.ipv6Address = this.#addresses.ipv6;
    if (bgp.asNumber === undefined && c.asNumber !== undefined) bgp.asNumber = c.asNumber;
    const patched: Node = {
      apiVersion: "margay.io/v1",
      kind: "Node",
      ...self,
      metadata: self?.metadata ?? { name: c.nodeName },
      spec: { ...(self?.spec ?? {}), bgp },
    };
    return [...[...this.#nodes.values()].filter((n) => n.metadata.name !== c.nodeName), patched];
  }

  async #reconcile(): Promise<void> {
    if (this.#closing !== undefined || !this.#datastoreSynced) return this.#report();
    const d = deriveBgpPeers({
      nodeName: this.#ctx.config.nodeName,
      nodes: this.#nodesWithSelf(),
      configurations: [...this.#configs.values()],
      peers: [...this.#peers.values()],
      defaultRestartSeconds: this.#ctx.config.bgpGracefulRestartSeconds,
    });
    const rulesChanged =
      JSON.stringify(d.prefixAdvertisements) !== JSON.stringify(this.#derivation?.prefixAdvertisements ?? []);
    this.#derivation = d;
    for (const u of d.unsupported) {
      const key = `${u.resource}|${u.field}|${u.message}`;
      if (this.#warned.has(key)) continue;
      this.#warned.add(key);
      this.#log.warn({ resource: u.resource, field: u.field, reason: u.message }, "bgp field not honoured");
    }
    for (const s of d.skipped) {
      if (this.#warned.has(s)) continue;
      this.#warned.add(s);
      this.#log.warn({ reason: s }, "bgp peering skipped");
    }
    this.#applyServices();
    if (!this.#pipelineSynced) return this.#report();
    const identity = identityOf(d);
    if (this.#speaker !== undefined && (!d.enabled || !sameIdentity(identity, this.#identity!))) {
      // A new identity is a restart: peers keep our routes until we are back. A node that no longer runs
      // BGP withdraws them (Cease).
      this.#log.info(
        { ...identity, enabled: d.enabled },
        "bgp speaker identity changed; restarting the speaker",
      );
      await this.#stopSpeaker(d.enabled);
    }
    if (!d.enabled) return this.#report();
    if (this.#speaker === undefined && !(await this.#startSpeaker(d, identity))) return this.#report();
    if (rulesChanged) this.#reoriginateAll();
    await this.#syncPeers(d);
    this.#report();
  }

  async #startSpeaker(d: BgpDerivation, identity: SpeakerIdentity): Promise<boolean> {
    try {
      const speaker = await createSpeaker({
        asn: d.localAsNumber,
        routerId: d.routerId,
        listen: d.listenAddresses.map((host) => ({ host, port: d.listenPort })),
        // Calico's BIRD template timers: connect retry time 5; error wait time 5,30.
        connectRetryTime: 5,
        idleHoldTime: 5,
        maxIdleHoldTime: 30,
        gracefulRestartTime: this.#ctx.config.bgpGracefulRestartSeconds,
        forwardingStatePreserved: true,
        clusterId: d.routeReflectorClusterId,
        logger: this.#log,
      });
      if (this.#closing !== undefined) {
        await speaker.close({ graceful: true });
        return false;
      }
      this.#speaker = speaker;
      this.#identity = identity;
      this.#startError = undefined;
      this.#offSpeaker = speaker.on((e) => this.#onSpeakerEvent(e));
      this.#advertised.clear();
      // Every export goes into the RIB before any session starts: the first advertisement at Established
      // is complete, and the End-of-RIB after it tells helpers that restarted us that nothing is missing.
      for (const p of this.#advertisable()) this.#originate(p);
      this.#log.info(
        {
          asn: d.localAsNumber,
          routerId: d.routerId,
          listen: speaker.listening,
          exports: this.#exports.size,
        },
        "bgp speaker started",
      );
      return true;
    } catch (e) {
      this.#startError = e instanceof Error ? e.message : String(e);
      this.#log.error({ err: e }, "bgp speaker failed to start");
      clearTimeout(this.#retry);
      this.#retry = setTimeout(() => this.#enqueue(() => this.#reconcile()), RETRY_MS);
      this.#retry.unref?.();
      return false;
    }
  }

  async #stopSpeaker(graceful: boolean): Promise<void> {
    const s = this.#speaker;
    if (s === undefined) return;
    this.#offSpeaker?.();
    this.#speaker = undefined;
    this.#identity = undefined;
    this.#desired = new Map();
    this.#advertised.clear();
    this.#learned(this.#imports.clear());
    await s.close({ graceful });
  }

  async #syncPeers(d: BgpDerivation): Promise<void> {
    const speaker = this.#speaker!;
    const next = new Map(d.peers.map((p) => [p.id, p]));
    for (const [id, old] of this.#desired) {
      if (next.has(id)) continue;
      this.#log.info({ peer: id, source: old.source }, "bgp peer removed");
      this.#desired.delete(id);
      this.#since.delete(id);
      await speaker.removePeer(old.address, old.port);
    }
    for (const [id, p] of next) {
      const old = this.#desired.get(id);
      if (old === undefined) {
        try {
          speaker.addPeer({ ...peerOptions(p), ...this.#serviceImport() });
        } catch (e) {
          this.#log.error({ peer: id, err: e }, "bgp peer rejected by the speaker");
          continue;
        }
        this.#since.set(id, { state: "idle", at: new Date() });
        this.#log.info({ peer: id, asn: p.asNumber, source: p.source, passive: p.passive }, "bgp peer added");
      } else if (!samePeer(old, p)) {
        const { address: _a, port: _p, ...changes } = { ...peerOptions(p), ...this.#serviceImport() };
        speaker.updatePeer(p.address, changes, p.port);
        this.#log.info({ peer: id, source: p.source }, "bgp peer changed");
      }
      this.#desired.set(id, p);
    }
  }

  // ---- exports and imports ---------------------------------------------------------------------

  #originate(prefix: string): void {
    const rules = this.#derivation?.prefixAdvertisements ?? [];
    const attrs = communitiesFor(prefix, rules);
    const key = JSON.stringify(attrs);
    if (this.#advertised.get(prefix) === key) return;
    this.#speaker!.originate(prefix, attrs);
    this.#advertised.set(prefix, key);
    this.#updates.inc({ direction: "export" });
  }

  #reoriginateAll(): void {
    if (this.#speaker === undefined) return;
    for (const p of this.#advertisable()) this.#originate(p);
  }

  /** Everything this node advertises: its blocks and borrowed addresses, and its service prefixes. */
  #advertisable(): string[] {
    return [...new Set([...this.#exports.prefixes(), ...this.#serviceExports])].sort();
  }

  /**
   * The import policy of every peer: routes inside the service ranges are not taken from peers. This
   * node neither programs them (kube-proxy serves service addresses) nor passes another node's on to its
   * external peers, which would attract traffic of an `externalTrafficPolicy: Local` service to nodes
   * without an endpoint.
   */
  #serviceImport(): { importPolicy?: Policy } {
    if (this.#serviceRanges.length === 0) return {};
    return {
      importPolicy: {
        statements: [
          {
            match: {
              prefixes: this.#serviceRanges.map((r) => ({
                prefix: r.text,
                ge: r.prefixLength,
                le: r.version === 4 ? 32 : 128,
              })),
            },
            actions: { reject: true },
          },
        ],
      },
    };
  }

  /** Recomputes the service prefixes (BGPConfiguration ranges; local services' host routes). */
  #applyServices(): void {
    const feed = this.#serviceFeed;
    const adv = deriveServiceAdvertisement({
      nodeName: this.#ctx.config.nodeName,
      configurations: [...this.#configs.values()],
      // Until both informers have listed, a missing endpoint would withdraw a live host route.
      ...(feed?.synced === true ? { services: feed.services(), endpointSlices: feed.endpointSlices() } : {}),
    });
    for (const bad of adv.invalid) {
      const key = `service-range|${bad.field}|${bad.cidr}`;
      if (this.#warned.has(key)) continue;
      this.#warned.add(key);
      this.#log.warn({ field: bad.field, cidr: bad.cidr }, "bgp service range is not a CIDR; ignored");
    }
    const next = new Set(adv.prefixes.map((p) => p.prefix));
    const before = this.#serviceExports;
    const rangesChanged =
      JSON.stringify(adv.ranges.map((r) => r.text)) !==
      JSON.stringify(this.#serviceRanges.map((r) => r.text));
    this.#serviceExports = next;
    this.#serviceRanges = adv.ranges;
    const changed: string[] = [];
    for (const p of before) {
      if (next.has(p)) continue;
      changed.push(p);
      if (this.#speaker !== undefined && !this.#exports.has(p)) {
        this.#speaker.withdraw(p);
        this.#advertised.delete(p);
        this.#updates.inc({ direction: "export" });
      }
    }
    for (const p of next) {
      if (before.has(p)) continue;
      changed.push(p);
      if (this.#speaker !== undefined) this.#originate(p);
    }
    if (changed.length > 0) {
      this.#log.info(
        { advertised: [...next].sort(), changed: changed.sort() },
        "bgp service prefixes changed",
      );
    }
    if (rangesChanged) {
      const speaker = this.#speaker;
      if (speaker !== undefined) {
        const importPolicy = this.#serviceImport().importPolicy ?? { statements: [] };
        for (const p of this.#desired.values()) speaker.updatePeer(p.address, { importPolicy }, p.port);
      }
      this.#learned(this.#imports.reconcileAll());
    } else {
      const changes: RoutingChange[] = [];
      for (const p of changed) changes.push(...this.#imports.reconcile(p));
      this.#learned(changes);
    }
  }

  #applyExports(diff: { originate: readonly string[]; withdraw: readonly string[] }): void {
    if (this.#speaker !== undefined) {
      for (const p of diff.withdraw) {
        // Still one of our service prefixes: keep advertising it.
        if (this.#serviceExports.has(p)) continue;
        this.#speaker.withdraw(p);
        this.#advertised.delete(p);
        this.#updates.inc({ direction: "export" });
      }
      for (const p of diff.originate) this.#originate(p);
    }
    // A prefix that became (or stopped being) ours changes what we import of it.
    const changes: RoutingChange[] = [];
    for (const p of [...diff.originate, ...diff.withdraw]) changes.push(...this.#imports.reconcile(p));
    this.#learned(changes);
  }

  #onSpeakerEvent(e: SpeakerEvent): void {
    if (e.type === "best-path") {
      this.#learned(this.#imports.onBestPath(e));
    } else if (e.type === "peer-state") {
      this.#since.set(e.peer, { state: e.state, at: new Date() });
      if (e.state === "established" || e.previous === "established") {
        this.#log.info({ peer: e.peer, state: e.state, reason: e.reason }, "bgp session state");
      }
      this.#report();
    } else if (e.type === "max-prefix") {
      this.#log.warn({ peer: e.peer, limit: e.limit, accepted: e.accepted }, "bgp max prefixes reached");
    }
  }

  /** Batches learned changes of one turn of the event loop into one pipeline call. */
  #learned(changes: readonly RoutingChange[]): void {
    if (changes.length === 0) return;
    const first = this.#pendingLearned.length === 0;
    this.#pendingLearned.push(...changes);
    this.#updates.inc({ direction: "import" }, changes.length);
    if (!first) return;
    queueMicrotask(() => {
      const batch = this.#pendingLearned;
      this.#pendingLearned = [];
      if (batch.length === 0 || this.#closing !== undefined) return;
      try {
        this.#pipeline.learned(batch);
      } catch (err) {
        this.#log.error({ err }, "bgp learned routes rejected by the pipeline");
      }
    });
  }

  // ---- health, metrics, status -----------------------------------------------------------------

  #report(): void {
    if (this.#closing !== undefined) return;
    const h = this.#ctx.health;
    if (this.#startError !== undefined) {
      h.report("bgp", { live: true, ready: false, reason: `BGP speaker not running: ${this.#startError}` });
      return;
    }
    if (!this.#datastoreSynced) {
      h.report("bgp", {
        live: true,
        ready: false,
        reason: "waiting for the datastore (Node, BGPPeer, BGPConfiguration)",
      });
      return;
    }
    const d = this.#derivation;
    if (d !== undefined && !d.enabled) {
      h.report("bgp", {
        live: true,
        ready: true,
        reason: `BGP off for this node: ${d.skipped[0] ?? "disabled"}`,
      });
      return;
    }
    if (!this.#pipelineSynced || this.#speaker === undefined) {
      h.report("bgp", {
        live: true,
        ready: false,
        reason: "waiting for the dataplane to be in sync before advertising routes",
      });
      return;
    }
    const peers = this.#speaker.peers();
    if (peers.length === 0) {
      h.report("bgp", { live: true, ready: true });
      return;
    }
    const down = peers.filter((p) => p.state !== "established");
    const ready = this.#ctx.config.readinessRequiresAllBgpPeers
      ? down.length === 0
      : down.length < peers.length;
    const reason =
      down.length === 0
        ? undefined
        : down
            .map((p) => `BGP peer ${p.address}: ${describePeerError(p) ?? `session ${p.state}`}`)
            .join("; ");
    h.report("bgp", reason === undefined ? { live: true, ready } : { live: true, ready, reason });
  }

  #registerMetrics(): Counter<"direction"> {
    const reg = this.#ctx.metrics;
    const perPeer = this.#ctx.config.metrics.perPeerLabels;
    const own = <T>(name: string, make: () => T): T => {
      reg.removeSingleMetric(name);
      this.#metricNames.push(name);
      return make();
    };
    const states = ["idle", "connect", "active", "open-sent", "open-confirm", "established"];
    const agent = this;
    own(
      "margay_bgp_sessions",
      () =>
        new Gauge({
          name: "margay_bgp_sessions",
          help: "BGP sessions by RFC 4271 state (per peer with metrics.perPeerLabels)",
          labelNames: perPeer ? ["state", "peer"] : ["state"],
          registers: [reg],
          collect() {
            this.reset();
            const peers = agent.#speaker?.peers() ?? [];
            if (perPeer) {
              for (const p of peers) this.set({ state: p.state, peer: p.id }, 1);
              return;
            }
            for (const s of states) this.set({ state: s }, peers.filter((p) => p.state === s).length);
          },
        }),
    );
    own(
      "margay_bgp_routes_exported",
      () =>
        new Gauge({
          name: "margay_bgp_routes_exported",
          help: "Prefixes this node advertises (its blocks, borrowed addresses and service prefixes)",
          registers: [reg],
          collect() {
            this.set(agent.#speaker === undefined ? 0 : agent.#advertisable().length);
          },
        }),
    );
    own(
      "margay_bgp_routes_imported",
      () =>
        new Gauge({
          name: "margay_bgp_routes_imported",
          help: "Prefixes learned over BGP and fed to the route calculator (per peer with metrics.perPeerLabels)",
          labelNames: perPeer ? ["peer"] : [],
          registers: [reg],
          collect() {
            this.reset();
            if (!perPeer) {
              this.set(agent.#imports.size);
              return;
            }
            for (const [peer, n] of agent.#imports.countBySource()) this.set({ peer }, n);
          },
        }),
    );
    return own(
      "margay_bgp_route_updates_total",
      () =>
        new Counter({
          name: "margay_bgp_route_updates_total",
          help: "Route changes: export (originate/withdraw) and import (learned changes fed to the pipeline)",
          labelNames: ["direction"],
          registers: [reg],
        }),
    );
  }

  status(): BgpPeerStatus[] {
    const speaker = this.#speaker;
    if (speaker === undefined) return [];
    const byId = new Map(speaker.peers().map((p) => [p.id, p]));
    const out: BgpPeerStatus[] = [];
    for (const [id, p] of this.#desired) {
      const st = byId.get(id);
      if (st === undefined) continue;
      const since = this.#since.get(id);
      out.push({
        id,
        address: p.address,
        port: p.port,
        asNumber: p.asNumber,
        type: p.routeReflectorClient ? "rr-client" : p.scope,
        source: p.source,
        peerNode: p.peerNode,
        state: st.state,
        since: (since?.at ?? new Date()).toISOString(),
        lastError: describePeerError(st),
        routesImported: st.prefixesAccepted,
        routesExported: st.prefixesAdvertised,
      });
    }
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  close(options: { readonly graceful?: boolean } = {}): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    const graceful = options.graceful ?? false;
    this.#closing = (async () => {
      clearTimeout(this.#retry);
      this.#ctx.signal.removeEventListener("abort", this.#onAbort);
      this.#offRoutes();
      this.#offServices?.();
      this.#ac.abort();
      await this.#syncer.close();
      await this.#queue;
      const s = this.#speaker;
      this.#offSpeaker?.();
      this.#speaker = undefined;
      this.#pendingLearned = [];
      if (s !== undefined) await s.close({ graceful });
      for (const name of this.#metricNames) this.#ctx.metrics.removeSingleMetric(name);
      this.#ctx.health.remove("bgp");
      this.#log.info({ graceful }, "bgp stopped");
    })();
    return this.#closing;
  }
}
