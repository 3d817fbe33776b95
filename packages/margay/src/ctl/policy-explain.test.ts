/**
 * `policy explain` and `policy matrix` agree with `@margay/policy`'s evaluator, and with the expected
 * verdict, on every probe of every case of the project's Kubernetes NetworkPolicy e2e table
 * (packages/policy/src/__tests__/netpol-cases.ts): each step's cluster and policies are applied through
 * margayctl's own `apply` (Kubernetes NetworkPolicies converted on the way), then every ordered pair of
 * pods is explained. In-process through the command functions the binary bundles (5 000+ explanations);
 * a sample of cases also runs through the built binary.
 */

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { toYAML } from "@margay/api";
import { createMemoryDatastore, type Datastore } from "@margay/datastore";
import { convertNetworkPolicy, createEvaluator } from "@margay/policy";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { NETPOL_CASES, probePairs, type Step } from "../../../policy/src/__tests__/netpol-cases.js";
import { ALL_PODS, podId, world } from "../../../policy/src/__tests__/netpol-world.js";
import { requireBuiltBinary, runMargayctl } from "./ctl-harness.js";
import { policyExplain, policyMatrix } from "./commands/policy.js";
import { writeResources } from "./commands/resources.js";
import { CommandContext } from "./context.js";
import type { CtlIo } from "./io.js";
import { PLAIN } from "./output.js";
import type { Session } from "./session.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "margayctl-explain-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A context over an open in-memory datastore, capturing stdout. */
class MemoryContext extends CommandContext {
  readonly #session: Session;
  out = "";
  constructor(ds: Datastore) {
    const io: CtlIo = {
      out: (s) => {
        this.out += s;
      },
      err: () => undefined,
      readStdin: async () => "",
      env: {},
      isTTY: false,
      style: PLAIN,
      cwd: dir,
    };
    super(io, {});
    this.#session = { datastore: ds, type: "memory", target: "test", close: async () => undefined };
  }
  override session(): Promise<Session> {
    return Promise.resolve(this.#session);
  }
  take(): string {
    const o = this.out;
    this.out = "";
    return o;
  }
}

/** The step's manifest: the world as Margay YAML, the policies as the Kubernetes YAML a user applies. */
function stepManifest(step: Step): string {
  return [toYAML(world(step.labels)), ...step.policies.map((p) => stringify(p))].join("---\n");
}

async function applyStep(ds: Datastore, step: Step, name: string): Promise<void> {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, stepManifest(step));
  await writeResources(new MemoryContext(ds), "apply", [file], {});
}

/** The evaluator's verdicts, straight from the resources (conversion by the policy package). */
function evaluatorFor(step: Step) {
  return createEvaluator([...world(step.labels), ...step.policies.map((p) => convertNetworkPolicy(p))]);
}

describe("policy explain agrees with the evaluator on the Kubernetes NetworkPolicy e2e table", () => {
  it("covers the whole table", () => {
    expect(NETPOL_CASES.length).toBeGreaterThanOrEqual(25);
  });

  for (const c of NETPOL_CASES) {
    it(c.name, async () => {
      for (const [stepIndex, step] of c.steps.entries()) {
        const ds = createMemoryDatastore();
        await applyStep(ds, step, `step-${stepIndex}`);
        const ctx = new MemoryContext(ds);
        const evaluator = evaluatorFor(step);
        const wrong: string[] = [];
        for (const probe of step.probes) {
          const port = `${probe.port}/${probe.protocol.toLowerCase()}`;
          await policyMatrix(ctx, [], { port, output: "json" });
          const matrix = JSON.parse(ctx.take()) as { verdicts: Record<string, Record<string, string>> };
          for (const [from, to, allowed] of probePairs(ALL_PODS, probe)) {
            await policyExplain(ctx, { from, to, port, output: "json" });
            const explained = JSON.parse(ctx.take()) as { verdict: string };
            const ev = evaluator.evaluate({
              source: { workload: podId(from) },
              destination: { workload: podId(to) },
              protocol: probe.protocol,
              dstPort: probe.port,
            });
            const expected = allowed ? "allow" : "deny";
            if (
              explained.verdict !== ev.verdict ||
              ev.verdict !== expected ||
              matrix.verdicts[from]?.[to] !== expected
            )
              wrong.push(
                `step ${stepIndex} ${from} -> ${to} ${port}: explain ${explained.verdict}, matrix ${matrix.verdicts[from]?.[to]}, evaluator ${ev.verdict}, table ${expected}`,
              );
          }
          // The words: a denied pair names the policy or says default deny; an allowed one names what allowed it.
          const [from, to, allowed] =
            [...probePairs(ALL_PODS, probe)].find(([, , a]) => !a) ?? [...probePairs(ALL_PODS, probe)][0]!;
          await policyExplain(ctx, { from, to, port });
          const text = ctx.take();
          expect(text.startsWith(allowed ? "ALLOW" : "DENY")).toBe(true);
          if (!allowed)
            expect(text).toMatch(
              /denied (at the end of tier|by rule \d+ of policy)|no policy matched: default deny/,
            );
        }
        expect(wrong).toEqual([]);
      }
    });
  }
});

