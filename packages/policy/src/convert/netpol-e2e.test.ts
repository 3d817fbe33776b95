import { describe, expect, it } from "vitest";
import { evaluateMirror } from "../calc/mirror-evaluate.js";
import { createCalcGraph } from "../calc/calc-graph.js";
import { createStreamMirror } from "../calc/stream-mirror.js";
import { createEvaluator } from "../eval/evaluator.js";
import { keyOf, type PolicyModelResource, resourceKeyString } from "../model/resources.js";
import { NETPOL_CASES, probePairs } from "../__tests__/netpol-cases.js";
import { ALL_PODS, podId, podIp, world } from "../__tests__/netpol-world.js";
import { convertNetworkPolicy } from "./network-policy.js";

describe("Kubernetes e2e network-policy truth tables (conversion + reference evaluator + calc graph)", () => {
  it("has at least 25 re-encoded cases", () => {
    expect(NETPOL_CASES.length).toBeGreaterThanOrEqual(25);
  });

  for (const c of NETPOL_CASES) {
    it(c.name, () => {
      // One graph across all steps: each step is applied as a diff, so updates are exercised too.
      const graph = createCalcGraph();
      const mirror = createStreamMirror();
      let previous = new Map<string, PolicyModelResource>();
      for (const [stepIndex, step] of c.steps.entries()) {
        // Every rule of the vectors must convert: a dropped rule would make a case meaningless.
        const strict = {
          onInvalidRule: (e: unknown) => {
            throw e;
          },
        };
        const resources = [
          ...world(step.labels),
          ...step.policies.map((p) => convertNetworkPolicy(p, strict)),
        ];
        const next = new Map(resources.map((r) => [resourceKeyString(keyOf(r)), r]));
        for (const [k, r] of next) if (JSON.stringify(previous.get(k)) !== JSON.stringify(r)) graph.upsert(r);
        for (const [k, r] of previous) if (!next.has(k)) graph.remove(keyOf(r));
        previous = next;
        if (stepIndex === 0) graph.markInSync();
        mirror.apply(graph.flush());

        const evaluator = createEvaluator(resources);
        for (const probe of step.probes) {
          const wrong: string[] = [];
          for (const [from, to, allowed] of probePairs(ALL_PODS, probe)) {
            const packet = { protocol: probe.protocol, srcPort: 40000, dstPort: probe.port } as const;
            const ev = evaluator.evaluate({
              ...packet,
              source: { workload: podId(from) },
              destination: { workload: podId(to) },
            });
            if ((ev.verdict === "allow") !== allowed) {
              wrong.push(
                `evaluator ${from} -> ${to} ${probe.protocol}/${probe.port}: expected ${allowed ? "allow" : "deny"}\n${ev.explanation}`,
              );
            }
            const wire = evaluateMirror(mirror, { ...packet, srcIp: podIp(from), dstIp: podIp(to) });
            if ((wire === "allow") !== allowed) {
              wrong.push(
                `calc graph ${from} -> ${to} ${probe.protocol}/${probe.port}: expected ${allowed ? "allow" : "deny"}, got ${wire}`,
              );
            }
          }
          expect(wrong, `step ${stepIndex}`).toEqual([]);
        }
      }
      expect(mirror.inSync).toBe(true);
    });
  }
});
