/**
 * BGP resources: BGPPeer and BGPConfiguration (Calico semantics).
 *
 * @packageDocumentation
 */
import { type Ctx, field, joinPath, object, show } from "../validation/context.js";
import { asNumber, duration, selector } from "../validation/fields.js";
import { resourceName } from "../validation/names.js";
import { tryParseIp } from "../net/ip.js";
import { cidr } from "../validation/net.js";
import {
  array,
  boolean,
  integer,
  nonEmptyString,
  oneOf,
  opt,
  req,
  string,
} from "../validation/primitives.js";
import type { KindDef } from "./kind-def.js";
import type { ResourceOf } from "./meta.js";
import { nodeNameRef } from "./node.js";

/** A reference to a key of a secret holding a BGP password (Kubernetes `SecretKeySelector`). */
export interface SecretKeyRef {
  /** Secret name. */
  name: string;
  /** Key within the secret. */
  key: string;
  /** Tolerate a missing secret or key (then: no password). */
  optional?: boolean;
}
/** Where a BGP session password comes from. */
export interface BGPPassword {
  /** Read the password from a secret key. */
  secretKeyRef?: SecretKeyRef;
}

/** Source address choice of BGP sessions. */
export const BGPSourceAddress = {
  /** Use the node's address as the session source. */
  UseNodeIP: "UseNodeIP",
  /** Let the kernel choose the source address. */
  None: "None",
} as const;
/** Union of {@link BGPSourceAddress} values. */
export type BGPSourceAddress = (typeof BGPSourceAddress)[keyof typeof BGPSourceAddress];

/**
 * Spec of a {@link BGPPeer}.
 *
 * @remarks No package turns BGPPeer resources into sessions yet (`@margay/bgp` takes its own options):
 * every field is validated but not yet honoured; see the api README, *Fields not yet honoured*.
 */
export interface BGPPeerSpec {
  /** The node that peers; unset together with `nodeSelector` = every node. */
  node?: string;
  /** Nodes that peer (exclusive with `node`). */
  nodeSelector?: string;
  /** Peer address, optionally with a port: `10.0.0.1`, `10.0.0.1:1179`, `[fd00::1]:1179`. */
  peerIP?: string;
  /** Peer AS number (exclusive with `peerSelector`). */
  asNumber?: number;
  /** Peer with the nodes matching this selector, using their node BGP addresses and AS numbers. */
  peerSelector?: string;
  /** Keep the original next hop instead of next-hop-self. Default false. */
  keepOriginalNextHop?: boolean;
  /** TCP MD5 password of the sessions. **Not yet honoured** by any Margay package (see the api README, *Fields not yet honoured*). */
  password?: BGPPassword;
  /** Default `UseNodeIP`. */
  sourceAddress?: BGPSourceAddress;
  /** Graceful restart time (Go duration, e.g. `120s`). */
  maxRestartTime?: string;
  /** Accept routes whose AS path contains our AS up to this many times. */
  numAllowedLocalASNumbers?: number;
}
/** A BGP peering (to an external router, a route reflector, or selected nodes). Cluster-scoped. */
export type BGPPeer = ResourceOf<"BGPPeer", BGPPeerSpec>;

/** A CIDR block of Kubernetes service addresses to advertise. */
export interface ServiceIPBlock {
  /** The block (strictly masked). */
  cidr: string;
}
/** A named BGP community value. */
export interface Community {
  /** Name usable in `prefixAdvertisements`. */
  name: string;
  /** `aa:nn` (standard, 16-bit parts) or `aa:nn:mm` (large, 32-bit parts). */
  value: string;
}
/** Communities to attach when advertising a prefix. */
export interface PrefixAdvertisement {
  /** The advertised prefix (strictly masked). */
  cidr: string;
  /** Community values or names defined in `communities`. */
  communities: string[];
}

/**
 * Spec of a {@link BGPConfiguration}.
 *
 * @remarks Validated but not yet honoured by any package (no node agent reads it yet); see the api
 * README, *Fields not yet honoured*.
 */
