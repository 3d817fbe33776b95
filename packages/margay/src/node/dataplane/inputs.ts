/**
 * What the pipeline watches and how each syncer event becomes input of the policy calc graph and of the
 * route calculator. Kept apart from the pipeline's lifecycle so the translation can be tested alone.
 *
 * @packageDocumentation
 */
import { isValidInterfaceName, type Logger, type NodeAddress, type NodeSpec } from "@margay/api";
import type { SyncerEvent } from "@margay/datastore";
import { IpamKind } from "@margay/ipam";
import type { CalcGraph, PolicyModelKind, PolicyModelResource } from "@margay/policy";
import {
  isRoutingError,
  type RouteCalculator,
  type RoutingChange,
  type RoutingUpdate,
} from "@margay/routing";
import type { NodeAddresses } from "../context.js";

// A record, not a list, so the compiler fails here when @margay/policy adds a kind the graph reads.
const POLICY_KIND_RECORD: Readonly<Record<PolicyModelKind, true>> = {
  Tier: true,
  NetworkPolicy: true,
  GlobalNetworkPolicy: true,
  Profile: true,
  NetworkSet: true,
  GlobalNetworkSet: true,
  WorkloadEndpoint: true,
  HostEndpoint: true,
};

/** The kinds the policy calc graph reads (every {@link PolicyModelKind}). */
export const PIPELINE_POLICY_KINDS: readonly PolicyModelKind[] = Object.freeze(
  Object.keys(POLICY_KIND_RECORD) as PolicyModelKind[],
);

/** The kinds the route calculator reads besides WorkloadEndpoint: pools, nodes, IPAM blocks, affinities. */
export const PIPELINE_ROUTE_KINDS: readonly string[] = Object.freeze([
  IpamKind.Pool,
  "Node",
  IpamKind.Block,
  IpamKind.Affinity,
]);

/** Every kind the pipeline's one syncer follows. */
export const PIPELINE_KINDS: readonly string[] = Object.freeze([
  ...PIPELINE_POLICY_KINDS,
  ...PIPELINE_ROUTE_KINDS,
]);

const POLICY_KIND_SET: ReadonlySet<string> = new Set(PIPELINE_POLICY_KINDS);

/** The pipeline key of a WorkloadEndpoint: `<namespace>/<name>` (docs/node-agent plan). */
export function endpointKey(namespace: string | undefined, name: string): string {
  return `${namespace ?? ""}/${name}`;
}

/** Options of {@link createPipelineInputs}. */
export interface PipelineInputsOptions {
  readonly nodeName: string;
  /** The addresses the agent chose: this node's underlay until its Node resource names some. */
  readonly addresses?: NodeAddresses | undefined;
  readonly calcGraph: CalcGraph;
  readonly routes: RouteCalculator;
  readonly log: Logger;
}

/** Feeds syncer events (and BGP-learned routes) into the calc graph and the route calculator. */
export interface PipelineInputs {
  /**
   * Applies one syncer event. Returns the route calculator's diff. A malformed object is logged and
   * treated as absent; nothing throws.
   */
  apply(event: SyncerEvent): RoutingUpdate[];
  /** Applies BGP-learned route changes one by one (a malformed one is logged and skipped). */
  learned(changes: readonly RoutingChange[]): RoutingUpdate[];
  /** Route changes rejected so far (malformed inputs), for tests and metrics. */
  readonly rejected: number;
}

interface StoredLike {
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string | undefined };
  readonly spec?: unknown;
}

