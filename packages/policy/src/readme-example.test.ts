import { readFileSync } from "node:fs";
import { expect, it } from "vitest";

// README example: start
import { API_VERSION } from "@margay/api";
import {
  convertNamespace,
  convertNetworkPolicy,
  createEvaluator,
  type PolicyModelResource,
} from "@margay/policy";

const pod = (name: string, ip: string): PolicyModelResource => ({
  apiVersion: API_VERSION,
  kind: "WorkloadEndpoint",
  metadata: { name, namespace: "shop", labels: { app: name, "projectcalico.org/orchestrator": "k8s" } },
  spec: { node: "node-1", interfaceName: `cali-${name}`, ipNetworks: [`${ip}/32`], profiles: ["kns.shop"] },
});

const evaluator = createEvaluator([
  convertNamespace({ metadata: { name: "shop" } }),
  pod("web", "10.0.0.10"),
  pod("db", "10.0.0.20"),
  convertNetworkPolicy({
    metadata: { name: "db-from-web", namespace: "shop" },
    spec: {
      podSelector: { matchLabels: { app: "db" } },
      ingress: [{ from: [{ podSelector: { matchLabels: { app: "web" } } }], ports: [{ port: 5432 }] }],
    },
  }),
]);

const result = evaluator.evaluate({
  source: { workload: "shop/web" },
  destination: { workload: "shop/db" },
  protocol: "TCP",
  dstPort: 6379,
});
console.log(result.verdict); // "deny"
console.log(result.explanation);
// README example: end

it("runs the README example, and the README shows exactly this code", () => {
  expect(result.verdict).toBe("deny");
  expect(result.ingress?.decision).toEqual({ by: "tier-default", tier: "default", action: "deny" });
  expect(result.explanation).toContain("destination port 6379 is not in [5432]");
  const source = readFileSync(new URL("./readme-example.test.ts", import.meta.url), "utf8");
  const code = source.split("// README example: start\n")[1]!.split("// README example: end")[0]!;
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  expect(readme).toContain(code.trim());
});