export interface BGPConfigurationSpec {
  /** Default `Info` (on the `default` instance). */
  logSeverityScreen?: "Debug" | "Info" | "Warning" | "Error" | "Fatal";
  /** Full node-to-node mesh. Default true (on the `default` instance). */
  nodeToNodeMeshEnabled?: boolean;
  /** Default AS number of nodes. Default 64512 (on the `default` instance). */
  asNumber?: number;
  /** Service cluster IP ranges to advertise. */
  serviceClusterIPs?: ServiceIPBlock[];
  /** Service external IP ranges to advertise. */
  serviceExternalIPs?: ServiceIPBlock[];
  /** Service load-balancer IP ranges to advertise. */
  serviceLoadBalancerIPs?: ServiceIPBlock[];
  /** Named community values. */
  communities?: Community[];
  /** Communities to attach per advertised prefix. */
  prefixAdvertisements?: PrefixAdvertisement[];
  /** BGP listen port. Default 179 (on the `default` instance). */
  listenPort?: number;
  /** Password of the node-to-node mesh sessions. */
  nodeMeshPassword?: BGPPassword;
  /** Graceful restart time of mesh sessions (Go duration). */
  nodeMeshMaxRestartTime?: string;
}
/**
 * BGP settings. Cluster-scoped; `default` holds the cluster-wide values, `node.<name>` overrides
 * them for one node.
 */
export type BGPConfiguration = ResourceOf<"BGPConfiguration", BGPConfigurationSpec>;

/** Cluster defaults of {@link BGPConfigurationSpec}, applied to the `default` instance. */
export const BGP_CONFIGURATION_DEFAULTS: Readonly<
  Required<
    Pick<BGPConfigurationSpec, "logSeverityScreen" | "nodeToNodeMeshEnabled" | "asNumber" | "listenPort">
  >
> = {
  logSeverityScreen: "Info",
  nodeToNodeMeshEnabled: true,
  asNumber: 64512,
  listenPort: 179,
};

/** A parsed `peerIP`. */
export interface ParsedPeerIP {
  /** Canonical address. */
  readonly ip: string;
  /** 4 or 6. */
  readonly version: 4 | 6;
  /** Port, if one was given. */
  readonly port?: number;
}

/** Parses `peerIP` (`ip`, `ipv4:port`, `[ipv6]:port`); undefined if invalid. */
export function parsePeerIP(s: string): ParsedPeerIP | undefined {
  let host = s;
  let port: number | undefined;
  const v6 = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(s);
  const v4 = /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(s);
  const m = v6 ?? v4;
  if (m !== null) {
    host = m[1]!;
    port = Number(m[2]);
    if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  }
  const a = tryParseIp(host);
  if (a === undefined) return undefined;
  return port === undefined ? { ip: a.text, version: a.version } : { ip: a.text, version: a.version, port };
}

function password(v: unknown, path: string, ctx: Ctx): BGPPassword | undefined {
  const o = object(v, path, ctx, ["secretKeyRef"]);
  if (o === undefined) return undefined;
  const out: BGPPassword = {};
  opt(o, out, "secretKeyRef", path, ctx, (x, p, c): SecretKeyRef | undefined => {
    const so = object(x, p, c, ["name", "key", "optional"]);
    if (so === undefined) return undefined;
    const ref: Partial<SecretKeyRef> = {};
    const name = req(so, ref, "name", p, c, nonEmptyString);
    const key = req(so, ref, "key", p, c, nonEmptyString);
    opt(so, ref, "optional", p, c, boolean);
    return name === undefined || key === undefined ? undefined : (ref as SecretKeyRef);
  });
  return out;
}