describe("policy explain through the built binary", () => {
  it("agrees with the evaluator on a sample of the table", { timeout: 180_000 }, async () => {
    requireBuiltBinary();
    const sample = [
      0,
      Math.floor(NETPOL_CASES.length / 3),
      Math.floor((2 * NETPOL_CASES.length) / 3),
      NETPOL_CASES.length - 1,
    ];
    for (const i of sample) {
      const c = NETPOL_CASES[i]!;
      const step = c.steps[0]!;
      const probe = step.probes[0]!;
      const snapshot = join(dir, `case-${i}.json`);
      const ds = createMemoryDatastore({ snapshotPath: snapshot });
      await applyStep(ds, step, `case-${i}`);
      await ds.flush();
      await ds.close();
      const env = { DATASTORE_TYPE: "memory", MARGAY_SNAPSHOT_PATH: snapshot };
      const port = `${probe.port}/${probe.protocol.toLowerCase()}`;
      const r = await runMargayctl(["policy", "matrix", "--port", port, "-o", "json"], { env });
      expect(r.code, r.stderr).toBe(0);
      const matrix = JSON.parse(r.stdout) as { verdicts: Record<string, Record<string, string>> };
      const evaluator = evaluatorFor(step);
      const wrong: string[] = [];
      for (const [from, to, allowed] of probePairs(ALL_PODS, probe)) {
        const ev = evaluator.evaluate({
          source: { workload: podId(from) },
          destination: { workload: podId(to) },
          protocol: probe.protocol,
          dstPort: probe.port,
        });
        if (matrix.verdicts[from]?.[to] !== ev.verdict || ev.verdict !== (allowed ? "allow" : "deny"))
          wrong.push(
            `${c.name}: ${from} -> ${to}: binary ${matrix.verdicts[from]?.[to]}, evaluator ${ev.verdict}`,
          );
      }
      expect(wrong).toEqual([]);
      const [from, to] =
        [...probePairs(ALL_PODS, probe)].find(([, , a]) => !a) ?? [...probePairs(ALL_PODS, probe)][0]!;
      const explained = await runMargayctl(
        ["policy", "explain", "--from", from, "--to", to, "--port", port],
        { env },
      );
      const ev = evaluator.evaluate({
        source: { workload: podId(from) },
        destination: { workload: podId(to) },
        protocol: probe.protocol,
        dstPort: probe.port,
      });
      expect(explained.stdout.split("\n")[0]).toMatch(new RegExp(`^${ev.verdict.toUpperCase()} `));
    }
  });
});

describe("policy explain reads the failsafe ports of AgentConfiguration default", () => {
  const manifest = (failsafe: string | undefined) =>
    [
      "apiVersion: margay.io/v1",
      "kind: HostEndpoint",
      "metadata: {name: node-1-eth0, labels: {role: host}}",
      "spec: {node: node-1, interfaceName: eth0, expectedIPs: [192.0.2.10]}",
      "---",
      "apiVersion: margay.io/v1",
      "kind: GlobalNetworkPolicy",
      "metadata: {name: lock-down}",
      "spec: {selector: has(role), types: [Ingress], ingress: []}",
      ...(failsafe === undefined
        ? []
        : [
            "---",
            "apiVersion: margay.io/v1",
            "kind: AgentConfiguration",
            "metadata: {name: default}",
            `spec: {failsafeInboundHostPorts: ${failsafe}}`,
          ]),
      "",
    ].join("\n");

  for (const [name, failsafe, verdict, words] of [
    ["built-in failsafe tcp/22 lets ssh in", undefined, "ALLOW", "tcp/22 is a failsafe port"],
    ["an empty failsafe list does not", "[]", "DENY", "denied at the end of tier default"],
    ["a configured port does", "[{protocol: TCP, port: 22}]", "ALLOW", "tcp/22 is a failsafe port"],
  ] as const) {
    it(name, async () => {
      const ds = createMemoryDatastore();
      const file = join(dir, `failsafe-${name.length}.yaml`);
      writeFileSync(file, manifest(failsafe));
      await writeResources(new MemoryContext(ds), "apply", [file], {});
      const ctx = new MemoryContext(ds);
      await policyExplain(ctx, { from: "198.51.100.7", to: "hep/node-1-eth0", port: "22/tcp" });
      const text = ctx.take();
      expect(text.startsWith(`${verdict} `), text).toBe(true);
      expect(text).toContain(words);
    });
  }
});
