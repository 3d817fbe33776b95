/**
 * Minimal tour of @margay/api: read a Calico manifest, validate, default, select, write YAML.
 * Run from the repository root after a build: `npx tsx packages/api/examples/quick-start.ts`.
 */
import {
  isManifestError,
  isValidationError,
  parseManifests,
  parseSelector,
  toYAML,
  validateResource,
  withDefaults,
} from "@margay/api";

// 1. Read manifests: Margay or Calico documents, several per file.
const { items } = parseManifests(`
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pool-a
spec:
  cidr: 10.244.0.0/16
  vxlanMode: CrossSubnet
  natOutgoing: true
---
apiVersion: margay.io/v1
kind: GlobalNetworkPolicy
metadata:
  name: allow-dns
spec:
  selector: has(app)
  egress:
    - action: Allow
      protocol: UDP
      destination:
        selector: k8s-app == 'kube-dns'
        ports: [53]
`);
for (const item of items) {
  const origin = item.convertedFrom ? ` (converted from ${item.convertedFrom.kind})` : "";
  console.log(
    `document ${item.documentIndex}: ${item.resource.kind}/${item.resource.metadata.name}${origin}`,
  );
}

// 2. Defaults are a separate, explicit step.
const pool = withDefaults(items[0]!.resource);
console.log("pool spec with defaults:", pool.spec);

// 3. Validation names the exact path of every problem.
try {
  validateResource({
    apiVersion: "margay.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: "web", namespace: "prod" },
    spec: { ingress: [{ action: "Allow", protocol: "TCP", destination: { ports: [80, "9000:8000"] } }] },
  });
} catch (e) {
  if (!isValidationError(e)) throw e;
  for (const issue of e.issues) console.log(`invalid: ${issue.path}: ${issue.message}`);
}

// 4. Selectors: Calico syntax and semantics, canonical form and stable id.
const sel = parseSelector("app == 'web' && env not in {'dev', 'test'}");
console.log(sel.canonical, sel.id);
console.log("matches {app: web}:", sel.matches({ app: "web" }));
console.log("restrictions:", Object.fromEntries(sel.labelRestrictions()));

// 5. Write YAML (parseManifests reads it back unchanged).
console.log(toYAML(pool));

// Errors in manifests name the document (and line).
try {
  parseManifests("apiVersion: projectcalico.org/v3\nkind: BGPFilter\nmetadata: {name: f}\n");
} catch (e) {
  if (!isManifestError(e)) throw e;
  console.log(e.message);
}
