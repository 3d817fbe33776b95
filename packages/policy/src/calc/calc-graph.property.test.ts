import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { finalState, opsArb, WORKLOADS } from "../__tests__/arbitraries.js";
import { createEvaluator } from "../eval/evaluator.js";
import { keyOf, type PolicyModelResource, resourceKeyString } from "../model/resources.js";
import { type CalcGraphOptions, createCalcGraph } from "./calc-graph.js";
import { evaluateMirror } from "./mirror-evaluate.js";
import { createStreamMirror, type StreamMirror } from "./stream-mirror.js";

const keyString = (r: PolicyModelResource) => resourceKeyString(keyOf(r));

function incremental(ops: Parameters<typeof finalState>[0], options: CalcGraphOptions) {
  const graph = createCalcGraph(options);
  const mirror = createStreamMirror();
  const state = finalState(
    ops,
    keyString,
    (op) => {
      if (op.upsert !== undefined) graph.upsert(op.upsert);
      else if (op.remove !== undefined) graph.remove(op.remove);
      else mirror.apply(graph.flush());
    },
    keyOf,
  );
  graph.markInSync();
  mirror.apply(graph.flush());
  // A flush with nothing changed must be empty.
  expect(graph.flush()).toEqual([]);
  return { state, mirror };
}

function fromScratch(state: Map<string, PolicyModelResource>, options: CalcGraphOptions): StreamMirror {
  const graph = createCalcGraph(options);
  for (const r of state.values()) graph.upsert(r);
  graph.markInSync();
  const mirror = createStreamMirror();
  mirror.apply(graph.flush());
  return mirror;
}

describe("calculation graph (fast-check)", () => {
  for (const options of [{ nodeName: "n1" }, {}] as const) {
    it(`incremental updates equal a from-scratch calculation (${options.nodeName === undefined ? "all endpoints local" : "node n1"})`, () => {
      fc.assert(
        fc.property(opsArb, (ops) => {
          const { state, mirror } = incremental(ops, options);
          expect(mirror.inSync).toBe(true);
          expect(mirror.snapshot()).toEqual(fromScratch(state, options).snapshot());
        }),
        { numRuns: 250 },
      );
    });
  }

  it("the rendered stream judges packets exactly as the reference evaluator", () => {
    const ips = [
      ...Array.from({ length: WORKLOADS }, (_, i) => [0, 1, 2, 3].map((o) => `10.0.${o}.${i + 1}`)).flat(),
      "10.9.0.1",
      "10.9.0.2",
      "10.0.0.20",
      "8.8.8.8",
    ];
    const packets = [
      { protocol: "TCP", dstPort: 80 },
      { protocol: "TCP", dstPort: 8050 },
      { protocol: "UDP", dstPort: 53 },
      { protocol: "TCP", dstPort: 22 },
      { protocol: "ICMP", icmp: { type: 8, code: 0 } },
      { protocol: 132, dstPort: 443 },
    ] as const;
    fc.assert(
      fc.property(opsArb, fc.nat(1000), (ops, seed) => {
        const { state, mirror } = incremental(ops, {});
        const evaluator = createEvaluator(state.values());
        for (let n = 0; n < 12; n++) {
          const src = ips[(seed + n * 7) % ips.length]!;
          const dst = ips[(seed * 3 + n * 5 + 1) % ips.length]!;
          if (src === dst) continue;
          const pk = packets[(seed + n) % packets.length]!;
          const ev = evaluator.evaluate({
            ...pk,
            srcPort: 1234,
            source: { ip: src },
            destination: { ip: dst },
          });
          const wire = evaluateMirror(mirror, { ...pk, srcPort: 1234, srcIp: src, dstIp: dst });
          expect(wire, ev.explanation).toBe(ev.verdict);
        }
      }),
      { numRuns: 250 },
    );
  });
});
