/**
 * `policy explain` and `policy matrix`: verdicts and their reasons on live datastore data, from
 * `@margay/policy`'s reference evaluator (`createEvaluator`, the evaluator the calculation graph is
 * checked against), with `--with FILE` to judge a change before applying it (nothing is written).
 *
 * @packageDocumentation
 */

import type { StoredObject } from "@margay/datastore";
import {
  createEvaluator,
  type DirectionTrace,
  type Evaluation,
  type EvaluatorOptions,
  type Packet,
  type PeerRef,
  type PolicyDecision,
  type PolicyModelResource,
} from "@margay/policy";
import type { CommandContext } from "../context.js";
import { CtlError, CtlErrorCode, errorCode } from "../errors.js";
import { describeKey, keyOf, parseUserSelector, tryGet } from "./resources.js";
import { loadSources } from "../manifests.js";
import { json, renderTable } from "../output.js";

/** The kinds the evaluator reads. */
export const POLICY_MODEL_KINDS = [
  "Tier",
  "NetworkPolicy",
  "GlobalNetworkPolicy",
  "Profile",
  "WorkloadEndpoint",
  "HostEndpoint",
  "NetworkSet",
  "GlobalNetworkSet",
] as const;

type Wep = StoredObject & { spec?: { pod?: string; workload?: string; ipNetworks?: string[] } };

/** The live model, plus the `--with` overlay (upserts by key). */
export async function loadModel(
  ctx: CommandContext,
  withFiles: readonly string[],
): Promise<{ resources: PolicyModelResource[]; overlay: PolicyModelResource[]; options: EvaluatorOptions }> {
  const overlay: PolicyModelResource[] = [];
  if (withFiles.length > 0) {
    const items = await loadSources(withFiles, ctx.io);
    for (const it of items) {
      if (!(POLICY_MODEL_KINDS as readonly string[]).includes(it.resource.kind))
        throw new CtlError(
          CtlErrorCode.InvalidInput,
          `${it.origin}: --with takes policy-model resources (${POLICY_MODEL_KINDS.join(", ")}), got ${it.resource.kind}`,
        );
      overlay.push(it.resource as PolicyModelResource);
    }
  }
  const { datastore } = await ctx.session();
  const [lists, agent] = await Promise.all([
    Promise.all(POLICY_MODEL_KINDS.map((k) => datastore.list(k))),
    tryGet(datastore, { kind: "AgentConfiguration", name: "default" }),
  ]);
  const options = failsafeOptions(agent);
  const byKey = new Map<string, PolicyModelResource>();
  for (const l of lists)
    for (const o of l.items) byKey.set(describeKey(keyOf(o)), o as unknown as PolicyModelResource);
  const live = [...byKey.values()];
  for (const r of overlay) byKey.set(describeKey(keyOf(r as unknown as StoredObject)), r);
  return { resources: live, overlay: [...byKey.values()], options };
}

type ProtoPort = { protocol?: string; port?: number; net?: string };

/**
 * The failsafe ports the cluster-wide AgentConfiguration (`default`) sets, as the evaluator takes them;
 * unset lists keep the evaluator's defaults (Calico's). Per-node configurations are not read.
 */
export function failsafeOptions(agent: StoredObject | undefined): EvaluatorOptions {
  const spec = (agent as { spec?: Record<string, unknown> } | undefined)?.spec ?? {};
  const convert = (list: unknown) =>
    Array.isArray(list)
      ? (list as ProtoPort[]).map((p) => ({
          protocol: String(p.protocol ?? "TCP").toLowerCase() as "tcp" | "udp" | "sctp",
          port: Number(p.port),
          ...(p.net !== undefined ? { net: p.net } : {}),
        }))
      : undefined;
  const failsafeInbound = convert(spec.failsafeInboundHostPorts);
  const failsafeOutbound = convert(spec.failsafeOutboundHostPorts);
  return {
    ...(failsafeInbound !== undefined ? { failsafeInbound } : {}),
    ...(failsafeOutbound !== undefined ? { failsafeOutbound } : {}),
  };
}

/** The pod name of a workload endpoint: `spec.pod`, `spec.workload`, or the one in Calico's name form. */
export function podName(w: Wep): string {
  if (typeof w.spec?.pod === "string" && w.spec.pod !== "") return w.spec.pod;
  if (typeof w.spec?.workload === "string" && w.spec.workload !== "") return w.spec.workload;
  const m = /-k8s-(.+)-[^-]+$/.exec(w.metadata.name);
  return m?.[1] ?? w.metadata.name;
}

