/**
 * Entry points of validation: {@link validateResource}, {@link checkResource}, {@link withDefaults}.
 *
 * @packageDocumentation
 */
import {
  isResourceKind,
  kindDef,
  type Resource,
  RESOURCE_KINDS,
  type ResourceKind,
  type ResourceOfKind,
} from "../resources/kinds.js";
import { API_VERSION, type ObjectMeta } from "../resources/meta.js";
import { Ctx, field, isPlainObject, object, show } from "./context.js";
import { type ValidationError as VE, ValidationError, type ValidationIssue } from "./errors.js";
import { annotations, labels, resourceName } from "./names.js";
import { opt, string } from "./primitives.js";

/** Result of {@link checkResource}. */
export type CheckResult =
  | {
      /** Valid. */
      readonly ok: true;
      /** The canonical resource. */
      readonly resource: Resource;
    }
  | {
      /** Invalid. */
      readonly ok: false;
      /** The error `validateResource` would throw. */
      readonly error: VE;
      /** Same as `error.issues`. */
      readonly issues: readonly ValidationIssue[];
    };

function validateMeta(
  v: unknown,
  ctx: Ctx,
  namespaced: boolean,
  nameRule: Parameters<typeof resourceName>[3],
) {
  const o = object(v, "metadata", ctx, [
    "name",
    "namespace",
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "labels",
    "annotations",
  ]);
  if (o === undefined) return undefined;
  const out: Partial<ObjectMeta> = {};
  const name = field(o, "name");
  if (name === undefined) ctx.fail("metadata.name", "required field is missing");
  else {
    const n = resourceName(name, "metadata.name", ctx, nameRule);
    if (n !== undefined) out.name = n;
  }
  const ns = field(o, "namespace");
  if (namespaced) {
    if (ns === undefined || ns === "") ctx.fail("metadata.namespace", "required for a namespaced kind");
    else opt(o, out, "namespace", "metadata", ctx, (x, p, c) => resourceName(x, p, c, "label"));
  } else if (ns !== undefined && ns !== "") {
    ctx.fail("metadata.namespace", "must not be set on a cluster-scoped kind");
  }
  opt(o, out, "resourceVersion", "metadata", ctx, string);
  opt(o, out, "uid", "metadata", ctx, string);
  opt(o, out, "creationTimestamp", "metadata", ctx, string);
  opt(o, out, "labels", "metadata", ctx, labels);
  opt(o, out, "annotations", "metadata", ctx, annotations);
  return out;
}

function run(
  input: unknown,
  expectedKind?: ResourceKind,
): { resource?: Resource; ctx: Ctx; kind?: string; meta?: Partial<ObjectMeta> } {
  const ctx = new Ctx();
  if (!isPlainObject(input)) {
    ctx.fail("", "expected a resource object");
    return { ctx };
  }
  const kind = field(input, "kind");
  const apiVersion = field(input, "apiVersion");
  if (apiVersion !== API_VERSION) {
    ctx.fail("apiVersion", `must be "${API_VERSION}", got ${show(apiVersion)}`);
  }
  if (!isResourceKind(kind)) {
    ctx.fail("kind", `unknown kind ${show(kind)}; expected one of ${RESOURCE_KINDS.join(", ")}`);
    return { ctx };
  }
  if (expectedKind !== undefined && kind !== expectedKind) {
    ctx.fail("kind", `expected kind "${expectedKind}", got ${show(kind)}`);
  }
  const def = kindDef(kind);
  object(
    input,
    "",
    ctx,
    def.validateStatus === undefined
      ? ["apiVersion", "kind", "metadata", "spec"]
      : ["apiVersion", "kind", "metadata", "spec", "status"],
  );
  const rawMeta = field(input, "metadata");
  const meta =
    rawMeta === undefined
      ? ctx.fail("metadata", "required field is missing")
      : validateMeta(rawMeta, ctx, def.namespaced, def.nameRule);
  const rawSpec = field(input, "spec") ?? {};
  const spec = def.validateSpec(rawSpec, "spec", ctx, (meta ?? { name: "" }) as ObjectMeta);
  const rawStatus = def.validateStatus === undefined ? undefined : field(input, "status");
  const status = rawStatus === undefined ? undefined : def.validateStatus?.(rawStatus, "status", ctx);
  if (ctx.count > 0 || meta === undefined || spec === undefined)
    return { ctx, kind, ...(meta ? { meta } : {}) };
  return {
    ctx,
    kind,
    meta,
    resource: {
      apiVersion: API_VERSION,
      kind,
      metadata: meta as ObjectMeta,
      spec,
      ...(status === undefined ? {} : { status }),
    } as Resource,
  };
}