/** Kind definition of {@link BGPPeer}. */
export const bgpPeerDef: KindDef<"BGPPeer", BGPPeerSpec> = {
  kind: "BGPPeer",
  plural: "bgppeers",
  namespaced: false,
  nameRule: "subdomain",
  validateSpec(v, path, ctx) {
    const o = object(v, path, ctx, [
      "node",
      "nodeSelector",
      "peerIP",
      "asNumber",
      "peerSelector",
      "keepOriginalNextHop",
      "password",
      "sourceAddress",
      "maxRestartTime",
      "numAllowedLocalASNumbers",
    ]);
    if (o === undefined) return undefined;
    const out: BGPPeerSpec = {};
    opt(o, out, "node", path, ctx, nodeNameRef);
    opt(o, out, "nodeSelector", path, ctx, selector);
    opt(o, out, "peerIP", path, ctx, (x, p, c) => {
      const s = string(x, p, c);
      if (s === undefined) return undefined;
      const parsed = parsePeerIP(s);
      if (parsed === undefined)
        return c.fail(p, `invalid peerIP ${show(s)}: expected "<ip>", "<ipv4>:<port>" or "[<ipv6>]:<port>"`);
      if (parsed.port === undefined) return parsed.ip;
      return parsed.version === 4 ? `${parsed.ip}:${parsed.port}` : `[${parsed.ip}]:${parsed.port}`;
    });
    opt(o, out, "asNumber", path, ctx, asNumber);
    opt(o, out, "peerSelector", path, ctx, selector);
    opt(o, out, "keepOriginalNextHop", path, ctx, boolean);
    opt(o, out, "password", path, ctx, password);
    opt(o, out, "sourceAddress", path, ctx, (x, p, c) => oneOf(x, p, c, Object.values(BGPSourceAddress)));
    opt(o, out, "maxRestartTime", path, ctx, duration);
    opt(o, out, "numAllowedLocalASNumbers", path, ctx, (x, p, c) => integer(x, p, c, 0, 10));
    if (field(o, "node") !== undefined && field(o, "nodeSelector") !== undefined) {
      ctx.fail(joinPath(path, "node"), "node must be empty when nodeSelector is specified");
    }
    if (field(o, "peerIP") !== undefined && field(o, "peerSelector") !== undefined) {
      ctx.fail(joinPath(path, "peerIP"), "peerIP must be empty when peerSelector is specified");
    }
    if (field(o, "asNumber") !== undefined && field(o, "peerSelector") !== undefined) {
      ctx.fail(joinPath(path, "asNumber"), "asNumber must be empty when peerSelector is specified");
    }
    return out;
  },
  defaults(spec) {
    return {
      ...spec,
      keepOriginalNextHop: spec.keepOriginalNextHop ?? false,
      sourceAddress: spec.sourceAddress ?? "UseNodeIP",
    };
  },
};

/** A parsed BGP community value. */
export interface ParsedCommunity {
  /** `standard` (RFC 1997, `aa:nn`) or `large` (RFC 8092, `aa:nn:mm`). */
  readonly kind: "standard" | "large";
  /** The numeric parts. */
  readonly parts: number[];
}

/**
 * Parses a community value (`aa:nn` or large `aa:nn:mm`); undefined if invalid. Named `tryParse*` like
 * `tryParseCidr`: it never throws, unlike `@margay/bgp`'s `parseCommunity`, which throws and returns
 * the 32-bit wire value.
 */
export function tryParseCommunity(s: string): ParsedCommunity | undefined {
  const std = /^(\d+):(\d+)$/.exec(s);
  if (std !== null) {
    const parts = [Number(std[1]), Number(std[2])];
    return parts.every((n) => n <= 0xffff) ? { kind: "standard", parts } : undefined;
  }
  const large = /^(\d+):(\d+):(\d+)$/.exec(s);
  if (large !== null) {
    const parts = [Number(large[1]), Number(large[2]), Number(large[3])];
    return parts.every((n) => n <= 0xffffffff) ? { kind: "large", parts } : undefined;
  }
  return undefined;
}

/**
 * @deprecated Use {@link tryParseCommunity} (the same function); `parseCommunity` is also `@margay/bgp`'s
 * throwing parser of the 32-bit wire value. Removed in the next minor release.
 */
export const parseCommunity: (s: string) => ParsedCommunity | undefined = tryParseCommunity;

const serviceBlocks = (x: unknown, p: string, c: Ctx) =>
  array(x, p, c, (b, bp, bc): ServiceIPBlock | undefined => {
    const bo = object(b, bp, bc, ["cidr"]);
    if (bo === undefined) return undefined;
    const out: Partial<ServiceIPBlock> = {};
    return req(bo, out, "cidr", bp, bc, (y, yp, yc) => cidr(y, yp, yc)) === undefined
      ? undefined
      : (out as ServiceIPBlock);
  });