/** Creates the translation of syncer events into calc-graph and route-calculator input. */
export function createPipelineInputs(options: PipelineInputsOptions): PipelineInputs {
  const { nodeName, calcGraph, routes, log } = options;
  const blockCidrs = new Map<string, string>();
  const routedEndpoints = new Set<string>();
  let rejected = 0;

  // This node as the agent sees it before (or without) its Node resource: the chosen underlay addresses,
  // so host routes and CrossSubnet decisions do not wait for registration.
  const fallbackAddresses: NodeAddress[] = [];
  if (options.addresses?.ipv4 !== undefined)
    fallbackAddresses.push({ address: options.addresses.ipv4, type: "CalicoNodeIP" });
  if (options.addresses?.ipv6 !== undefined)
    fallbackAddresses.push({ address: options.addresses.ipv6, type: "CalicoNodeIP" });
  const ownFallback: NodeSpec | null = fallbackAddresses.length > 0 ? { addresses: fallbackAddresses } : null;

  const ownNode = (spec: NodeSpec | null): NodeSpec | null => {
    if (spec === null) return ownFallback;
    const hasAddress =
      spec.bgp?.ipv4Address !== undefined ||
      spec.bgp?.ipv6Address !== undefined ||
      (spec.addresses ?? []).some((a) => a.type === "CalicoNodeIP" || a.type === "InternalIP");
    if (hasAddress || ownFallback === null) return spec;
    return { ...spec, addresses: [...(spec.addresses ?? []), ...fallbackAddresses] };
  };

  /** Applies one change; a malformed one is logged and its key removed (treated as absent). */
  const route = (change: RoutingChange, removal: RoutingChange | undefined): RoutingUpdate[] => {
    try {
      return routes.apply(change);
    } catch (e) {
      if (!isRoutingError(e)) throw e;
      rejected++;
      log.warn(
        { change: change.kind, field: e.details.field, code: e.code, error: e.message },
        "route input invalid; treated as absent",
      );
      return removal === undefined ? [] : routes.apply(removal);
    }
  };

  const routing = (event: SyncerEvent & { type: "upsert" | "delete" }): RoutingUpdate[] => {
    const { kind, key } = event;
    const object = event.type === "upsert" ? (event.object as StoredLike) : undefined;
    const spec = object?.spec as Record<string, unknown> | undefined;
    switch (kind) {
      case IpamKind.Pool: {
        const removal: RoutingChange = { kind: "pool", name: key.name, pool: null };
        if (spec === undefined) return route(removal, undefined);
        return route({ kind: "pool", name: key.name, pool: spec as never }, removal);
      }
      case "Node": {
        const own = key.name === nodeName;
        const base = spec === undefined ? null : (spec as NodeSpec);
        const node = own ? ownNode(base) : base;
        const removal: RoutingChange = { kind: "node", name: key.name, node: own ? ownFallback : null };
        if (node === null) return route(removal, undefined);
        return route({ kind: "node", name: key.name, node }, removal);
      }
      case IpamKind.Block: {
        const previous = blockCidrs.get(key.name);
        const out: RoutingUpdate[] = [];
        const cidr = typeof spec?.cidr === "string" ? spec.cidr : undefined;
        if (previous !== undefined && previous !== cidr) {
          out.push(...route({ kind: "block", cidr: previous, block: null }, undefined));
          blockCidrs.delete(key.name);
        }
        if (spec === undefined) return out;
        if (cidr === undefined) {
          rejected++;
          log.warn({ name: key.name }, "IPAM block without a CIDR; ignored");
          return out;
        }
        blockCidrs.set(key.name, cidr);
        out.push(
          ...route({ kind: "block", cidr, block: spec as never }, { kind: "block", cidr, block: null }),
        );
        return out;
      }
      case IpamKind.Affinity: {
        const removal: RoutingChange = { kind: "affinity", name: key.name, affinity: null };
        if (spec === undefined) return route(removal, undefined);
        return route({ kind: "affinity", name: key.name, affinity: spec as never }, removal);
      }
      case "WorkloadEndpoint": {
        const id = endpointKey(key.namespace, key.name);
        const removal: RoutingChange = { kind: "endpoint", key: id, endpoint: null };
        // Only this node's endpoints get device routes; the others only feed policy (IP sets).
        if (spec === undefined || spec.node !== nodeName) {
          if (!routedEndpoints.delete(id)) return [];
          return route(removal, undefined);
        }
        routedEndpoints.add(id);
        return route({ kind: "endpoint", key: id, endpoint: spec as never }, removal);
      }
      default:
        return [];
    }
  };

  const policy = (event: SyncerEvent & { type: "upsert" | "delete" }): void => {
    if (!POLICY_KIND_SET.has(event.kind)) return;
    if (event.type === "upsert") {
      const spec = (event.object as StoredLike).spec as
        | { node?: unknown; interfaceName?: unknown }
        | undefined;
      // The driver refuses a whole batch over one local endpoint it cannot name: such an endpoint is
      // treated as absent (its interface, if any, stays failed closed) instead of wedging the dataplane.
      if (
        event.kind === "WorkloadEndpoint" &&
        spec?.node === nodeName &&
        (typeof spec.interfaceName !== "string" || !isValidInterfaceName(spec.interfaceName))
      ) {
        rejected++;
        log.warn(
          { namespace: event.key.namespace, name: event.key.name, interfaceName: spec.interfaceName },
          "workload endpoint has an invalid interface name; treated as absent",
        );
        const { kind, name, namespace } = event.key;
        calcGraph.remove({ kind: kind as PolicyModelKind, name, namespace });
        return;
      }
      calcGraph.upsert(event.object as unknown as PolicyModelResource);
    } else {
      const { kind, name, namespace } = event.key;
      calcGraph.remove({ kind: kind as PolicyModelKind, name, namespace });
    }
  };

  if (ownFallback !== null) routes.apply({ kind: "node", name: nodeName, node: ownFallback });

  return {
    apply(event) {
      if (event.type === "in-sync") return [];
      try {
        policy(event);
      } catch (e) {
        // The calc graph turns bad resources into "absent" itself; anything else is a bug worth a record,
        // not a crash of the agent.
        rejected++;
        log.error(
          { kind: event.kind, name: event.key.name, namespace: event.key.namespace, err: e },
          "policy calculation failed on a resource; skipped",
        );
      }
      try {
        return routing(event);
      } catch (e) {
        rejected++;
        log.error(
          { kind: event.kind, name: event.key.name, namespace: event.key.namespace, err: e },
          "route calculation failed on a resource; skipped",
        );
        return [];
      }
    },
    learned(changes) {
      const out: RoutingUpdate[] = [];
      for (const change of changes) {
        if (change?.kind !== "learned") {
          rejected++;
          log.warn(
            { change: (change as { kind?: unknown } | null)?.kind },
            "learned route change of another kind; ignored",
          );
          continue;
        }
        out.push(...route(change, undefined));
      }
      return out;
    },
    get rejected() {
      return rejected;
    },
  };
}
