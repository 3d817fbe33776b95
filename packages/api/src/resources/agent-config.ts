/**
 * AgentConfiguration: per-node agent settings, modelled on Calico's FelixConfiguration (the subset
 * Margay's agent implements, with Felix's field names and defaults).
 *
 * @packageDocumentation
 */
import { DEFAULT_WORKLOAD_INTERFACE_PREFIX, isValidWorkloadInterfacePrefix } from "../interface-name.js";
import { type Ctx, object, show } from "../validation/context.js";
import { duration } from "../validation/fields.js";
import { ip, cidr } from "../validation/net.js";
import { array, boolean, integer, oneOf, opt, req, string } from "../validation/primitives.js";
import type { KindDef } from "./kind-def.js";
import type { ResourceOf } from "./meta.js";

/** A protocol/port pair (optionally restricted to a network) used by the failsafe port lists. */
export interface ProtoPort {
  /** Transport protocol. */
  protocol: "TCP" | "UDP" | "SCTP";
  /** Port number (0..65535). */
  port: number;
  /** Restrict to this CIDR. */
  net?: string;
}

/**
 * Spec of an {@link AgentConfiguration}. Unset fields inherit (node → `default` → built-in default).
 *
 * @remarks The node agent that reads this resource is not built yet: apart from `interfacePrefix` (whose
 * default is the dataplane's), no field is honoured by any package today. They are validated and
 * defaulted so configurations can be written now; see the api README, *Fields not yet honoured*.
 */
export interface AgentConfigurationSpec {
  /** Default `Info`. */
  logSeverityScreen?: "Debug" | "Info" | "Warning" | "Error" | "Fatal";
  /**
   * Prefixes of workload interface names on the host, comma-separated (the first names new interfaces).
   * Default `mgy`: `DEFAULT_WORKLOAD_INTERFACE_PREFIX`, the one default every package uses (see
   * `workloadInterfaceName`). Each 1-8 of `[a-z0-9]`, a letter first.
   */
  interfacePrefix?: string;
  /** What to do with traffic from workloads to the host itself. Default `Drop`. */
  defaultEndpointToHostAction?: "Drop" | "Accept" | "Return";
  /** Enable the IP-in-IP dataplane (normally derived from pools). */
  ipipEnabled?: boolean;
  /** MTU of the IP-in-IP device. */
  ipipMTU?: number;
  /** Enable the VXLAN dataplane (normally derived from pools). */
  vxlanEnabled?: boolean;
  /** VXLAN UDP port. Default 4789. */
  vxlanPort?: number;
  /** VXLAN network identifier. Default 4096. */
  vxlanVNI?: number;
  /** MTU of the IPv4 VXLAN device. */
  vxlanMTU?: number;
  /** MTU of the IPv6 VXLAN device. */
  vxlanMTUV6?: number;
  /** Source address for NAT-outgoing traffic (IPv4). */
  natOutgoingAddress?: string;
  /** Ports always open inbound to the host, whatever the policy. */
  failsafeInboundHostPorts?: ProtoPort[];
  /** Ports always open outbound from the host, whatever the policy. */
  failsafeOutboundHostPorts?: ProtoPort[];
  /** Route resync period (Go duration). Default `90s`. */
  routeRefreshInterval?: string;
  /** Full dataplane resync period (Go duration). Default `180s`. */
  dataplaneRefreshInterval?: string;
  /** How often the agent reports its status (Go duration). Default `30s`. */
  reportingInterval?: string;
  /** Where routes to remote workloads come from. Default `CalicoIPAM`. */
  routeSource?: "CalicoIPAM" | "WorkloadIPs";
  /** Remove routes the agent does not own from the routing tables it manages. Default true. */
  removeExternalRoutes?: boolean;
  /** Route protocol number marking routes the agent owns. */
  deviceRouteProtocol?: number;
  /** Serve health checks. Default false. */
  healthEnabled?: boolean;
  /** Default `localhost`. */
  healthHost?: string;
  /** Default 9099. */
  healthPort?: number;
  /** Serve Prometheus metrics. Default false. **Not yet honoured** by any Margay package (see the api README, *Fields not yet honoured*). */
  prometheusMetricsEnabled?: boolean;
  /** Default 9091. **Not yet honoured** by any Margay package (see the api README, *Fields not yet honoured*). */
  prometheusMetricsPort?: number;
}
/**
 * Agent settings. Cluster-scoped; `default` holds cluster-wide values, `node.<name>` overrides them
 * for one node.
 */
