/**
 * The demo's story as data: which pods exist (two tenants, three tiers), the zero-trust policies applied
 * to them, and the verdict every cell of the connectivity matrix must have at each step. Pure: no I/O,
 * so the expected matrices are checked by unit tests and the runner only measures and compares.
 *
 * @packageDocumentation
 */

/** The tenants (Kubernetes namespaces) of the demo. */
export const DEMO_TENANTS = ["tenant-a", "tenant-b"] as const;
/** The application tiers, in the order traffic may flow (frontend → backend → database). */
export const DEMO_TIERS = ["frontend", "backend", "database"] as const;

/** One pod of the demo before it exists: identity, labels and the host it is placed on. */
export interface DemoPodSpec {
  readonly namespace: string;
  readonly name: string;
  /** Index into the lab's hosts. */
  readonly hostIndex: number;
  readonly labels: Readonly<Record<string, string>>;
}

/** `namespace/name`, as margayctl names pods. */
export const podId = (p: { readonly namespace: string; readonly name: string }): string =>
  `${p.namespace}/${p.name}`;

/** Six pods: each tenant has one pod per tier, spread round-robin over `hosts` hosts. */
export function demoPods(hosts = 3): DemoPodSpec[] {
  const out: DemoPodSpec[] = [];
  for (const namespace of DEMO_TENANTS)
    for (const tier of DEMO_TIERS)
      out.push({ namespace, name: tier, hostIndex: out.length % hosts, labels: { app: "shop", tier } });
  return out;
}

/** The steps at which the matrix is measured. */
export type DemoPhase = "open" | "zero-trust" | "relabeled" | "vxlan";

/** What a cell of the matrix is: a verdict, or the pod to itself (not measured). */
export type CellVerdict = "allow" | "deny" | "self";

/** A matrix: rows are sources, columns destinations, both in `pods` order. */
export interface Matrix {
  readonly pods: readonly string[];
  readonly cells: readonly (readonly CellVerdict[])[];
}

/** The pod relabeled by the demo and its new label: it leaves the backend tier. */
export const RELABEL = Object.freeze({
  namespace: "tenant-a",
  name: "backend",
  key: "tier",
  value: "quarantine",
});

/** Labels of `pod` at `phase` (the relabeled pod carries its new tier from then on). */
export function labelsAt(pod: DemoPodSpec, phase: DemoPhase): Readonly<Record<string, string>> {
  if (
    (phase === "relabeled" || phase === "vxlan") &&
    pod.namespace === RELABEL.namespace &&
    pod.name === RELABEL.name
  )
    return { ...pod.labels, [RELABEL.key]: RELABEL.value };
  return pod.labels;
}

/**
 * The verdict the policies of {@link policyManifests} give to TCP from `src` to `dst`: before policy every
 * pod reaches every other; afterwards only frontend → backend and backend → database inside one tenant.
 */
export function expectedVerdict(src: DemoPodSpec, dst: DemoPodSpec, phase: DemoPhase): CellVerdict {
  if (podId(src) === podId(dst)) return "self";
  if (phase === "open") return "allow";
  if (src.namespace !== dst.namespace) return "deny";
  const s = labelsAt(src, phase).tier;
  const d = labelsAt(dst, phase).tier;
  return (s === "frontend" && d === "backend") || (s === "backend" && d === "database") ? "allow" : "deny";
}

/** The expected matrix of `pods` at `phase`. */
export function expectedMatrix(pods: readonly DemoPodSpec[], phase: DemoPhase): Matrix {
  return {
    pods: pods.map(podId),
    cells: pods.map((s) => pods.map((d) => expectedVerdict(s, d, phase))),
  };
}

/** Cells where `measured` differs from `expected` (same pod order), as `src → dst: expected/measured`. */
export function matrixDiff(expected: Matrix, measured: Matrix): string[] {
  const out: string[] = [];
  for (const [i, row] of expected.cells.entries())
    for (const [j, want] of row.entries()) {
      const got = measured.cells[i]?.[j];
      if (got !== want)
        out.push(`${expected.pods[i]} → ${expected.pods[j]}: expected ${want}, measured ${got ?? "nothing"}`);
    }
  return out;
}

