/**
 * The seams between the node agent's parts. The composition root (`agent.ts`) builds one
 * {@link AgentContext} and hands it to each part; parts talk to each other only through the interfaces
 * declared here, so each can be tested alone.
 *
 * @packageDocumentation
 */
import type { Logger } from "@margay/api";
import type { RouteSideUpdate } from "@margay/dataplane-contract";
import type { Datastore } from "@margay/datastore";
import type { RoutingChange } from "@margay/routing";
import type { Registry } from "prom-client";
import type { AgentConfig } from "./config/types.js";

/** One part's health. `reason` says why it is not live or not ready, in words an operator can act on. */
export interface ComponentHealth {
  readonly live: boolean;
  readonly ready: boolean;
  readonly reason?: string | undefined;
}

/** The agent's health: each part reports; `/livez` and `/readyz` read the aggregate. */
export interface Health {
  /** Sets (replaces) `component`'s health. */
  report(component: string, health: ComponentHealth): void;
  /** Forgets a component (e.g. BGP when the backend changes to vxlan). */
  remove(component: string): void;
  /** Live if every component is live; ready if every component is ready. */
  snapshot(): {
    readonly live: boolean;
    readonly ready: boolean;
    readonly components: Readonly<Record<string, ComponentHealth>>;
  };
}

/** The addresses the agent chose for its node (after autodetection), with how it chose them. */
export interface NodeAddresses {
  /** IPv4 underlay address with prefix length, e.g. `10.77.0.1/24`. */
  readonly ipv4: string | undefined;
  readonly ipv6: string | undefined;
  /** The underlay interface holding the IPv4 (else IPv6) address, when known. */
  readonly interface: string | undefined;
  /** That interface's MTU, when known. */
  readonly interfaceMtu: number | undefined;
}

/** What every part receives. */
export interface AgentContext {
  readonly config: AgentConfig;
  readonly datastore: Datastore;
  /** pino logger; each part takes a child with `component`. */
  readonly logger: Logger;
  /** The one prom-client registry served on `/metrics`. */
  readonly metrics: Registry;
  readonly health: Health;
  /** Aborted when the agent stops. */
  readonly signal: AbortSignal;
}

/**
 * The dataplane pipeline (datastore syncer → policy calc graph + route calculator → driver). Other parts
 * use it to wait for their writes to be programmed, to feed BGP-learned routes in, and to see the route
 * side of what is programmed (BGP exports own blocks and borrowed addresses from it).
 */
export interface DataplanePipeline {
  /** True once the first in-sync has been applied by the driver. */
  readonly inSync: boolean;
  /**
   * Resolves once the driver has applied a batch containing the WorkloadEndpoint `key`
   * (`<namespace>/<name>`) at `revision` or later (its routes and policy are programmed), or its
   * deletion when `deleted` is set. Rejects when `signal` aborts or the pipeline stops.
   */
  waitForEndpoint(
    key: string,
    revision: string,
    options?: { readonly deleted?: boolean; readonly signal?: AbortSignal },
  ): Promise<void>;
  /** Feeds routes learned from BGP peers (kind `learned`) into the route calculator. */
  learned(changes: readonly RoutingChange[]): void;
  /**
   * Called after each batch the driver applied, with the route-side updates of that batch (the first call
   * carries the full current route set). Returns an unsubscribe function.
   */
  onRoutes(listener: (updates: readonly RouteSideUpdate[]) => void): () => void;
  /** Current programmed route set, keyed by destination. */
  routes(): ReadonlyMap<string, RouteSideUpdate>;
  /** Stops the syncer and the driver. `teardown: false` (default) leaves routes and rules in place. */
  close(options?: { readonly teardown?: boolean }): Promise<void>;
}
