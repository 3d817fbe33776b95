/**
 * The node agent's resolved configuration: what `resolveAgentConfig` (./resolve.ts) produces from flags,
 * environment, the `AgentConfiguration` resources (`node.<name>` over `default`) and built-in defaults,
 * and what every part of the agent reads. Every field is set (defaults applied) and checked.
 *
 * @packageDocumentation
 */
import type { FailsafePort } from "@margay/dataplane-contract";
import type { DatastoreConfig } from "../../config/datastore-config.js";

/** How pod traffic crosses hosts (Calico's `CALICO_NETWORKING_BACKEND`). */
export type NetworkingBackend = "bgp" | "vxlan" | "none";

/** An encapsulation mode of a pool (Calico's `ipipMode` / `vxlanMode`). */
export type EncapsulationMode = "Never" | "Always" | "CrossSubnet";

/** The default pool the agent creates once per cluster when no pool of its family exists. */
export interface DefaultPoolConfig {
  /** Pool name (`default-ipv4-ippool` / `default-ipv6-ippool`, as Calico names them). */
  readonly name: string;
  /** The pool's CIDR. */
  readonly cidr: string;
  /** Block prefix length (26 for IPv4, 122 for IPv6 by default). */
  readonly blockSize: number;
  readonly ipipMode: EncapsulationMode;
  readonly vxlanMode: EncapsulationMode;
  readonly natOutgoing: boolean;
  /** Label selector of the nodes that may allocate from the pool. Default `all()`. */
  readonly nodeSelector: string;
}

/** How the agent finds its underlay address of one family (Calico's `IP_AUTODETECTION_METHOD`). */
export type AutodetectMethod =
  | { readonly kind: "first-found" }
  | { readonly kind: "interface"; readonly patterns: readonly string[] }
  | { readonly kind: "skip-interface"; readonly patterns: readonly string[] }
  | { readonly kind: "can-reach"; readonly destination: string }
  | { readonly kind: "cidr"; readonly cidrs: readonly string[] };

/** Address setting of one family: `IP` / `IP6`. */
export interface AddressConfig {
  /**
   * `autodetect` (default for IPv4), `none` (family off; default for IPv6), or an address with its
   * prefix length (`10.0.0.5/24`; a bare address gets the prefix of the interface that holds it).
   */
  readonly mode: "autodetect" | "none" | { readonly address: string };
  readonly method: AutodetectMethod;
}

/**
 * Kubernetes mode: how the agent reaches the API server (`KUBECONFIG`, else in-cluster
 * `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT` with the mounted service account).
 */
export type KubernetesConnection =
  /** `KUBECONFIG`: one kubeconfig file or a `:`-separated list of them, merged as kubectl merges them. */
  { readonly kubeconfig: string } | { readonly inCluster: { readonly host: string; readonly port: number } };

/** The node agent's configuration, fully resolved. */
export interface AgentConfig {
  /** This node's name (`NODENAME`; default the host name). */
  readonly nodeName: string;
  /** Where the model lives (`DATASTORE_TYPE`, `ETCD_*`). Default memory with a snapshot in `stateDir`. */
  readonly datastore: DatastoreConfig;
  /** Kubernetes mode when set; optional so a hand-built config without it is etcd/memory mode only. */
  readonly kubernetes?: KubernetesConnection | undefined;
  /** Directory for the agent's own state (memory snapshot, CNI DEL spool). Default `/var/lib/margay`. */
  readonly stateDir: string;
  readonly ipv4: AddressConfig;
  readonly ipv6: AddressConfig;
  /** This node's AS (`AS`); unset: the cluster's (`BGPConfiguration default` asNumber, else 64512). */
  readonly asNumber: number | undefined;
  /** `bgp` (default), `vxlan` (routes from the datastore, no BGP) or `none` (no cross-host routes). */
  readonly networkingBackend: NetworkingBackend;
  /** Default pools created once per cluster; `undefined` for a family: none created. */
  readonly defaultPools: {
    readonly ipv4: DefaultPoolConfig | undefined;
    readonly ipv6: DefaultPoolConfig | undefined;
  };
  /** Workload interface prefixes; the first names new interfaces. Default `["mgy"]`. */
  readonly interfacePrefixes: readonly string[];
  /** Veth and tunnel MTU; `undefined`: derived from the underlay interface minus encapsulation overhead. */
  readonly mtu: number | undefined;
  readonly vxlan: { readonly port: number; readonly vni: number; readonly device: string };
  /** Workload API unix socket (mode 0600, root only). Default `/var/run/margay/agent.sock`. */
  readonly workloadSocket: string;
  /**
   * CNI GC leaves workload allocations and endpoints younger than this alone, ms. Default 60 000
   * (`MARGAY_WORKLOAD_GC_GRACE_PERIOD`); optional so a hand-built config keeps the default.
   */
  readonly workloadGcGracePeriodMs?: number | undefined;
  readonly health: { readonly enabled: boolean; readonly host: string; readonly port: number };
  readonly metrics: {
    readonly enabled: boolean;
    readonly host: string;
    readonly port: number;
    /** Per-peer labels on BGP metrics (opt-in; cardinality grows with peers). */
    readonly perPeerLabels: boolean;
  };
  /** When false (default), one BGP peer down does not make the node unready if another is up. */
  readonly readinessRequiresAllBgpPeers: boolean;
  /** How often the NodeStatus resource is written, ms. Default 10 000 (`reportingInterval`). */
  readonly statusIntervalMs: number;
  readonly dataplane: {
    /** `linux` (in-process, default) or `remote` (a child driver over the protobuf protocol). */
    readonly driver: "linux" | "remote";
    /** argv of the remote driver (`remote` only). */
    readonly remoteCommand: readonly string[] | undefined;
    /** Periodic reconciliation, ms (`dataplaneRefreshInterval`). Default 180 000. */
    readonly reconcileIntervalMs: number;
    /** Route protocol number marking our routes (`deviceRouteProtocol`). Default 80. */
    readonly routeProtocol: number;
    /** Workload → host traffic (`defaultEndpointToHostAction`). Default `Drop`. */
    readonly endpointToHostAction: "Drop" | "Accept" | "Return";
    /** nftables table name. Default `margay`. */
    readonly nftTable: string;
  };
  /**
   * Host ports policy never blocks (`failsafeInboundHostPorts` / `failsafeOutboundHostPorts`), for the
   * calc graph's `failsafeInbound` / `failsafeOutbound`. The resolver always sets it (Calico's lists by
   * default); optional only so configurations written before the field existed still type-check.
   */
  readonly failsafe?:
    | { readonly inbound: readonly FailsafePort[]; readonly outbound: readonly FailsafePort[] }
    | undefined;
  /** Graceful restart time advertised to BGP peers, seconds. Default 120. */
  readonly bgpGracefulRestartSeconds: number;
  /** pino level. Default `info` (`logSeverityScreen`). */
  readonly logLevel: "trace" | "debug" | "info" | "warn" | "error" | "fatal";
}