/** Cells that differ between two matrices of the same pods, as `[row, column]` pairs. */
export function changedCells(before: Matrix, after: Matrix): [number, number][] {
  const out: [number, number][] = [];
  for (const [i, row] of before.cells.entries())
    for (const [j, v] of row.entries()) if (after.cells[i]?.[j] !== v) out.push([i, j]);
  return out;
}

/** The Kubernetes Namespaces of the tenants (converted to their profiles with `margayctl convert`). */
export function namespaceManifests(): string {
  return DEMO_TENANTS.map(
    (ns) => `apiVersion: v1
kind: Namespace
metadata:
  name: ${ns}
  labels:
    tenant: ${ns}
`,
  ).join("---\n");
}

/**
 * The Kubernetes NetworkPolicy of each tenant (converted with `margayctl convert`): the database accepts
 * TCP from the backend of its own namespace only. It lands in the default tier, ahead of the default deny.
 */
export function kubernetesPolicyManifests(port: number): string {
  return DEMO_TENANTS.map(
    (ns) => `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: database-from-backend
  namespace: ${ns}
spec:
  podSelector:
    matchLabels: {tier: database}
  policyTypes: [Ingress]
  ingress:
    - from:
        - podSelector:
            matchLabels: {tier: backend}
      ports:
        - port: ${port}
          protocol: TCP
`,
  ).join("---\n");
}

/**
 * The Margay zero-trust policies, applied with `margayctl apply`:
 * - tier `tenants` (order 100): in each tenant, ingress from its own namespace passes on, the rest is denied;
 * - tier `app` (order 200): frontend may open TCP to backend, backend to database (egress and ingress);
 * - the default tier (last) ends with `default-deny`, a global policy selecting every endpoint with no
 *   rules: whatever no earlier tier allowed is dropped, both directions.
 */
export function policyManifests(port: number): string {
  const isolation = DEMO_TENANTS.map(
    (ns) => `apiVersion: margay.io/v1
kind: NetworkPolicy
metadata:
  name: tenants.isolation
  namespace: ${ns}
spec:
  tier: tenants
  order: 10
  selector: all()
  types: [Ingress]
  ingress:
    - action: Pass
      source:
        selector: all()
    - action: Deny
`,
  );
  return [
    `apiVersion: margay.io/v1
kind: Tier
metadata:
  name: tenants
spec:
  order: 100
`,
    `apiVersion: margay.io/v1
kind: Tier
metadata:
  name: app
spec:
  order: 200
`,
    ...isolation,
    `apiVersion: margay.io/v1
kind: GlobalNetworkPolicy
metadata:
  name: app.frontend
spec:
  tier: app
  order: 10
  selector: tier == 'frontend'
  types: [Egress]
  egress:
    - action: Allow
      protocol: TCP
      destination:
        selector: tier == 'backend'
        ports: [${port}]
`,
    `apiVersion: margay.io/v1
kind: GlobalNetworkPolicy
metadata:
  name: app.backend
spec:
  tier: app
  order: 20
  selector: tier == 'backend'
  types: [Ingress, Egress]
  ingress:
    - action: Allow
      protocol: TCP
      source:
        selector: tier == 'frontend'
      destination:
        ports: [${port}]
  egress:
    - action: Allow
      protocol: TCP
      destination:
        selector: tier == 'database'
        ports: [${port}]
`,
    `apiVersion: margay.io/v1
kind: GlobalNetworkPolicy
metadata:
  name: default-deny
spec:
  tier: default
  order: 10000
  selector: all()
  types: [Ingress, Egress]
`,
  ].join("---\n");
}

/** The IPPool the agents create (`MARGAY_IPV4POOL_*`), with `vxlanMode` as given. */
export function poolManifest(
  name: string,
  cidr: string,
  blockSize: number,
  vxlanMode: "Never" | "Always",
): string {
  return `apiVersion: margay.io/v1
kind: IPPool
metadata:
  name: ${name}
spec:
  cidr: ${cidr}
  blockSize: ${blockSize}
  ipipMode: Never
  vxlanMode: ${vxlanMode}
  natOutgoing: true
  nodeSelector: all()
`;
}