/** Kind definition of {@link BGPConfiguration}. */
export const bgpConfigurationDef: KindDef<"BGPConfiguration", BGPConfigurationSpec> = {
  kind: "BGPConfiguration",
  plural: "bgpconfigurations",
  namespaced: false,
  nameRule: "subdomain",
  validateSpec(v, path, ctx) {
    const o = object(v, path, ctx, [
      "logSeverityScreen",
      "nodeToNodeMeshEnabled",
      "asNumber",
      "serviceClusterIPs",
      "serviceExternalIPs",
      "serviceLoadBalancerIPs",
      "communities",
      "prefixAdvertisements",
      "listenPort",
      "nodeMeshPassword",
      "nodeMeshMaxRestartTime",
    ]);
    if (o === undefined) return undefined;
    const out: BGPConfigurationSpec = {};
    opt(o, out, "logSeverityScreen", path, ctx, (x, p, c) =>
      oneOf(x, p, c, ["Debug", "Info", "Warning", "Error", "Fatal"] as const),
    );
    opt(o, out, "nodeToNodeMeshEnabled", path, ctx, boolean);
    opt(o, out, "asNumber", path, ctx, asNumber);
    opt(o, out, "serviceClusterIPs", path, ctx, serviceBlocks);
    opt(o, out, "serviceExternalIPs", path, ctx, serviceBlocks);
    opt(o, out, "serviceLoadBalancerIPs", path, ctx, serviceBlocks);
    opt(o, out, "communities", path, ctx, (x, p, c) =>
      array(x, p, c, (e, ep, ec): Community | undefined => {
        const eo = object(e, ep, ec, ["name", "value"]);
        if (eo === undefined) return undefined;
        const com: Partial<Community> = {};
        const name = req(eo, com, "name", ep, ec, (y, yp, yc) => resourceName(y, yp, yc));
        const value = req(eo, com, "value", ep, ec, (y, yp, yc) => {
          const s = string(y, yp, yc);
          if (s === undefined) return undefined;
          return tryParseCommunity(s) !== undefined
            ? s
            : yc.fail(yp, `invalid community ${show(s)}: expected aa:nn or aa:nn:mm`);
        });
        return name === undefined || value === undefined ? undefined : (com as Community);
      }),
    );
    // Names count as defined even if their value is invalid (that value is reported on its own).
    const rawCommunities = field(o, "communities");
    const defined = new Set(
      (Array.isArray(rawCommunities) ? rawCommunities : []).map((c: unknown) =>
        typeof c === "object" && c !== null ? (c as { name?: unknown }).name : undefined,
      ),
    );
    opt(o, out, "prefixAdvertisements", path, ctx, (x, p, c) =>
      array(x, p, c, (e, ep, ec): PrefixAdvertisement | undefined => {
        const eo = object(e, ep, ec, ["cidr", "communities"]);
        if (eo === undefined) return undefined;
        const pa: Partial<PrefixAdvertisement> = {};
        const got = req(eo, pa, "cidr", ep, ec, (y, yp, yc) => cidr(y, yp, yc));
        const coms = req(eo, pa, "communities", ep, ec, (y, yp, yc) =>
          array(y, yp, yc, (s, sp, sc) => {
            const str = string(s, sp, sc);
            if (str === undefined) return undefined;
            return tryParseCommunity(str) !== undefined || defined.has(str as unknown)
              ? str
              : sc.fail(sp, `${show(str)} is neither a community value nor a name defined in communities`);
          }),
        );
        return got === undefined || coms === undefined ? undefined : (pa as PrefixAdvertisement);
      }),
    );
    if ((out.communities?.length ?? 0) > 0 && (out.prefixAdvertisements?.length ?? 0) === 0) {
      ctx.fail(joinPath(path, "communities"), "communities are defined but not used in prefixAdvertisements");
    }
    opt(o, out, "listenPort", path, ctx, (x, p, c) => integer(x, p, c, 1, 65535));
    opt(o, out, "nodeMeshPassword", path, ctx, password);
    opt(o, out, "nodeMeshMaxRestartTime", path, ctx, duration);
    if (out.nodeToNodeMeshEnabled === false) {
      if (out.nodeMeshPassword !== undefined) {
        ctx.fail(joinPath(path, "nodeMeshPassword"), "cannot be set when nodeToNodeMeshEnabled is false");
      }
      if (out.nodeMeshMaxRestartTime !== undefined) {
        ctx.fail(
          joinPath(path, "nodeMeshMaxRestartTime"),
          "cannot be set when nodeToNodeMeshEnabled is false",
        );
      }
    }
    return out;
  },
  defaults(spec, meta) {
    // Only the cluster-wide instance gets defaults: a node.<name> instance overrides just what it sets.
    return meta.name === "default" ? { ...BGP_CONFIGURATION_DEFAULTS, ...spec } : { ...spec };
  },
};
