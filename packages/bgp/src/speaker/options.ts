/**
 * Options of the speaker and its peers, their documented defaults and validation (every mistake is a
 * {@link BgpConfigError} thrown where the option is given).
 *
 * @packageDocumentation
 */

import { BgpConfigError, invalid } from "../errors/config-error.js";
import type { Policy } from "../rib/policy.js";
import { ipFamily as isIP } from "../wire/ip.js";

/** Structured attributes of one log record (pino's "merging object"). */
export type LogAttributes = Record<string, unknown>;

/** One level's method: attributes first and a constant message, or a message alone (pino's overloads). */
export interface LogFn {
  (attributes: LogAttributes, message?: string): void;
  (message: string): void;
}

/**
 * A structured logger, pino-shaped, the same shape as `@margay/api`'s `Logger` (this package imports
 * nothing of ours, so it declares its own): a pino logger, or a child of one, is passed in as is. The
 * speaker logs constant messages with values in the attributes.
 */
export interface Logger {
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  child(bindings: LogAttributes): Logger;
}

const noop = (): void => {};

/** A logger that drops everything: the speaker's default. */
export const silentLogger: Logger = Object.freeze({
  trace: noop,
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => silentLogger,
});

/** Address families a peer exchanges. */
export type Family = "ipv4" | "ipv6";

/** Max-prefix limit (RFC 4486 Cease subcode 1). */
export interface MaxPrefixOptions {
  /** Accepted prefixes (after import policy) above which the action fires. */
  limit: number;
  /** `teardown` (default): Cease/Maximum Number of Prefixes Reached, then reconnect after the idle hold; `warn`: event and log only. */
  action?: "teardown" | "warn" | undefined;
}

/** One peer. */
export interface PeerOptions {
  /** Peer address (IPv4 or IPv6). */
  address: string;
  /** Peer TCP port (default 179). */
  port?: number | undefined;
  /** The peer's ASN; equal to ours for iBGP. */
  asn: number;
  /** Local address to connect from, and our next hop when it is of the same family (default: the OS's choice). */
  localAddress?: string | undefined;
  /** Never connect out; wait for the peer (default false). */
  passive?: boolean | undefined;
  /** Proposed hold time in seconds: 0 or 3..65535 (default: the speaker's). */
  holdTime?: number | undefined;
  /** ConnectRetry time in seconds (default: the speaker's). */
  connectRetryTime?: number | undefined;
  /** Route-reflector client (RFC 4456; iBGP only). */
  routeReflectorClient?: boolean | undefined;
  /** Advertise ourselves as next hop on iBGP too (default false; eBGP always does). */
  nextHopSelf?: boolean | undefined;
  /** IPv4 next hop to advertise when we are next hop (default: the session's local IPv4 address). */
  nextHop4?: string | undefined;
  /** IPv6 next hop to advertise when we are next hop (default: the session's local IPv6 address). */
  nextHop6?: string | undefined;
  importPolicy?: Policy | undefined;
  exportPolicy?: Policy | undefined;
  /** Families to exchange (default `["ipv4"]`). */
  families?: readonly Family[] | undefined;
  /** Accept ADD-PATH path identifiers from this peer (RFC 7911 receive; default false). */
  addPathReceive?: boolean | undefined;
  /** Act as graceful-restart receiving speaker for this peer (RFC 4724; default true). */
  gracefulRestart?: boolean | undefined;
  /** Restart time advertised to this peer, seconds 0..4095 (default: the speaker's `gracefulRestartTime`). */
  gracefulRestartTime?: number | undefined;
  maxPrefixes?: MaxPrefixOptions | undefined;
  /** Free text for logs and metrics. */
  description?: string | undefined;
}