/** `ns/pod`, an address, or `hep/NAME`, as the evaluator's peer reference. */
export function resolvePeer(text: string, resources: readonly PolicyModelResource[], flag: string): PeerRef {
  if (text.startsWith("hep/") || text.startsWith("hostendpoint/")) {
    const name = text.slice(text.indexOf("/") + 1);
    if (!resources.some((r) => r.kind === "HostEndpoint" && r.metadata.name === name))
      throw new CtlError(CtlErrorCode.NotFound, `${flag}: no host endpoint ${JSON.stringify(name)}`);
    return { hostEndpoint: name };
  }
  const slash = text.indexOf("/");
  if (slash < 0) return { ip: text };
  const ns = text.slice(0, slash);
  const pod = text.slice(slash + 1);
  const weps = resources
    .filter(
      (r): r is PolicyModelResource & Wep => r.kind === "WorkloadEndpoint" && r.metadata.namespace === ns,
    )
    .filter((w) => w.metadata.name === pod || podName(w) === pod)
    .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
  if (weps.length === 0)
    throw new CtlError(CtlErrorCode.NotFound, `${flag}: no workload endpoint for pod ${text}`, {
      peer: text,
    });
  return { workload: `${ns}/${weps[0]!.metadata.name}` };
}

/** `80/tcp`, `53/udp`, `tcp`, `icmp`, `sctp/9` too. */
export function parsePort(text: string): { protocol: string; port?: number } {
  const m = /^(?:(\d+)\/([a-z0-9]+)|([a-z0-9]+)\/(\d+)|([a-z][a-z0-9]*)|(\d+))$/i.exec(text.trim());
  if (m === null)
    throw new CtlError(
      CtlErrorCode.Usage,
      `--port: expected PORT/PROTOCOL (80/tcp), PROTOCOL or PORT, got ${JSON.stringify(text)}`,
    );
  const port = m[1] ?? m[4] ?? m[6];
  const protocol = (m[2] ?? m[3] ?? m[5] ?? "tcp").toUpperCase();
  if (port !== undefined) {
    const n = Number(port);
    if (n < 0 || n > 65535) throw new CtlError(CtlErrorCode.Usage, `--port: ${n} is not a port number`);
    return { protocol, port: n };
  }
  return { protocol };
}

function evaluateOrThrow(ev: ReturnType<typeof createEvaluator>, packet: Packet): Evaluation {
  try {
    return ev.evaluate(packet);
  } catch (e) {
    const code = errorCode(e);
    if (code === "unknown-endpoint") throw new CtlError(CtlErrorCode.NotFound, (e as Error).message, {}, e);
    if (code === "invalid-input") throw new CtlError(CtlErrorCode.InvalidInput, (e as Error).message, {}, e);
    throw e;
  }
}

/** A direction's decision in plain words. */
export function decisionWords(d: PolicyDecision): string {
  switch (d.by) {
    case "rule":
      return `${d.action === "allow" ? "allowed" : "denied"} by rule ${d.rule} of ${d.stage === "policy" ? "" : `${d.stage} `}policy ${d.policy} in tier ${d.tier}`;
    case "tier-default":
      return `denied at the end of tier ${d.tier}: a policy of the tier selects this endpoint but none of its rules matched (default deny)`;
    case "profile-rule":
      return `${d.action === "allow" ? "allowed" : "denied"} by rule ${d.rule} of profile ${d.profile} (no policy applied)`;
    case "no-profile":
      return "no policy matched: default deny";
    case "failsafe":
      return `allowed: ${d.protocol}/${d.port} is a failsafe port`;
  }
}

function directionWords(t: DirectionTrace | undefined, label: string, peer: string): string[] {
  if (t === undefined)
    return [`${label}: ${peer} is not a known endpoint: no ${label.toLowerCase()} policy applies`];
  const lines = [`${label} (${t.endpoint}): ${decisionWords(t.decision)}`];
  for (const s of t.steps) {
    const where =
      s.profile !== undefined
        ? `profile ${s.profile}`
        : s.policy !== undefined
          ? `tier ${s.tier ?? "?"}, policy ${s.policy}`
          : s.tier !== undefined
            ? `tier ${s.tier}`
            : s.stage;
    const rule = s.rule !== undefined ? `, rule ${s.rule} (${s.action ?? "?"})` : "";
    lines.push(`  - ${where}${rule}: ${s.outcome}: ${s.reason}`);
  }
  return lines;
}

/** The whole explanation, as printed. */
export function explanationWords(
  ev: Evaluation,
  from: string,
  to: string,
  proto: string,
  port: number | undefined,
): string {
  const head = `${ev.verdict === "allow" ? "ALLOW" : "DENY"} ${proto} ${from} (${ev.source.ip}) -> ${to} (${ev.destination.ip})${port === undefined ? "" : ` port ${port}`}`;
  return [
    head,
    ...directionWords(ev.egress, "Egress", from),
    ...directionWords(ev.ingress, "Ingress", to),
  ].join("\n");
}

