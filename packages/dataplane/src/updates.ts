/**
 * The update stream a {@link DataplaneDriver} consumes: the route-side messages defined here, plus the
 * policy calculation's messages (IP sets, active policies, profiles, endpoints) from `@margay/policy`.
 *
 * Every message is a plain, JSON-safe object with a string-literal `kind`, so it crosses a process
 * boundary unchanged (see the protobuf protocol).
 *
 * @packageDocumentation
 */

/** Encapsulation of traffic to a pool's addresses on other hosts (Calico's ipipMode / vxlanMode). */
export const Encapsulation = {
  /** No tunnel: `via nodeIP` (needs an underlay that routes pod addresses, e.g. one L2 segment or BGP). */
  None: "none",
  /** VXLAN: `via VTEP onlink dev vxlan.margay`, with neighbour and FDB entries per remote VTEP. */
  Vxlan: "vxlan",
  /** IP-in-IP: `via nodeIP dev tunl0 onlink` (needs the kernel's ipip module). */
  Ipip: "ipip",
} as const;
/** Union of {@link Encapsulation} values. */
export type Encapsulation = (typeof Encapsulation)[keyof typeof Encapsulation];

/** Kinds of route a {@link RouteUpdate} describes (after Felix's RouteType). */
export const RouteType = {
  /** A block (or borrowed /32) hosted by other nodes; next hops chosen by the containing pool's mode. */
  RemoteBlock: "remote-block",
  /** A block affine to this host: a blackhole, so unallocated addresses are not forwarded back out. */
  LocalBlock: "local-block",
  /** One workload on this host: `/32` (or `/128`) `dev <host veth> scope link`. */
  LocalWorkload: "local-workload",
} as const;
/** Union of {@link RouteType} values. */
export type RouteType = (typeof RouteType)[keyof typeof RouteType];

/** Adds or replaces the route for `dst`. */
export interface RouteUpdate {
  /** Discriminator. */
  readonly kind: "route-update";
  /** Destination CIDR (the key of the route). */
  readonly dst: string;
  /** What the route is for. */
  readonly type: RouteType;
  /**
   * Remote nodes hosting `dst` (type `remote-block`): one next hop each, in order; more than one gives an
   * ECMP route. Each must have a {@link HostUpdate} (and a {@link VtepUpdate} in VXLAN mode) to resolve.
   */
  readonly nodes?: readonly string[] | undefined;
  /** Host-side interface of the workload (type `local-workload`). */
  readonly ifname?: string | undefined;
}

/** Removes the route for `dst`. */
export interface RouteRemove {
  /** Discriminator. */
  readonly kind: "route-remove";
  /** Destination CIDR. */
  readonly dst: string;
}

/** Adds or replaces a VXLAN tunnel endpoint (this host's own, or a remote node's). */
export interface VtepUpdate {
  /** Discriminator. */
  readonly kind: "vtep-update";
  /** Node name. */
  readonly node: string;
  /** Tunnel address of the node's VXLAN device (IPv4). */
  readonly tunnelAddress: string;
  /** MAC of the node's VXLAN device, `aa:bb:cc:dd:ee:ff`. */
  readonly mac: string;
  /** Underlay address VXLAN packets are sent to (IPv4). */
  readonly underlayAddress: string;
}

/** Removes a node's VTEP. */
export interface VtepRemove {
  /** Discriminator. */
  readonly kind: "vtep-remove";
  /** Node name. */
  readonly node: string;
}

/** Adds or replaces an IP pool: how traffic to it is encapsulated and whether it is masqueraded. */
export interface PoolUpdate {
  /** Discriminator. */
  readonly kind: "pool-update";
  /** Pool CIDR (the key). */
  readonly cidr: string;
  /** Encapsulation to other hosts. */
  readonly encapsulation: Encapsulation;
  /** Encapsulate only to hosts outside this host's underlay subnet (Calico's `CrossSubnet`). */
  readonly crossSubnet: boolean;
  /** Masquerade traffic from the pool to destinations outside every pool. */
  readonly natOutgoing: boolean;
}

/** Removes an IP pool. */
export interface PoolRemove {
  /** Discriminator. */
  readonly kind: "pool-remove";
  /** Pool CIDR. */
  readonly cidr: string;
}

/** Adds or replaces a node's underlay addresses (this host's own or a remote node's). */
export interface HostUpdate {
  /** Discriminator. */
  readonly kind: "host-update";
  /** Node name. */
  readonly node: string;
  /** Underlay addresses with prefix length, e.g. `10.0.0.2/24`; the first of a family is the next hop. */
  readonly addresses: readonly string[];
}

/** Removes a node. */
export interface HostRemove {
  /** Discriminator. */
  readonly kind: "host-remove";
  /** Node name. */
  readonly node: string;
}

/**
 * Barrier: everything before it is the complete initial state. A driver changes nothing in the kernel
 * before the first one; after it, each batch is applied as it arrives.
 */
export interface InSync {
  /** Discriminator. */
  readonly kind: "in-sync";
}

/** Route-side updates (this package's half of the stream). */
export type RouteSideUpdate =
  | RouteUpdate
  | RouteRemove
  | VtepUpdate
  | VtepRemove
  | PoolUpdate
  | PoolRemove
  | HostUpdate
  | HostRemove
  | InSync;

/** Every `kind` of {@link RouteSideUpdate}. */
export const ROUTE_SIDE_KINDS = [
  "route-update",
  "route-remove",
  "vtep-update",
  "vtep-remove",
  "pool-update",
  "pool-remove",
  "host-update",
  "host-remove",
  "in-sync",
] as const;