/** Options of {@link createSpeaker}. */
export interface SpeakerOptions {
  /** Our ASN (1..4294967295). */
  asn: number;
  /** Our BGP identifier (non-zero dotted quad). */
  routerId: string;
  /** Addresses to accept connections on (default none: only outbound sessions). Port 0 picks a free port. */
  listen?: readonly { host: string; port: number }[] | undefined;
  /** Peers to start with (more can be added with {@link Speaker.addPeer}). */
  peers?: readonly PeerOptions[] | undefined;
  /** Default hold time (default 90 s). */
  holdTime?: number | undefined;
  /** Default ConnectRetry time (default 30 s; RFC 4271 suggests 120). */
  connectRetryTime?: number | undefined;
  /** First idle-hold delay after a session error (default 5 s), doubling per flap. */
  idleHoldTime?: number | undefined;
  /** Upper bound of the idle-hold back-off (default 120 s). */
  maxIdleHoldTime?: number | undefined;
  /** Graceful restart: restart time we advertise (default 120 s). */
  gracefulRestartTime?: number | undefined;
  /**
   * Graceful restart, restarting side (RFC 4724 §4.1): advertise every family of each session with the
   * Forwarding State bit, so peers keep our routes (as stale) while we restart, as long as the session
   * ends without a NOTIFICATION (see `close({ graceful: true })`). Only for a speaker whose routes stay
   * installed while it is down. Default false (we only help peers that restart).
   */
  forwardingStatePreserved?: boolean | undefined;
  /** How long stale routes of a restarted peer wait for its End-of-RIB (default 300 s). */
  staleRoutesTime?: number | undefined;
  /** Route-reflector cluster id (default: router id). */
  clusterId?: string | undefined;
  /** Compare MED across neighbouring ASes (default false). */
  alwaysCompareMed?: boolean | undefined;
  /** ECMP: size of the multipath set reported in best-path events (default 1). */
  maxPaths?: number | undefined;
  /** IGP cost of a next hop for the decision process (default: all 0). */
  igpCost?: ((nextHop: string) => number | null | undefined) | undefined;
  /** Advertise RFC 8654 extended messages (default true). */
  extendedMessage?: boolean | undefined;
  /** Structured logger (default: silent). */
  logger?: Logger | undefined;
}

/** A peer with defaults applied. */
export interface NormalizedPeer {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  readonly asn: number;
  readonly localAddress: string | undefined;
  readonly passive: boolean;
  readonly holdTime: number;
  readonly connectRetryTime: number;
  readonly routeReflectorClient: boolean;
  readonly nextHopSelf: boolean;
  readonly nextHop4: string | undefined;
  readonly nextHop6: string | undefined;
  readonly importPolicy: Policy | undefined;
  readonly exportPolicy: Policy | undefined;
  readonly families: readonly Family[];
  readonly addPathReceive: boolean;
  readonly gracefulRestart: boolean;
  readonly gracefulRestartTime: number | undefined;
  readonly maxPrefixes: { limit: number; action: "teardown" | "warn" } | undefined;
  readonly description: string | undefined;
}

/** Speaker-wide defaults. */
export const SPEAKER_DEFAULTS = Object.freeze({
  holdTime: 90,
  connectRetryTime: 30,
  idleHoldTime: 5,
  maxIdleHoldTime: 120,
  gracefulRestartTime: 120,
  staleRoutesTime: 300,
  port: 179,
});

function int(v: unknown, min: number, max: number): boolean {
  return typeof v === "number" && Number.isInteger(v) && v >= min && v <= max;
}

/** Canonical text of an IP address (lower case; IPv4-mapped IPv6 unwrapped). */
export function canonicalAddress(a: string): string {
  const s = a.toLowerCase();
  return s.startsWith("::ffff:") && isIP(s.slice(7)) === 4 ? s.slice(7) : s;
}

/** Identifier of a peer: its address, plus the port when not 179. */
export function peerId(address: string, port: number = SPEAKER_DEFAULTS.port): string {
  const a = canonicalAddress(address);
  return port === SPEAKER_DEFAULTS.port ? a : `${a.includes(":") ? `[${a}]` : a}:${port}`;
}

/** Validates a hold time: 0 or 3..65535 (RFC 4271 §4.2). */
export function checkHoldTime(v: unknown, field: string): number {
  if (!int(v, 0, 65535) || v === 1 || v === 2) throw invalid(field, v, "must be 0 or 3..65535 seconds");
  return v as number;
}

/** Validates the speaker options (peers are validated by {@link normalizePeer}). */
export function checkSpeakerOptions(o: SpeakerOptions): void {
  if (!int(o.asn, 1, 0xffffffff)) throw invalid("asn", o.asn, "must be 1..4294967295");
  if (typeof o.routerId !== "string" || isIP(o.routerId) !== 4 || o.routerId === "0.0.0.0") {
    throw invalid("routerId", o.routerId, "must be a non-zero dotted quad");
  }
  if (o.holdTime !== undefined) checkHoldTime(o.holdTime, "holdTime");
  for (const [k, v] of Object.entries({
    connectRetryTime: o.connectRetryTime,
    idleHoldTime: o.idleHoldTime,
    maxIdleHoldTime: o.maxIdleHoldTime,
    gracefulRestartTime: o.gracefulRestartTime,
    staleRoutesTime: o.staleRoutesTime,
  })) {
    if (v !== undefined && !int(v, 0, k === "gracefulRestartTime" ? 4095 : 86_400)) {
      throw invalid(k, v, "must be a whole number of seconds in range");
    }
  }
  if (o.clusterId !== undefined && isIP(o.clusterId) !== 4)
    throw invalid("clusterId", o.clusterId, "must be a dotted quad");
  if (o.maxPaths !== undefined && !int(o.maxPaths, 1, 256))
    throw invalid("maxPaths", o.maxPaths, "must be 1..256");
  (o.listen ?? []).forEach((l, i) => {
    if (isIP(l.host) === 0) throw invalid(`listen[${i}].host`, l.host, "must be an IP address");
    if (!int(l.port, 0, 65535)) throw invalid(`listen[${i}].port`, l.port, "must be 0..65535");
  });
}

