/**
 * @margay/policy: tiers, selectors and profiles, explained by the reference evaluator.
 *
 * The model is read from a Margay manifest (what `margayctl apply -f` stores): a `security` tier
 * that isolates tenants and passes the rest on, the `default` tier where a tenant says which of its
 * tiers may talk, and the namespace profile every endpoint falls back to. `evaluate` says, for one
 * packet, which tier, policy and rule decided and why the earlier rules did not match — the same
 * trace `margayctl policy explain` prints from a live datastore.
 *
 * Run: `npx tsx examples/policy-explain.ts` (after `npm run build`); `scripts/examples.test.ts` runs it.
 */
import { parseManifests, withDefaults } from "@margay/api";
import { createEvaluator, type PolicyModelResource } from "@margay/policy";

const manifest = `
apiVersion: margay.io/v1
kind: Tier
metadata: { name: security }
spec: { order: 100 }
---
# Traffic between tenants is denied; the rest is handed to the next tier.
apiVersion: margay.io/v1
kind: GlobalNetworkPolicy
metadata: { name: tenant-isolation }
spec:
  tier: security
  order: 10
  selector: has(tenant)
  types: [Ingress]
  ingress:
    - action: Pass
      source: { selector: tenant == 'shop' }
      destination: { selector: tenant == 'shop' }
    - action: Deny
---
# In the shop: frontend → backend on 8080 only.
apiVersion: margay.io/v1
kind: NetworkPolicy
metadata: { name: backend-ingress, namespace: shop }
spec:
  selector: role == 'backend'
  types: [Ingress]
  ingress:
    - action: Allow
      protocol: TCP
      source: { selector: role == 'frontend' }
      destination: { ports: [8080] }
---
apiVersion: margay.io/v1
kind: Profile
metadata: { name: kns.shop }
spec:
  ingress: [{ action: Allow }]
  egress: [{ action: Allow }]
---
apiVersion: margay.io/v1
kind: Profile
metadata: { name: kns.bank }
spec:
  ingress: [{ action: Allow }]
  egress: [{ action: Allow }]
`;

const endpoint = (namespace: string, name: string, ip: string, labels: Record<string, string>) =>
  ({
    apiVersion: "margay.io/v1",
    kind: "WorkloadEndpoint",
    metadata: { name, namespace, labels },
    spec: {
      node: "host-a",
      interfaceName: `mgy${name}`,
      ipNetworks: [`${ip}/32`],
      profiles: [`kns.${namespace}`],
    },
  }) as PolicyModelResource;

const evaluator = createEvaluator([
  ...parseManifests(manifest).items.map((i) => withDefaults(i.resource) as PolicyModelResource),
  endpoint("shop", "web", "10.244.0.10", { tenant: "shop", role: "frontend" }),
  endpoint("shop", "api", "10.244.0.20", { tenant: "shop", role: "backend" }),
  endpoint("bank", "teller", "10.244.1.10", { tenant: "bank", role: "frontend" }),
]);

const flows = [
  ["shop/web", "shop/api", 8080],
  ["shop/web", "shop/api", 22],
  ["bank/teller", "shop/api", 8080],
] as const;
for (const [from, to, port] of flows) {
  const result = evaluator.evaluate({
    source: { workload: from },
    destination: { workload: to },
    protocol: "TCP",
    dstPort: port,
  });
  console.log(`${from} -> ${to}:${port}  ${result.verdict}`);
  console.log(result.explanation.replace(/^/gm, "    "));
}
