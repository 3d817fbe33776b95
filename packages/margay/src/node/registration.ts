/**
 * Node registration (calico-node's startup): the agent's `Node` resource (addresses, BGP identity, VXLAN
 * tunnel address and MAC) and the cluster's default pools. Every write is a compare-and-swap retried on
 * conflict, so several agents (or an operator editing labels) can write at the same time without losing
 * each other's changes; fields the agent does not own (labels, annotations, orchRefs, other address
 * types, the route-reflector cluster id) are kept as they are.
 *
 * @packageDocumentation
 */
import { createHash } from "node:crypto";
import {
  backoffDelay,
  cidrContains,
  cidrsOverlap,
  type IPPool,
  type Logger,
  type Node,
  type NodeAddress,
  type NodeSpec,
  sleep,
  tryParseCidr,
  tryParseIp,
} from "@margay/api";
import { type Datastore, isDatastoreError } from "@margay/datastore";
import { type Ipam, isIpamError } from "@margay/ipam";
import { AgentError, AgentErrorCode, errorCode, messageOf } from "./agent-error.js";
import type { AgentConfig } from "./config/types.js";
import type { Health, NodeAddresses } from "./context.js";

/** What registration reads from the agent's context. */
export interface RegistrationContext {
  readonly config: Pick<AgentConfig, "nodeName" | "asNumber" | "networkingBackend" | "defaultPools">;
  readonly datastore: Datastore;
  readonly logger: Logger;
  readonly signal?: AbortSignal | undefined;
  /** When given, address conflicts are reported under the `registration` component (still ready). */
  readonly health?: Health | undefined;
}

/** Another node claiming one of this node's addresses. */
export interface AddressConflict {
  /** The address (without prefix length). */
  readonly address: string;
  /** The other node. */
  readonly node: string;
}

/** The VXLAN tunnel identity of one family. */
export interface VxlanTunnel {
  /** The tunnel device's address (from IPAM, handle `vxlan-tunnel-addr-<node>`). */
  readonly address: string;
  /** The tunnel device's MAC (derived from the node name). */
  readonly mac: string;
}

/** Result of {@link registerNode}. */
export interface RegistrationResult {
  /** The Node as stored. */
  readonly node: Node;
  /** VXLAN tunnel identities, when a pool uses VXLAN or the backend is `vxlan`. */
  readonly vxlan: { readonly ipv4: VxlanTunnel | undefined; readonly ipv6: VxlanTunnel | undefined };
  /** Other nodes claiming one of this node's addresses (logged as warnings). */
  readonly conflicts: readonly AddressConflict[];
}

/** Options of {@link registerNode}. */
export interface RegisterNodeOptions {
  /** IPAM client for tunnel addresses; required when VXLAN is in use. */
  readonly ipam?: Ipam | undefined;
  /** Attempts of one compare-and-swap write before giving up. Default 20. */
  readonly maxAttempts?: number | undefined;
}

/** IPAM handle of a node's IPv4 VXLAN tunnel address (Calico's name). */
export function vxlanTunnelHandle(node: string, family: 4 | 6): string {
  return family === 4 ? `vxlan-tunnel-addr-${node}` : `vxlan-v6-tunnel-addr-${node}`;
}

/**
 * The VXLAN tunnel device's MAC of a node: stable across restarts and hosts (derived from the node name
 * and family), locally administered (bit 1 of the first octet) and unicast (bit 0 clear), so it never
 * collides with a vendor-assigned MAC.
 */
export function vxlanTunnelMac(node: string, family: 4 | 6): string {
  const h = createHash("sha256").update(`margay/vxlan/v${family}/${node}`).digest();
  h[0] = ((h[0] as number) & 0xfe) | 0x02;
  return [...h.subarray(0, 6)].map((b) => b.toString(16).padStart(2, "0")).join(":");
}

const API = "margay.io/v1" as const;
const REG = "registration";

function family(cidrOrIp: string): 4 | 6 | undefined {
  return tryParseCidr(cidrOrIp)?.version ?? tryParseIp(cidrOrIp)?.version;
}