/** `policy explain --from X --to Y --port 80/tcp [--with FILE] [-o text|json]`. */
export async function policyExplain(
  ctx: CommandContext,
  opts: { from?: string; to?: string; port?: string; with?: string[]; output?: string; family?: string },
): Promise<void> {
  if (opts.from === undefined || opts.to === undefined)
    throw new CtlError(CtlErrorCode.Usage, "policy explain: --from and --to are required");
  const output = opts.output ?? "text";
  if (output !== "text" && output !== "json")
    throw new CtlError(CtlErrorCode.Usage, `-o: text or json, got ${JSON.stringify(output)}`);
  const { protocol, port } = parsePort(opts.port ?? "tcp");
  const { overlay, options } = await loadModel(ctx, opts.with ?? []);
  const source = resolvePeer(opts.from, overlay, "--from");
  const destination = resolvePeer(opts.to, overlay, "--to");
  const ev = evaluateOrThrow(createEvaluator(overlay, options), {
    source,
    destination,
    protocol,
    ...(port !== undefined ? { dstPort: port } : {}),
    family: opts.family === "6" ? 6 : 4,
  });
  if (output === "json") ctx.io.out(json({ from: opts.from, to: opts.to, protocol, port, ...ev }));
  else ctx.io.out(`${explanationWords(ev, opts.from, opts.to, protocol, port)}\n`);
}

/** `policy matrix [PODS...] [-n NS] [-l SEL] --port 80/tcp [--with FILE] [-o table|json]`. */
export async function policyMatrix(
  ctx: CommandContext,
  pods: readonly string[],
  opts: { port?: string; with?: string[]; output?: string; namespace?: string; selector?: string },
): Promise<void> {
  const output = opts.output ?? "table";
  if (output !== "table" && output !== "json")
    throw new CtlError(CtlErrorCode.Usage, `-o: table or json, got ${JSON.stringify(output)}`);
  const { protocol, port } = parsePort(opts.port ?? "tcp");
  const selector = opts.selector === undefined ? undefined : parseUserSelector(opts.selector);
  const withFiles = opts.with ?? [];
  const { resources, overlay, options } = await loadModel(ctx, withFiles);
  let names: string[];
  if (pods.length > 0) names = [...pods];
  else {
    names = overlay
      .filter((r): r is PolicyModelResource & Wep => r.kind === "WorkloadEndpoint")
      .filter((w) => opts.namespace === undefined || w.metadata.namespace === opts.namespace)
      .filter((w) => selector === undefined || selector.matches(w.metadata.labels ?? {}))
      .map((w) => `${w.metadata.namespace}/${podName(w)}`);
    names = [...new Set(names)].sort();
  }
  if (names.length === 0) throw new CtlError(CtlErrorCode.NotFound, "policy matrix: no pods selected");
  const judge = (model: readonly PolicyModelResource[]) => {
    const ev = createEvaluator(model, options);
    const refs = names.map((n) => resolvePeer(n, model, "pod"));
    return names.map((_f, i) =>
      names.map(
        (_t, j) =>
          evaluateOrThrow(ev, {
            source: refs[i]!,
            destination: refs[j]!,
            protocol,
            ...(port !== undefined ? { dstPort: port } : {}),
          }).verdict,
      ),
    );
  };
  const after = judge(overlay);
  const before = withFiles.length > 0 ? judge(resources) : undefined;
  if (output === "json") {
    ctx.io.out(
      json({
        protocol,
        port,
        pods: names,
        verdicts: Object.fromEntries(
          names.map((f, i) => [f, Object.fromEntries(names.map((t, j) => [t, after[i]![j]]))]),
        ),
        ...(before !== undefined
          ? {
              changes: names.flatMap((f, i) =>
                names.flatMap((t, j) =>
                  before[i]![j] !== after[i]![j]
                    ? [{ from: f, to: t, before: before[i]![j], after: after[i]![j] }]
                    : [],
                ),
              ),
            }
          : {}),
      }),
    );
    return;
  }
  ctx.io.out(
    `${protocol}${port === undefined ? "" : `/${port}`}: rows are sources, columns destinations; . allow, X deny${before ? ", * changed by --with" : ""}\n`,
  );
  const rows = names.map((f, i) => [
    f,
    ...names.map(
      (_t, j) =>
        `${after[i]![j] === "allow" ? "." : "X"}${before !== undefined && before[i]![j] !== after[i]![j] ? "*" : ""}`,
    ),
  ]);
  ctx.io.out(renderTable(["FROM\\TO", ...names], rows, ctx.io.style));
  if (before !== undefined) {
    const changes = names.flatMap((f, i) =>
      names.flatMap((t, j) =>
        before[i]![j] !== after[i]![j] ? [`  ${f} -> ${t}: ${before[i]![j]} -> ${after[i]![j]}`] : [],
      ),
    );
    ctx.io.out(
      changes.length === 0
        ? "\n--with changes no verdict.\n"
        : `\n--with changes ${changes.length} verdict(s):\n${changes.join("\n")}\n`,
    );
  }
}