/** Applies defaults to a peer and validates it. */
export function normalizePeer(p: PeerOptions, s: SpeakerOptions, field = "peer"): NormalizedPeer {
  if (typeof p.address !== "string" || isIP(p.address) === 0) {
    throw invalid(`${field}.address`, p.address, "must be an IP address");
  }
  const port = p.port ?? SPEAKER_DEFAULTS.port;
  if (!int(port, 1, 65535)) throw invalid(`${field}.port`, port, "must be 1..65535");
  if (!int(p.asn, 1, 0xffffffff)) throw invalid(`${field}.asn`, p.asn, "must be 1..4294967295");
  if (p.localAddress !== undefined && isIP(p.localAddress) === 0) {
    throw invalid(`${field}.localAddress`, p.localAddress, "must be an IP address");
  }
  if (p.localAddress !== undefined && isIP(p.localAddress) !== isIP(p.address)) {
    throw invalid(`${field}.localAddress`, p.localAddress, "must be of the peer address's family");
  }
  if (p.nextHop4 !== undefined && isIP(p.nextHop4) !== 4)
    throw invalid(`${field}.nextHop4`, p.nextHop4, "must be IPv4");
  if (p.nextHop6 !== undefined && isIP(p.nextHop6) !== 6)
    throw invalid(`${field}.nextHop6`, p.nextHop6, "must be IPv6");
  const holdTime = checkHoldTime(p.holdTime ?? s.holdTime ?? SPEAKER_DEFAULTS.holdTime, `${field}.holdTime`);
  const connectRetryTime = p.connectRetryTime ?? s.connectRetryTime ?? SPEAKER_DEFAULTS.connectRetryTime;
  if (!int(connectRetryTime, 1, 86_400))
    throw invalid(`${field}.connectRetryTime`, connectRetryTime, "must be 1..86400");
  if (p.routeReflectorClient && p.asn !== s.asn) {
    throw invalid(`${field}.routeReflectorClient`, true, "route-reflector clients must be iBGP peers");
  }
  if (p.gracefulRestartTime !== undefined && !int(p.gracefulRestartTime, 0, 4095)) {
    throw invalid(`${field}.gracefulRestartTime`, p.gracefulRestartTime, "must be 0..4095 seconds");
  }
  const families = p.families ?? ["ipv4"];
  if (families.length === 0 || families.some((f) => f !== "ipv4" && f !== "ipv6")) {
    throw invalid(`${field}.families`, families.join(","), 'must be a non-empty list of "ipv4" / "ipv6"');
  }
  let maxPrefixes: NormalizedPeer["maxPrefixes"];
  if (p.maxPrefixes) {
    if (!int(p.maxPrefixes.limit, 1, 0xffffffff)) {
      throw invalid(`${field}.maxPrefixes.limit`, p.maxPrefixes.limit, "must be a positive integer");
    }
    const action = p.maxPrefixes.action ?? "teardown";
    if (action !== "teardown" && action !== "warn")
      throw invalid(`${field}.maxPrefixes.action`, action, "teardown or warn");
    maxPrefixes = { limit: p.maxPrefixes.limit, action };
  }
  return {
    id: peerId(p.address, port),
    address: canonicalAddress(p.address),
    port,
    asn: p.asn,
    localAddress: p.localAddress,
    passive: p.passive ?? false,
    holdTime,
    connectRetryTime,
    routeReflectorClient: p.routeReflectorClient ?? false,
    nextHopSelf: p.nextHopSelf ?? false,
    nextHop4: p.nextHop4,
    nextHop6: p.nextHop6,
    importPolicy: p.importPolicy,
    exportPolicy: p.exportPolicy,
    families: [...new Set(families)],
    addPathReceive: p.addPathReceive ?? false,
    gracefulRestart: p.gracefulRestart ?? true,
    gracefulRestartTime: p.gracefulRestartTime,
    maxPrefixes,
    description: p.description,
  };
}

/** The error for a second peer with the same address and port. */
export function duplicatePeer(id: string): BgpConfigError {
  return new BgpConfigError("config-duplicate-peer", `peer ${id} already exists`, { peer: id });
}

/** The error for an unknown peer. */
export function unknownPeer(id: string): BgpConfigError {
  return new BgpConfigError("config-unknown-peer", `no peer ${id}`, { peer: id });
}