function bareIp(addressWithPrefix: string): string {
  const ip = addressWithPrefix.split("/")[0] as string;
  return tryParseIp(ip)?.text ?? ip;
}

function optionalSignal(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal === undefined ? {} : { signal };
}

/**
 * Read-modify-write of one object under compare-and-swap: `edit` gets the stored object (or undefined)
 * and returns the desired one, or undefined to leave it alone. Retries on `conflict` and on a create
 * that lost the race (`already-exists`).
 */
async function casWrite<T extends { kind: string; metadata: { name: string; resourceVersion?: string } }>(
  ds: Datastore,
  key: { kind: string; name: string },
  edit: (current: T | undefined) => T | undefined,
  options: { maxAttempts: number; signal?: AbortSignal | undefined },
): Promise<T | undefined> {
  for (let attempt = 0; ; attempt++) {
    let current: T | undefined;
    try {
      current = await ds.get<T>(key, optionalSignal(options.signal));
    } catch (e) {
      if (!(isDatastoreError(e) && e.code === "not-found")) throw e;
    }
    const next = edit(current);
    if (next === undefined) return current;
    try {
      if (current === undefined) return await ds.create(next, optionalSignal(options.signal));
      const meta = { ...next.metadata, resourceVersion: current.metadata.resourceVersion };
      return await ds.update({ ...next, metadata: meta }, optionalSignal(options.signal));
    } catch (e) {
      const lost = isDatastoreError(e) && (e.code === "conflict" || e.code === "already-exists");
      if (!lost || attempt + 1 >= options.maxAttempts) throw e;
      await sleep(backoffDelay(attempt, { initialMs: 5, maxMs: 500 }), options.signal);
    }
  }
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The Node spec with this agent's fields applied over what is stored (other fields kept). */
function desiredSpec(
  stored: NodeSpec,
  config: RegistrationContext["config"],
  addresses: NodeAddresses,
  vxlan: RegistrationResult["vxlan"] | undefined,
): NodeSpec {
  const spec: NodeSpec = structuredClone(stored);
  const ours: NodeAddress[] = [];
  for (const a of [addresses.ipv4, addresses.ipv6]) {
    if (a !== undefined) ours.push({ address: a, type: "CalicoNodeIP" });
  }
  const others = (spec.addresses ?? []).filter((a) => a.type !== "CalicoNodeIP");
  if (ours.length + others.length > 0) spec.addresses = [...ours, ...others];
  else delete spec.addresses;

  const bgp = { ...(spec.bgp ?? {}) };
  if (addresses.ipv4 !== undefined) bgp.ipv4Address = addresses.ipv4;
  else delete bgp.ipv4Address;
  if (addresses.ipv6 !== undefined) bgp.ipv6Address = addresses.ipv6;
  else delete bgp.ipv6Address;
  // Unset AS: the cluster default applies; an AS an operator wrote on the Node stays.
  if (config.asNumber !== undefined) bgp.asNumber = config.asNumber;
  if (Object.keys(bgp).length > 0) spec.bgp = bgp;
  else delete spec.bgp;

  if (vxlan !== undefined) {
    if (vxlan.ipv4 !== undefined) {
      spec.ipv4VXLANTunnelAddr = vxlan.ipv4.address;
      spec.vxlanTunnelMACAddr = vxlan.ipv4.mac;
    } else {
      delete spec.ipv4VXLANTunnelAddr;
      delete spec.vxlanTunnelMACAddr;
    }
    if (vxlan.ipv6 !== undefined) {
      spec.ipv6VXLANTunnelAddr = vxlan.ipv6.address;
      spec.vxlanTunnelMACAddrV6 = vxlan.ipv6.mac;
    } else {
      delete spec.ipv6VXLANTunnelAddr;
      delete spec.vxlanTunnelMACAddrV6;
    }
  }
  return spec;
}

/** Pools a family's VXLAN tunnel address may come from (Calico: enabled pools with VXLAN on). */
function tunnelPools(pools: readonly IPPool[], fam: 4 | 6, backend: string): IPPool[] {
  const usable = pools.filter(
    (p) =>
      family(p.spec.cidr) === fam &&
      p.spec.disabled !== true &&
      (p.spec.allowedUses === undefined || p.spec.allowedUses.includes("Tunnel")),
  );
  const vxlan = usable.filter((p) => p.spec.vxlanMode !== undefined && p.spec.vxlanMode !== "Never");
  // Backend vxlan with no pool marked VXLAN: every pool's traffic is encapsulated, any pool will do.
  return vxlan.length > 0 || backend !== "vxlan" ? vxlan : usable;
}

async function ensureTunnelAddress(
  ctx: RegistrationContext,
  ipam: Ipam,
  pools: readonly IPPool[],
  fam: 4 | 6,
): Promise<VxlanTunnel | undefined> {
  const node = ctx.config.nodeName;
  const handleId = vxlanTunnelHandle(node, fam);
  const eligible = tunnelPools(pools, fam, ctx.config.networkingBackend);
  const sig = optionalSignal(ctx.signal);
  const held = (await ipam.ipsByHandle(handleId, sig)).filter((ip) => family(ip) === fam);
  const inEligible = (ip: string) =>
    eligible.some((p) => {
      const c = tryParseCidr(p.spec.cidr);
      const a = tryParseIp(ip);
      return c !== undefined && a !== undefined && cidrContains(c, a);
    });
  const keep = held.find(inEligible);
  if (keep !== undefined && held.length === 1) return { address: keep, mac: vxlanTunnelMac(node, fam) };
  if (held.length > 0) {
    // Left over from a pool that no longer allows tunnels (or a duplicate): start again from scratch.
    ctx.logger.info({ handleId, held }, "releasing stale VXLAN tunnel address");
    await ipam.releaseByHandle(handleId, sig);
  }
  if (eligible.length === 0) return undefined;
  try {
    const got = await ipam.autoAssign({
      handleId,
      node,
      num4: fam === 4 ? 1 : 0,
      num6: fam === 6 ? 1 : 0,
      attrs: { node, type: fam === 4 ? "vxlanTunnelAddress" : "vxlanV6TunnelAddress" },
      pools: eligible.map((p) => p.metadata.name),
      use: "Tunnel",
      ...sig,
    });
    const a = (fam === 4 ? got.ipv4 : got.ipv6)[0];
    if (a === undefined) return undefined;
    ctx.logger.info({ address: a.ip, pool: a.pool, handleId }, "allocated VXLAN tunnel address");
    return { address: a.ip, mac: vxlanTunnelMac(node, fam) };
  } catch (e) {
    // No pool selects this node: no tunnel of that family (a warning), not a failed start.
    if (isIpamError(e) && e.code === "no-pools") {
      ctx.logger.warn(
        { family: fam, pools: eligible.map((p) => p.metadata.name) },
        "no VXLAN pool selects this node",
      );
      return undefined;
    }
    throw new AgentError(
      AgentErrorCode.TunnelAddress,
      `cannot allocate the IPv${fam} VXLAN tunnel address of node ${node}: ${messageOf(e)}`,
      { step: REG, node, handleId, causeCode: errorCode(e) },
      { cause: e },
    );
  }
}

function findConflicts(node: string, addresses: NodeAddresses, others: readonly Node[]): AddressConflict[] {
  const mine = new Set(
    [addresses.ipv4, addresses.ipv6].filter((a): a is string => a !== undefined).map(bareIp),
  );
  const out: AddressConflict[] = [];
  for (const n of others) {
    if (n.metadata.name === node) continue;
    const theirs = new Set<string>();
    for (const a of [
      n.spec.bgp?.ipv4Address,
      n.spec.bgp?.ipv6Address,
      ...(n.spec.addresses ?? []).map((x) => x.address),
    ])
      if (a !== undefined) theirs.add(bareIp(a));
    for (const ip of mine) if (theirs.has(ip)) out.push({ address: ip, node: n.metadata.name });
  }
  return out;
}

function wrap(e: unknown, node: string, what: string): never {
  if (e instanceof AgentError) throw e;
  throw new AgentError(
    AgentErrorCode.Registration,
    `cannot register node ${node}: ${what}: ${messageOf(e)}`,
    { step: REG, node, causeCode: errorCode(e) },
    { cause: e },
  );
}

/**
 * Creates or updates this node's `Node` resource: `spec.addresses` (type `CalicoNodeIP`),
 * `spec.bgp.ipv4Address`/`ipv6Address` (with prefix lengths) and `asNumber` when configured, and, when a
 * pool uses VXLAN or the backend is `vxlan`, the VXLAN tunnel address (IPAM handle
 * `vxlan-tunnel-addr-<node>`, so a restart finds the same one) and MAC. Warns when another node claims
 * one of its addresses. Failures are `AgentError` `registration-failed` / `tunnel-address-failed`.
 */
export async function registerNode(
  ctx: RegistrationContext,
  addresses: NodeAddresses,
  options: RegisterNodeOptions = {},
): Promise<RegistrationResult> {
  const node = ctx.config.nodeName;
  const cas = { maxAttempts: options.maxAttempts ?? 20, signal: ctx.signal };
  const write = async (vxlan: RegistrationResult["vxlan"] | undefined) => {
    const stored = await casWrite<Node>(
      ctx.datastore,
      { kind: "Node", name: node },
      (current) => {
        const spec = desiredSpec(current?.spec ?? {}, ctx.config, addresses, vxlan);
        if (current !== undefined && sameJson(spec, current.spec)) return undefined;
        return {
          apiVersion: API,
          kind: "Node",
          metadata: current === undefined ? { name: node } : { ...current.metadata },
          spec,
        };
      },
      cas,
    );
    return stored as Node;
  };

  // The Node first: IPAM reads its labels to evaluate the pools' node selectors.
  let stored: Node;
  try {
    stored = await write(undefined);
  } catch (e) {
    wrap(e, node, "writing the Node");
  }

  let pools: IPPool[];
  let nodes: Node[];
  try {
    [pools, nodes] = await Promise.all([
      ctx.datastore.list<IPPool>("IPPool", optionalSignal(ctx.signal)).then((r) => r.items),
      ctx.datastore.list<Node>("Node", optionalSignal(ctx.signal)).then((r) => r.items),
    ]);
  } catch (e) {
    wrap(e, node, "listing pools and nodes");
  }

  const needVxlan =
    ctx.config.networkingBackend === "vxlan" ||
    pools.some((p) => p.spec.vxlanMode !== undefined && p.spec.vxlanMode !== "Never");
  let vxlan: RegistrationResult["vxlan"] = { ipv4: undefined, ipv6: undefined };
  if (needVxlan) {
    if (options.ipam === undefined)
      throw new AgentError(
        AgentErrorCode.Registration,
        `cannot register node ${node}: VXLAN is in use but no IPAM client was given for its tunnel address`,
        { step: REG, node },
      );
    const ipam = options.ipam;
    // Pools may have been created a moment ago (default pools): never allocate from a cached view.
    ipam.invalidate();
    try {
      vxlan = {
        ipv4: await ensureTunnelAddress(ctx, ipam, pools, 4),
        ipv6: await ensureTunnelAddress(ctx, ipam, pools, 6),
      };
    } catch (e) {
      wrap(e, node, "allocating the VXLAN tunnel address");
    }
    if (vxlan.ipv4 === undefined && ctx.config.networkingBackend === "vxlan")
      ctx.logger.warn({ node }, "backend is vxlan but no IPv4 pool gives this node a tunnel address");
  } else if (stored.spec.ipv4VXLANTunnelAddr !== undefined || stored.spec.ipv6VXLANTunnelAddr !== undefined) {
    // VXLAN no longer used: give the addresses back (Calico does the same).
    if (options.ipam !== undefined) {
      for (const fam of [4, 6] as const) {
        try {
          await options.ipam.releaseByHandle(vxlanTunnelHandle(node, fam), optionalSignal(ctx.signal));
        } catch (e) {
          wrap(e, node, "releasing the VXLAN tunnel address");
        }
      }
    }
  }
  try {
    stored = await write(vxlan);
  } catch (e) {
    wrap(e, node, "writing the VXLAN tunnel fields");
  }

  const conflicts = findConflicts(node, addresses, nodes);
  for (const c of conflicts)
    ctx.logger.warn({ address: c.address, otherNode: c.node }, "another node claims this node's address");
  if (conflicts.length > 0)
    ctx.health?.report(REG, {
      live: true,
      ready: true,
      reason: conflicts.map((c) => `address ${c.address} is also claimed by node ${c.node}`).join("; "),
    });
  else ctx.health?.report(REG, { live: true, ready: true });
  return { node: stored, vxlan, conflicts };
}

/** Result of {@link ensureDefaultPools}. */
export interface DefaultPoolsResult {
  /** Pools this call created. */
  readonly created: string[];
  /** Families skipped because a pool of that family already existed: the pools found. */
  readonly existing: string[];
  /** Pools of the same family that overlap a default pool (created concurrently under another name). */
  readonly overlaps: { readonly pool: string; readonly overlaps: string }[];
}

function overlaps(a: string, b: string): boolean {
  const x = tryParseCidr(a);
  const y = tryParseCidr(b);
  return x !== undefined && y !== undefined && cidrsOverlap(x, y);
}

/**
 * Creates the configured default IPv4 / IPv6 pool when no pool of its family exists. Race-safe: every
 * node creates the pool under the same name, so when several start together exactly one create wins and
 * the others see `already-exists`, which is success. A pool of the family created concurrently under
 * another name is reported in `overlaps` (and logged) when the two overlap.
 */
export async function ensureDefaultPools(
  ctx: Omit<RegistrationContext, "health">,
): Promise<DefaultPoolsResult> {
  const result: DefaultPoolsResult = { created: [], existing: [], overlaps: [] };
  const sig = optionalSignal(ctx.signal);
  for (const fam of [4, 6] as const) {
    const def = fam === 4 ? ctx.config.defaultPools.ipv4 : ctx.config.defaultPools.ipv6;
    if (def === undefined) continue;
    try {
      const pools = (await ctx.datastore.list<IPPool>("IPPool", sig)).items;
      const same = pools.filter((p) => family(p.spec.cidr) === fam);
      if (same.length > 0) {
        result.existing.push(...same.map((p) => p.metadata.name));
        ctx.logger.debug(
          { family: fam, pools: same.map((p) => p.metadata.name) },
          "a pool exists; no default pool",
        );
        continue;
      }
      const pool: IPPool = {
        apiVersion: API,
        kind: "IPPool",
        metadata: { name: def.name },
        spec: {
          cidr: def.cidr,
          blockSize: def.blockSize,
          ...(fam === 4 ? { ipipMode: def.ipipMode } : {}),
          vxlanMode: def.vxlanMode,
          natOutgoing: def.natOutgoing,
          nodeSelector: def.nodeSelector,
        },
      };
      try {
        await ctx.datastore.create(pool, sig);
        result.created.push(def.name);
        ctx.logger.info({ pool: def.name, cidr: def.cidr }, "created default pool");
      } catch (e) {
        if (!(isDatastoreError(e) && e.code === "already-exists")) throw e;
        result.existing.push(def.name);
        ctx.logger.debug({ pool: def.name }, "default pool created by another node");
      }
      // Another node may have created a pool of this family under another name at the same moment.
      const after = (await ctx.datastore.list<IPPool>("IPPool", sig)).items;
      for (const p of after) {
        if (p.metadata.name === def.name || !overlaps(p.spec.cidr, def.cidr)) continue;
        result.overlaps.push({ pool: def.name, overlaps: p.metadata.name });
        ctx.logger.warn(
          { pool: def.name, cidr: def.cidr, other: p.metadata.name, otherCidr: p.spec.cidr },
          "default pool overlaps another pool",
        );
      }
    } catch (e) {
      throw new AgentError(
        AgentErrorCode.DefaultPool,
        `cannot create the default IPv${fam} pool ${def.name} (${def.cidr}): ${messageOf(e)}`,
        { step: "default-pools", pool: def.name, cidr: def.cidr, causeCode: errorCode(e) },
        { cause: e },
      );
    }
  }
  return result;
}
