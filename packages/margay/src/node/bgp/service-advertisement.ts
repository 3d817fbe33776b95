/**
 * Service IP advertisement, as Calico does it (docs: "Advertise Kubernetes service IP addresses"):
 *
 * - every node advertises the CIDRs of the default `BGPConfiguration`'s `serviceClusterIPs`,
 *   `serviceExternalIPs` and `serviceLoadBalancerIPs`, so upstream routers spread traffic over all nodes
 *   (ECMP) and kube-proxy forwards it to an endpoint;
 * - a Service with `externalTrafficPolicy: Local` is also advertised as host routes (`/32`, `/128`) only
 *   by the nodes that run one of its ready endpoints (EndpointSlices): its cluster IPs when inside
 *   `serviceClusterIPs`, its `externalIPs` when inside `serviceExternalIPs`, its load-balancer ingress
 *   IPs when inside `serviceLoadBalancerIPs`. The longest prefix wins upstream, so such traffic reaches only
 *   nodes that can serve it locally and the client's source address is kept. An address outside every
 *   configured range is never advertised (Calico's rule: the ranges say what may leave the cluster).
 *
 * Pure: no I/O; the BGP agent feeds it the model and the informers' caches.
 *
 * @packageDocumentation
 */
import { type BGPConfiguration, type IpCidr, cidrContainsCidr, tryParseCidr, tryParseIp } from "@margay/api";
import {
  ENDPOINTSLICE_SERVICE_NAME_LABEL,
  type KubeEndpointSlice,
  type KubeService,
} from "@margay/kube-adapter";

/** Inputs of {@link deriveServiceAdvertisement}. */
export interface ServiceAdvertisementInput {
  readonly nodeName: string;
  /** BGPConfigurations; only `default` carries service ranges (Calico's rule). */
  readonly configurations: readonly BGPConfiguration[];
  /** Services (Kubernetes mode); none: only the ranges are advertised. */
  readonly services?: Iterable<KubeService> | undefined;
  readonly endpointSlices?: Iterable<KubeEndpointSlice> | undefined;
}

/** Why a prefix is advertised (status, logs, tests). */
export interface AdvertisedServicePrefix {
  readonly prefix: string;
  /** `cluster-ips` / `external-ips` / `load-balancer-ips` range, or a Service's host route. */
  readonly reason: "cluster-ips" | "external-ips" | "load-balancer-ips" | "local-endpoint";
  /** `namespace/name` of the Service for a host route. */
  readonly service?: string | undefined;
}

/** What this node advertises for services. */
export interface ServiceAdvertisement {
  /** Sorted by prefix, each once. */
  readonly prefixes: readonly AdvertisedServicePrefix[];
  /** The configured ranges (every node's), parsed. */
  readonly ranges: readonly IpCidr[];
  /** Ranges that are not CIDRs (reported, skipped). */
  readonly invalid: readonly { field: string; cidr: string }[];
}

const FIELDS = [
  ["serviceClusterIPs", "cluster-ips"],
  ["serviceExternalIPs", "external-ips"],
  ["serviceLoadBalancerIPs", "load-balancer-ips"],
] as const;

function hostRoute(ip: string): { prefix: string; cidr: IpCidr } | undefined {
  const a = tryParseIp(ip);
  if (a === undefined) return undefined;
  const prefix = `${a.text}/${a.version === 4 ? 32 : 128}`;
  const cidr = tryParseCidr(prefix);
  return cidr === undefined ? undefined : { prefix, cidr };
}

/** Service keys (`namespace/name`) with at least one ready endpoint on `nodeName`. */
export function servicesWithLocalEndpoints(
  nodeName: string,
  slices: Iterable<KubeEndpointSlice>,
): Set<string> {
  const out = new Set<string>();
  for (const s of slices) {
    const svc = s.metadata.labels?.[ENDPOINTSLICE_SERVICE_NAME_LABEL];
    if (svc === undefined || svc === "") continue;
    // `ready` unset means ready (discovery.k8s.io/v1: consumers should interpret unknown as ready).
    const local = (s.endpoints ?? []).some(
      (e) => e.nodeName === nodeName && e.conditions?.ready !== false && e.addresses.length > 0,
    );
    if (local) out.add(`${s.metadata.namespace ?? "default"}/${svc}`);
  }
  return out;
}