type RunResult = ReturnType<typeof run> & { cause?: unknown };

/**
 * {@link run}, with the promise of a typed error kept for exotic input too: plain data never throws while
 * being read, but an object with a throwing getter (or a hostile proxy) would.
 */
function safeRun(input: unknown, expectedKind?: ResourceKind): RunResult {
  try {
    return run(input, expectedKind);
  } catch (cause) {
    const ctx = new Ctx();
    let why: string;
    try {
      why = cause instanceof Error ? cause.message : String(cause);
    } catch {
      why = "unreadable error";
    }
    ctx.fail("", `input could not be read: ${why}`);
    return { ctx, cause };
  }
}

function toError(r: RunResult): ValidationError {
  const details: { kind?: string; name?: string; namespace?: string; issues: ValidationIssue[] } = {
    issues: r.ctx.issues,
  };
  if (r.kind !== undefined) details.kind = r.kind;
  if (r.meta?.name !== undefined) details.name = r.meta.name;
  if (r.meta?.namespace !== undefined) details.namespace = r.meta.namespace;
  return new ValidationError(details, r.cause === undefined ? undefined : { cause: r.cause });
}

/**
 * Validates untrusted input as a Margay resource and returns a canonical copy (CIDRs and addresses
 * canonicalised, `"80"` ports as numbers, unknown fields rejected). Defaults are not applied: see
 * {@link withDefaults}. With `kind`, the input must also be of that kind (and the result is typed so).
 *
 * @throws {@link ValidationError} listing every issue with its exact path. Never throws anything else.
 */
export function validateResource(input: unknown): Resource;
export function validateResource<K extends ResourceKind>(input: unknown, kind: K): ResourceOfKind<K>;
export function validateResource(input: unknown, kind?: ResourceKind): Resource {
  const r = safeRun(input, kind);
  if (r.resource !== undefined) return r.resource;
  throw toError(r);
}

/** Non-throwing {@link validateResource}; `kind` likewise requires that kind. */
export function checkResource(input: unknown, kind?: ResourceKind): CheckResult {
  const r = safeRun(input, kind);
  if (r.resource !== undefined) return { ok: true, resource: r.resource };
  const error = toError(r);
  return { ok: false, error, issues: error.issues };
}

/**
 * Returns a copy of a valid resource with Calico's defaults filled in (e.g. pool `blockSize` 26/122,
 * `ipipMode`/`vxlanMode` `Never`, policy `types` from its rules, tier `default`). Singleton
 * configuration kinds only default their `default` instance. Idempotent; does not mutate its input.
 *
 * @throws {@link ValidationError} if `resource` is not shaped like a resource (validate first).
 */
export function withDefaults<R extends Resource>(resource: R): R {
  if (!isPlainObject(resource) || !isResourceKind(resource.kind) || !isPlainObject(resource.metadata)) {
    // Only validated resources are accepted; say so in the package's own error type.
    throw new ValidationError({
      issues: [{ path: "", message: "withDefaults expects a validated resource" }],
    });
  }
  const def = kindDef(resource.kind);
  return { ...resource, spec: def.defaults(resource.spec, resource.metadata) };
}
