import type { RouteSideUpdate } from "@margay/dataplane-contract";
import { describe, expect, it } from "vitest";
import { ExportSet, ImportSet } from "./routes.js";

const block = (dst: string): RouteSideUpdate => ({ kind: "route-update", dst, type: "local-block" });
const workload = (dst: string): RouteSideUpdate => ({
  kind: "route-update",
  dst,
  type: "local-workload",
  ifname: "mgy0",
});
const remote = (dst: string): RouteSideUpdate => ({
  kind: "route-update",
  dst,
  type: "remote-block",
  nodes: ["node-2"],
});
const remove = (dst: string): RouteSideUpdate => ({ kind: "route-remove", dst });

describe("ExportSet", () => {
  it("advertises own blocks and borrowed addresses (workloads outside own blocks), nothing remote", () => {
    const x = new ExportSet();
    const d = x.apply([
      block("10.65.1.0/26"),
      workload("10.65.1.5/32"),
      workload("10.65.9.7/32"),
      remote("10.65.2.0/26"),
      block("fd00:65::/122"),
      workload("fd00:65::1/128"),
      workload("fd00:66::9/128"),
      { kind: "in-sync" },
    ]);
    expect(d).toEqual({
      originate: ["10.65.1.0/26", "10.65.9.7/32", "fd00:65::/122", "fd00:66::9/128"],
      withdraw: [],
    });
    expect(x.has("10.65.1.5/32")).toBe(false);
    expect(x.size).toBe(4);
  });

  it("returns diffs: a new block covers a borrowed address; removals withdraw", () => {
    const x = new ExportSet();
    x.apply([workload("10.65.3.4/32")]);
    expect(x.apply([block("10.65.3.0/26")])).toEqual({
      originate: ["10.65.3.0/26"],
      withdraw: ["10.65.3.4/32"],
    });
    expect(x.apply([remove("10.65.3.0/26")])).toEqual({
      originate: ["10.65.3.4/32"],
      withdraw: ["10.65.3.0/26"],
    });
    expect(x.apply([remove("10.65.3.4/32")])).toEqual({ originate: [], withdraw: ["10.65.3.4/32"] });
    expect(x.apply([remove("10.65.3.4/32")])).toEqual({ originate: [], withdraw: [] });
  });

  it("a destination that changes type follows its new type; reset replaces everything", () => {
    const x = new ExportSet();
    x.apply([block("10.65.4.0/26")]);
    expect(x.apply([remote("10.65.4.0/26")])).toEqual({ originate: [], withdraw: ["10.65.4.0/26"] });
    x.apply([block("10.65.5.0/26")]);
    expect(x.reset([block("10.65.6.0/26")])).toEqual({
      originate: ["10.65.6.0/26"],
      withdraw: ["10.65.5.0/26"],
    });
    expect(x.prefixes()).toEqual(["10.65.6.0/26"]);
  });
});

describe("ImportSet", () => {
  it("imports best paths of peers with their next hops; withdrawals remove them", () => {
    const own = new Set<string>();
    const i = new ImportSet((p) => own.has(p));
    expect(
      i.onBestPath({ prefix: "10.65.2.0/26", withdrawn: false, nextHops: ["10.0.0.2"], peer: "10.0.0.2" }),
    ).toEqual([{ kind: "learned", source: "10.0.0.2", prefix: "10.65.2.0/26", nextHops: ["10.0.0.2"] }]);
    // The same path again: nothing to tell.
    expect(
      i.onBestPath({ prefix: "10.65.2.0/26", withdrawn: false, nextHops: ["10.0.0.2"], peer: "10.0.0.2" }),
    ).toEqual([]);
    expect(i.size).toBe(1);
    expect(i.onBestPath({ prefix: "10.65.2.0/26", withdrawn: true, nextHops: [], peer: null })).toEqual([
      { kind: "learned", source: "10.0.0.2", prefix: "10.65.2.0/26", nextHops: null },
    ]);
    expect(i.size).toBe(0);
  });

  it("moves a prefix to the new best peer: the old source is withdrawn, the new one added", () => {
    const i = new ImportSet(() => false);
    i.onBestPath({ prefix: "192.0.2.0/24", withdrawn: false, nextHops: ["10.0.0.2"], peer: "10.0.0.2" });
    expect(
      i.onBestPath({ prefix: "192.0.2.0/24", withdrawn: false, nextHops: ["10.0.0.9"], peer: "10.0.0.9" }),
    ).toEqual([
      { kind: "learned", source: "10.0.0.2", prefix: "192.0.2.0/24", nextHops: null },
      { kind: "learned", source: "10.0.0.9", prefix: "192.0.2.0/24", nextHops: ["10.0.0.9"] },
    ]);
    expect(i.countBySource()).toEqual(new Map([["10.0.0.9", 1]]));
  });

  it("never imports our own prefixes or our own originations; imports once a prefix is no longer ours", () => {
    const own = new Set(["10.65.1.0/26"]);
    const i = new ImportSet((p) => own.has(p));
    expect(
      i.onBestPath({ prefix: "10.65.1.0/26", withdrawn: false, nextHops: ["10.0.0.1"], peer: null }),
    ).toEqual([]);
    expect(
      i.onBestPath({ prefix: "10.65.1.0/26", withdrawn: false, nextHops: ["10.0.0.3"], peer: "10.0.0.3" }),
    ).toEqual([]);
    own.delete("10.65.1.0/26");
    expect(i.reconcile("10.65.1.0/26")).toEqual([
      { kind: "learned", source: "10.0.0.3", prefix: "10.65.1.0/26", nextHops: ["10.0.0.3"] },
    ]);
    own.add("10.65.1.0/26");
    expect(i.reconcile("10.65.1.0/26")).toEqual([
      { kind: "learned", source: "10.0.0.3", prefix: "10.65.1.0/26", nextHops: null },
    ]);
  });

  it("clear withdraws everything imported", () => {
    const i = new ImportSet(() => false);
    i.onBestPath({ prefix: "10.65.2.0/26", withdrawn: false, nextHops: ["10.0.0.2"], peer: "10.0.0.2" });
    expect(i.clear()).toEqual([
      { kind: "learned", source: "10.0.0.2", prefix: "10.65.2.0/26", nextHops: null },
    ]);
    expect(i.size).toBe(0);
  });
});