/** The service prefixes `input.nodeName` advertises. Pure and deterministic. */
export function deriveServiceAdvertisement(input: ServiceAdvertisementInput): ServiceAdvertisement {
  const spec = input.configurations.find((c) => c.metadata.name === "default")?.spec ?? {};
  const byPrefix = new Map<string, AdvertisedServicePrefix>();
  const invalid: { field: string; cidr: string }[] = [];
  const rangesOf: Record<(typeof FIELDS)[number][1], IpCidr[]> = {
    "cluster-ips": [],
    "external-ips": [],
    "load-balancer-ips": [],
  };
  for (const [field, reason] of FIELDS) {
    for (const block of spec[field] ?? []) {
      const c = tryParseCidr(block.cidr);
      if (c === undefined) {
        invalid.push({ field, cidr: block.cidr });
        continue;
      }
      rangesOf[reason].push(c);
      if (!byPrefix.has(c.text)) byPrefix.set(c.text, { prefix: c.text, reason });
    }
  }
  const inside = (ranges: readonly IpCidr[], c: IpCidr) =>
    ranges.some((r) => r.version === c.version && cidrContainsCidr(r, c));

  const services = [...(input.services ?? [])];
  if (services.some((s) => s.spec?.externalTrafficPolicy === "Local")) {
    const local = servicesWithLocalEndpoints(input.nodeName, input.endpointSlices ?? []);
    for (const svc of services) {
      const sp = svc.spec;
      if (sp?.externalTrafficPolicy !== "Local") continue;
      if (sp.type === "ExternalName") continue;
      // A headless service is skipped entirely, its external and load-balancer IPs too, as Calico's
      // route generator skips a service without a cluster IP.
      if (sp.clusterIP === "None") continue;
      const key = `${svc.metadata.namespace ?? "default"}/${svc.metadata.name}`;
      if (!local.has(key)) continue;
      const clusterIPs =
        sp.clusterIPs !== undefined && sp.clusterIPs.length > 0 ? sp.clusterIPs : [sp.clusterIP];
      const candidates: [string | undefined, IpCidr[]][] = [
        ...clusterIPs.map((ip): [string | undefined, IpCidr[]] => [ip, rangesOf["cluster-ips"]]),
        ...(sp.externalIPs ?? []).map((ip): [string | undefined, IpCidr[]] => [ip, rangesOf["external-ips"]]),
        ...(svc.status?.loadBalancer?.ingress ?? []).map((i): [string | undefined, IpCidr[]] => [
          i.ip,
          rangesOf["load-balancer-ips"],
        ]),
      ];
      for (const [ip, ranges] of candidates) {
        if (ip === undefined || ip === "" || ip === "None") continue;
        const h = hostRoute(ip);
        if (h === undefined || !inside(ranges, h.cidr)) continue;
        const have = byPrefix.get(h.prefix);
        // A range that is itself a host route stays a range (advertised by every node).
        if (have === undefined)
          byPrefix.set(h.prefix, { prefix: h.prefix, reason: "local-endpoint", service: key });
      }
    }
  }
  const prefixes = [...byPrefix.values()].sort((a, b) =>
    a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : 0,
  );
  return {
    prefixes,
    ranges: [...rangesOf["cluster-ips"], ...rangesOf["external-ips"], ...rangesOf["load-balancer-ips"]],
    invalid,
  };
}

/** True when `prefix` lies inside one of `ranges` (a service prefix another node advertises). */
export function isServicePrefix(prefix: string, ranges: readonly IpCidr[]): boolean {
  const c = tryParseCidr(prefix);
  return c !== undefined && ranges.some((r) => r.version === c.version && cidrContainsCidr(r, c));
}
