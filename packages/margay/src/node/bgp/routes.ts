/**
 * What BGP exports and imports, apart from any socket: the {@link ExportSet} turns the dataplane's
 * route-side updates into this node's advertised prefixes (its blocks, and its workloads' addresses
 * outside them: borrowed addresses), and the {@link ImportSet} turns the speaker's best paths into
 * `learned` routing changes, leaving out the prefixes this node advertises itself.
 *
 * @packageDocumentation
 */
import { cidrContainsCidr, type IpCidr, tryParseCidr } from "@margay/api";
import type { RouteSideUpdate } from "@margay/dataplane-contract";
import type { RoutingChange } from "@margay/routing";

/** Prefixes to start and stop advertising. */
export interface ExportDiff {
  readonly originate: readonly string[];
  readonly withdraw: readonly string[];
}

/**
 * This node's advertised prefixes, kept from the dataplane's route side: each `local-block` route (a
 * blackhole for a block affine to this node) is one of our blocks; each `local-workload` route not inside
 * one of our blocks is a borrowed address (`/32`, `/128`), advertised alone, as Calico's BIRD filters do.
 */
export class ExportSet {
  readonly #blocks = new Map<string, IpCidr>();
  readonly #workloads = new Map<string, IpCidr>();
  #exported = new Set<string>();

  /** Applies route-side updates; returns what changed in the advertised set. */
  apply(updates: readonly RouteSideUpdate[]): ExportDiff {
    for (const u of updates) {
      if (u.kind === "route-update") {
        this.#blocks.delete(u.dst);
        this.#workloads.delete(u.dst);
        if (u.type !== "local-block" && u.type !== "local-workload") continue;
        const c = tryParseCidr(u.dst);
        if (c === undefined) continue;
        (u.type === "local-block" ? this.#blocks : this.#workloads).set(u.dst, c);
      } else if (u.kind === "route-remove") {
        this.#blocks.delete(u.dst);
        this.#workloads.delete(u.dst);
      }
    }
    return this.#recompute();
  }

  /** Replaces everything with a full route set (e.g. the pipeline's current routes). */
  reset(routes: Iterable<RouteSideUpdate>): ExportDiff {
    this.#blocks.clear();
    this.#workloads.clear();
    return this.apply([...routes]);
  }

  /** True when `prefix` is advertised by this node. */
  has(prefix: string): boolean {
    return this.#exported.has(prefix);
  }

  /** The advertised prefixes, sorted. */
  prefixes(): string[] {
    return [...this.#exported].sort();
  }

  get size(): number {
    return this.#exported.size;
  }

  #recompute(): ExportDiff {
    const next = new Set<string>(this.#blocks.keys());
    const blocks = [...this.#blocks.values()];
    for (const [dst, c] of this.#workloads) {
      if (!blocks.some((b) => b.version === c.version && cidrContainsCidr(b, c))) next.add(dst);
    }
    const originate = [...next].filter((p) => !this.#exported.has(p)).sort();
    const withdraw = [...this.#exported].filter((p) => !next.has(p)).sort();
    this.#exported = next;
    return { originate, withdraw };
  }
}

/** A best path as the speaker reports it (the fields the import side needs). */
export interface BestPathInput {
  readonly prefix: string;
  readonly withdrawn: boolean;
  readonly nextHops: readonly string[];
  /** The peer the path came from; null for our own routes. */
  readonly peer: string | null;
}

interface Learned {
  readonly source: string;
  readonly nextHops: readonly string[];
}

function sameHops(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((h, i) => h === b[i]);
}

/**
 * Routes learned over BGP, as told to the route calculator: one `learned` source per prefix (the peer
 * of the best path), replaced when the best path moves to another peer. Prefixes this node advertises
 * itself are never imported (`isOwn`); when a prefix stops being ours, the speaker's path is imported.
 */
export class ImportSet {
  readonly #best = new Map<string, Learned>();
  readonly #imported = new Map<string, Learned>();

  constructor(private readonly isOwn: (prefix: string) => boolean) {}

  /** A best-path change from the speaker; returns the routing changes to feed to the pipeline. */
  onBestPath(e: BestPathInput): RoutingChange[] {
    if (e.withdrawn || e.peer === null || e.nextHops.length === 0) this.#best.delete(e.prefix);
    else this.#best.set(e.prefix, { source: e.peer, nextHops: [...e.nextHops] });
    return this.reconcile(e.prefix);
  }

  /** Re-evaluates `prefix` (after it became, or stopped being, one of ours). */
  reconcile(prefix: string): RoutingChange[] {
    const want = this.isOwn(prefix) ? undefined : this.#best.get(prefix);
    const have = this.#imported.get(prefix);
    if (want?.source === have?.source && sameHops(want?.nextHops ?? [], have?.nextHops ?? [])) return [];
    const out: RoutingChange[] = [];
    if (have !== undefined && have.source !== want?.source) {
      out.push({ kind: "learned", source: have.source, prefix, nextHops: null });
    }
    if (want === undefined) this.#imported.delete(prefix);
    else {
      this.#imported.set(prefix, want);
      out.push({ kind: "learned", source: want.source, prefix, nextHops: want.nextHops });
    }
    return out;
  }

  /** Re-evaluates every known prefix (after what counts as ours changed wholesale, e.g. service ranges). */
  reconcileAll(): RoutingChange[] {
    const out: RoutingChange[] = [];
    for (const p of new Set([...this.#best.keys(), ...this.#imported.keys()])) out.push(...this.reconcile(p));
    return out;
  }

  /** Withdraws everything imported (the speaker is gone). */
  clear(): RoutingChange[] {
    const out: RoutingChange[] = [...this.#imported].map(([prefix, l]) => ({
      kind: "learned" as const,
      source: l.source,
      prefix,
      nextHops: null,
    }));
    this.#imported.clear();
    this.#best.clear();
    return out;
  }

  /** Number of prefixes imported. */
  get size(): number {
    return this.#imported.size;
  }

  /** Imported prefixes per source peer. */
  countBySource(): Map<string, number> {
    const m = new Map<string, number>();
    for (const l of this.#imported.values()) m.set(l.source, (m.get(l.source) ?? 0) + 1);
    return m;
  }
}