export type AgentConfiguration = ResourceOf<"AgentConfiguration", AgentConfigurationSpec>;

const tcp = (port: number): ProtoPort => ({ protocol: "TCP", port });
const udp = (port: number): ProtoPort => ({ protocol: "UDP", port });

/** Fields of {@link AgentConfigurationSpec} that have no built-in default. */
export type AgentConfigurationFieldWithoutDefault =
  | "ipipEnabled"
  | "ipipMTU"
  | "vxlanEnabled"
  | "vxlanMTU"
  | "vxlanMTUV6"
  | "natOutgoingAddress"
  | "deviceRouteProtocol";

/** Built-in defaults (Felix's), applied to the `default` instance by `withDefaults`. */
export const AGENT_CONFIGURATION_DEFAULTS: Readonly<
  Required<Omit<AgentConfigurationSpec, AgentConfigurationFieldWithoutDefault>>
> = {
  logSeverityScreen: "Info",
  interfacePrefix: DEFAULT_WORKLOAD_INTERFACE_PREFIX,
  defaultEndpointToHostAction: "Drop",
  vxlanPort: 4789,
  vxlanVNI: 4096,
  failsafeInboundHostPorts: [
    tcp(22),
    udp(68),
    tcp(179),
    tcp(2379),
    tcp(2380),
    tcp(5473),
    tcp(6443),
    tcp(6666),
    tcp(6667),
  ],
  failsafeOutboundHostPorts: [
    udp(53),
    udp(67),
    tcp(179),
    tcp(2379),
    tcp(2380),
    tcp(5473),
    tcp(6443),
    tcp(6666),
    tcp(6667),
  ],
  routeRefreshInterval: "90s",
  dataplaneRefreshInterval: "180s",
  reportingInterval: "30s",
  routeSource: "CalicoIPAM",
  removeExternalRoutes: true,
  healthEnabled: false,
  healthHost: "localhost",
  healthPort: 9099,
  prometheusMetricsEnabled: false,
  prometheusMetricsPort: 9091,
};

function protoPorts(v: unknown, path: string, ctx: Ctx): ProtoPort[] | undefined {
  return array(v, path, ctx, (x, p, c): ProtoPort | undefined => {
    const o = object(x, p, c, ["protocol", "port", "net"]);
    if (o === undefined) return undefined;
    const out: Partial<ProtoPort> = {};
    const proto = req(o, out, "protocol", p, c, (y, yp, yc) => {
      const s = typeof y === "string" ? y.toUpperCase() : y;
      return oneOf(s, yp, yc, ["TCP", "UDP", "SCTP"] as const);
    });
    const port = req(o, out, "port", p, c, (y, yp, yc) => integer(y, yp, yc, 0, 65535));
    opt(o, out, "net", p, c, (y, yp, yc) => cidr(y, yp, yc, { hostBits: "mask" }));
    return proto === undefined || port === undefined ? undefined : (out as ProtoPort);
  });
}

const mtu = (x: unknown, p: string, c: Ctx) => integer(x, p, c, 576, 65535);

/** Kind definition of {@link AgentConfiguration}. */
export const agentConfigurationDef: KindDef<"AgentConfiguration", AgentConfigurationSpec> = {
  kind: "AgentConfiguration",
  plural: "agentconfigurations",
  namespaced: false,
  nameRule: "subdomain",
  validateSpec(v, path, ctx) {
    const o = object(v, path, ctx, [
      "logSeverityScreen",
      "interfacePrefix",
      "defaultEndpointToHostAction",
      "ipipEnabled",
      "ipipMTU",
      "vxlanEnabled",
      "vxlanPort",
      "vxlanVNI",
      "vxlanMTU",
      "vxlanMTUV6",
      "natOutgoingAddress",
      "failsafeInboundHostPorts",
      "failsafeOutboundHostPorts",
      "routeRefreshInterval",
      "dataplaneRefreshInterval",
      "reportingInterval",
      "routeSource",
      "removeExternalRoutes",
      "deviceRouteProtocol",
      "healthEnabled",
      "healthHost",
      "healthPort",
      "prometheusMetricsEnabled",
      "prometheusMetricsPort",
    ]);
    if (o === undefined) return undefined;
    const out: AgentConfigurationSpec = {};
    opt(o, out, "logSeverityScreen", path, ctx, (x, p, c) =>
      oneOf(x, p, c, ["Debug", "Info", "Warning", "Error", "Fatal"] as const),
    );
    opt(o, out, "interfacePrefix", path, ctx, (x, p, c) => {
      const s = string(x, p, c);
      if (s === undefined) return undefined;
      return s.split(",").every(isValidWorkloadInterfacePrefix)
        ? s
        : c.fail(
            p,
            `invalid interface prefix ${show(s)} (comma-separated, each 1-8 of [a-z0-9], a letter first)`,
          );
    });
    opt(o, out, "defaultEndpointToHostAction", path, ctx, (x, p, c) =>
      oneOf(x, p, c, ["Drop", "Accept", "Return"] as const),
    );
    opt(o, out, "ipipEnabled", path, ctx, boolean);
    opt(o, out, "ipipMTU", path, ctx, mtu);
    opt(o, out, "vxlanEnabled", path, ctx, boolean);
    opt(o, out, "vxlanPort", path, ctx, (x, p, c) => integer(x, p, c, 1, 65535));
    opt(o, out, "vxlanVNI", path, ctx, (x, p, c) => integer(x, p, c, 1, 0xffffff));
    opt(o, out, "vxlanMTU", path, ctx, mtu);
    opt(o, out, "vxlanMTUV6", path, ctx, (x, p, c) => integer(x, p, c, 1280, 65535));
    opt(o, out, "natOutgoingAddress", path, ctx, (x, p, c) => ip(x, p, c, 4));
    opt(o, out, "failsafeInboundHostPorts", path, ctx, protoPorts);
    opt(o, out, "failsafeOutboundHostPorts", path, ctx, protoPorts);
    opt(o, out, "routeRefreshInterval", path, ctx, duration);
    opt(o, out, "dataplaneRefreshInterval", path, ctx, duration);
    opt(o, out, "reportingInterval", path, ctx, duration);
    opt(o, out, "routeSource", path, ctx, (x, p, c) =>
      oneOf(x, p, c, ["CalicoIPAM", "WorkloadIPs"] as const),
    );
    opt(o, out, "removeExternalRoutes", path, ctx, boolean);
    opt(o, out, "deviceRouteProtocol", path, ctx, (x, p, c) => integer(x, p, c, 1, 255));
    opt(o, out, "healthEnabled", path, ctx, boolean);
    opt(o, out, "healthHost", path, ctx, string);
    opt(o, out, "healthPort", path, ctx, (x, p, c) => integer(x, p, c, 1, 65535));
    opt(o, out, "prometheusMetricsEnabled", path, ctx, boolean);
    opt(o, out, "prometheusMetricsPort", path, ctx, (x, p, c) => integer(x, p, c, 1, 65535));
    return out;
  },
  defaults(spec, meta) {
    // Only the cluster-wide instance gets defaults: a node.<name> instance overrides just what it sets.
    if (meta.name !== "default") return { ...spec };
    return {
      ...AGENT_CONFIGURATION_DEFAULTS,
      failsafeInboundHostPorts: AGENT_CONFIGURATION_DEFAULTS.failsafeInboundHostPorts.map((p) => ({ ...p })),
      failsafeOutboundHostPorts: AGENT_CONFIGURATION_DEFAULTS.failsafeOutboundHostPorts.map((p) => ({
        ...p,
      })),
      ...spec,
    };
  },
};
