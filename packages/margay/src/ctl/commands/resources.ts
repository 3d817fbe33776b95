/**
 * `apply | create | replace | delete | get | patch | label`: the resource verbs, calicoctl's semantics.
 *
 * A batch (`-f` with many documents) is validated whole before anything is written, and every
 * precondition (create: absent; replace, delete: present) is checked for every object first. The writes
 * then go to the datastore as one transaction (all or nothing; batches over {@link TXN_CHUNK} objects as
 * several, and a failure after the first reports exactly what was written, exit 4).
 *
 * @packageDocumentation
 */

import {
  checkResource,
  isResourceKind,
  KIND_INFO,
  parseSelector,
  type Resource,
  type ResourceKind,
} from "@margay/api";
import type { Datastore, ObjectKey, StoredObject, TxnOp } from "@margay/datastore";
import { parse as parseYaml } from "yaml";
import { columnsOf } from "../columns.js";
import type { CommandContext } from "../context.js";
import { CtlError, CtlErrorCode, errorCode, toCtlError } from "../errors.js";
import { isNamespaced, resolveKind } from "../kinds.js";
import { type LoadedResource, loadSources } from "../manifests.js";
import { cell, fieldAt, json, type OutputFormat, parseOutputFormat, renderTable, yaml } from "../output.js";

/** Largest number of objects written in one datastore transaction (etcd's default limit is 128 ops). */
export const TXN_CHUNK = 100;

/** `<kind>/<name>` or `<kind>/<namespace>/<name>`: how objects are named in messages. */
export function describeKey(k: ObjectKey): string {
  return `${k.kind.toLowerCase()}/${k.namespace !== undefined ? `${k.namespace}/` : ""}${k.name}`;
}

/** The key of a stored object. */
export function keyOf(o: StoredObject): ObjectKey {
  return o.metadata.namespace !== undefined && o.metadata.namespace !== ""
    ? { kind: o.kind, name: o.metadata.name, namespace: o.metadata.namespace }
    : { kind: o.kind, name: o.metadata.name };
}

/** The stored object of `key`, or undefined. */
export async function tryGet(ds: Datastore, key: ObjectKey): Promise<StoredObject | undefined> {
  try {
    return await ds.get(key);
  } catch (e) {
    if (errorCode(e) === "not-found") return undefined;
    throw e;
  }
}

/** The object as the user wrote it, minus what the datastore owns (identity and creation time). */
function forWrite(r: Resource, resourceVersion: string | undefined): StoredObject {
  const { uid: _u, creationTimestamp: _c, resourceVersion: _rv, ...meta } = r.metadata;
  return {
    ...r,
    metadata: { ...meta, ...(resourceVersion !== undefined ? { resourceVersion } : {}) },
  } as StoredObject;
}

/** What the user controls of an object (for "unchanged"). */
function userView(o: StoredObject): string {
  const { metadata, ...rest } = o as StoredObject & Record<string, unknown>;
  const { resourceVersion: _r, uid: _u, creationTimestamp: _c, ...meta } = metadata;
  return JSON.stringify(canonical({ ...rest, metadata: meta }));
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v !== null && typeof v === "object")
    return Object.fromEntries(
      Object.keys(v as object)
        .sort()
        .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
    );
  return v;
}

type Verb = "apply" | "create" | "replace";

interface Planned {
  key: ObjectKey;
  op: TxnOp | undefined;
  /** What to print. */
  outcome: string;
}

/** Writes planned ops in transactions of {@link TXN_CHUNK}; reports what was written on a later failure. */
async function commit(ds: Datastore, plan: readonly Planned[]): Promise<void> {
  const ops = plan.filter((p) => p.op !== undefined);
  const written: string[] = [];
  for (let i = 0; i < ops.length; i += TXN_CHUNK) {
    const chunk = ops.slice(i, i + TXN_CHUNK);
    try {
      await ds.transaction(chunk.map((p) => p.op!));
    } catch (e) {
      const err = toCtlError(e);
      if (written.length === 0) throw err;
      throw new CtlError(
        CtlErrorCode.Partial,
        `${err.message}; written before the failure: ${written.join(", ")}`,
        { written, cause: err.code },
        e,
      );
    }
    written.push(...chunk.map((p) => describeKey(p.key)));
  }
}

function checkDuplicates(items: readonly LoadedResource[]): void {
  const seen = new Map<string, string>();
  for (const it of items) {
    const k = describeKey(keyOf(it.resource as StoredObject));
    const prev = seen.get(k);
    if (prev !== undefined)
      throw new CtlError(CtlErrorCode.InvalidInput, `${it.origin}: ${k} is also defined at ${prev}`, {
        key: k,
      });
    seen.set(k, it.origin);
  }
}

/** apply / create / replace of `-f` sources. */
export async function writeResources(
  ctx: CommandContext,
  verb: Verb,
  sources: readonly string[],
  opts: { skipExists?: boolean | undefined },
): Promise<void> {
  const items = await loadSources(sources, ctx.io);
  checkDuplicates(items);
  for (const it of items) for (const w of it.warnings) ctx.io.err(`warning: ${it.origin}: ${w}\n`);
  const { datastore: ds } = await ctx.session();
  // Read every object's current state first: every precondition is checked before the first write.
  const current = await Promise.all(items.map((it) => tryGet(ds, keyOf(it.resource as StoredObject))));
  const plan: Planned[] = [];
  const missing: string[] = [];
  const existing: string[] = [];
  for (const [i, it] of items.entries()) {
    const key = keyOf(it.resource as StoredObject);
    const cur = current[i];
    const givenRv = it.resource.metadata.resourceVersion;
    const name = describeKey(key);
    if (verb === "create") {
      if (cur !== undefined) {
        if (opts.skipExists) plan.push({ key, op: undefined, outcome: `${name} skipped (exists)` });
        else existing.push(name);
        continue;
      }
      plan.push({
        key,
        op: { op: "create", object: forWrite(it.resource, undefined) },
        outcome: `${name} created`,
      });
    } else if (verb === "replace") {
      if (cur === undefined) {
        missing.push(name);
        continue;
      }
      plan.push({
        key,
        op: { op: "update", object: forWrite(it.resource, givenRv ?? cur.metadata.resourceVersion) },
        outcome: `${name} replaced`,
      });
    } else if (cur === undefined) {
      if (givenRv !== undefined) {
        missing.push(`${name} (resourceVersion ${givenRv} given, but it no longer exists)`);
        continue;
      }
      plan.push({
        key,
        op: { op: "create", object: forWrite(it.resource, undefined) },
        outcome: `${name} created`,
      });
    } else if (userView(forWrite(it.resource, undefined)) === userView(cur) && givenRv === undefined) {
      plan.push({ key, op: undefined, outcome: `${name} unchanged` });
    } else {
      plan.push({
        key,
        op: { op: "update", object: forWrite(it.resource, givenRv ?? cur.metadata.resourceVersion) },
        outcome: `${name} configured`,
      });
    }
  }
  if (existing.length > 0)
    throw new CtlError(
      CtlErrorCode.AlreadyExists,
      `already exists: ${existing.join(", ")} (nothing written; --skip-exists skips them)`,
      { keys: existing },
    );
  if (missing.length > 0)
    throw new CtlError(CtlErrorCode.NotFound, `not found: ${missing.join(", ")} (nothing written)`, {
      keys: missing,
    });
  await commit(ds, plan);
  for (const p of plan) ctx.io.out(`${p.outcome}\n`);
}

/** Namespace of a named lookup: `-n`, else `default` for namespaced kinds. */
function namespaceFor(kind: ResourceKind, namespace: string | undefined): string | undefined {
  if (!isNamespaced(kind)) {
    return undefined;
  }
  return namespace ?? "default";
}

/** delete by name or by `-f`. */
export async function deleteResources(
  ctx: CommandContext,
  args: readonly string[],
  opts: {
    filename?: string[] | undefined;
    namespace?: string | undefined;
    skipNotExists?: boolean | undefined;
  },
): Promise<void> {
  let keys: { key: ObjectKey; rv?: string | undefined }[];
  if (opts.filename !== undefined && opts.filename.length > 0) {
    if (args.length > 0)
      throw new CtlError(CtlErrorCode.Usage, "delete: give either -f or KIND NAME..., not both");
    const items = await loadSources(opts.filename, ctx.io);
    checkDuplicates(items);
    keys = items.map((it) => ({
      key: keyOf(it.resource as StoredObject),
      rv: it.resource.metadata.resourceVersion,
    }));
  } else {
    const [typed, ...names] = args;
    if (typed === undefined || names.length === 0)
      throw new CtlError(CtlErrorCode.Usage, "delete: KIND and at least one NAME are required (or -f FILE)");
    const kind = resolveKind(typed);
    const ns = namespaceFor(kind, opts.namespace);
    keys = names.map((name) => ({ key: ns === undefined ? { kind, name } : { kind, name, namespace: ns } }));
  }
  const { datastore: ds } = await ctx.session();
  const current = await Promise.all(keys.map((k) => tryGet(ds, k.key)));
  const plan: Planned[] = [];
  const missing: string[] = [];
  for (const [i, k] of keys.entries()) {
    const name = describeKey(k.key);
    if (current[i] === undefined) {
      if (opts.skipNotExists)
        plan.push({ key: k.key, op: undefined, outcome: `${name} skipped (not found)` });
      else missing.push(name);
      continue;
    }
    plan.push({
      key: k.key,
      op: { op: "delete", key: k.key, ...(k.rv !== undefined ? { resourceVersion: k.rv } : {}) },
      outcome: `${name} deleted`,
    });
  }
  if (missing.length > 0)
    throw new CtlError(
      CtlErrorCode.NotFound,
      `not found: ${missing.join(", ")} (nothing deleted; --skip-not-exists skips them)`,
      { keys: missing },
    );
  await commit(ds, plan);
  for (const p of plan) ctx.io.out(`${p.outcome}\n`);
}

/** Options of `get`. */
export interface GetOptions {
  output?: string | undefined;
  namespace?: string | undefined;
  allNamespaces?: boolean | undefined;
  selector?: string | undefined;
}

/** Prints resources in a format; `single` prints one object rather than a List. */
export function printResources(
  ctx: CommandContext,
  kind: string,
  objects: readonly StoredObject[],
  format: OutputFormat,
  single: boolean,
): void {
  const namespaced = isResourceKind(kind)
    ? KIND_INFO[kind].namespaced
    : objects.some((o) => o.metadata.namespace);
  switch (format.type) {
    case "yaml":
      ctx.io.out(
        yaml(
          single && objects.length === 1 ? objects[0] : { apiVersion: "v1", kind: "List", items: objects },
        ),
      );
      return;
    case "json":
      ctx.io.out(
        json(
          single && objects.length === 1 ? objects[0] : { apiVersion: "v1", kind: "List", items: objects },
        ),
      );
      return;
    case "name":
      for (const o of objects) ctx.io.out(`${kind.toLowerCase()}/${o.metadata.name}\n`);
      return;
    case "custom-columns":
      ctx.io.out(
        renderTable(
          format.columns.map((c) => c.heading),
          objects.map((o) => format.columns.map((c) => cell(fieldAt(o, c.path)))),
          ctx.io.style,
        ),
      );
      return;
    default: {
      const cols = columnsOf(kind, namespaced, format.type === "wide");
      if (objects.length === 0) {
        ctx.io.err("No resources found.\n");
        return;
      }
      ctx.io.out(
        renderTable(
          cols.map((c) => c.heading),
          objects.map((o) => cols.map((c) => c.value(o as unknown as Record<string, unknown>))),
          ctx.io.style,
        ),
      );
    }
  }
}

/** get KIND[,KIND...] [NAME...]: several kinds (no names) print one List, or one table per kind. */
export async function getResources(
  ctx: CommandContext,
  typed: string,
  names: readonly string[],
  opts: GetOptions,
): Promise<void> {
  const kinds = typed
    .split(",")
    .filter((t) => t !== "")
    .map(resolveKind);
  if (kinds.length === 0) throw new CtlError(CtlErrorCode.Usage, "get: a resource type is required");
  if (kinds.length > 1 && names.length > 0)
    throw new CtlError(CtlErrorCode.Usage, "get: names can be given with one type only");
  const format = parseOutputFormat(opts.output ?? "table");
  const selector = opts.selector !== undefined ? parseUserSelector(opts.selector) : undefined;
  if (opts.allNamespaces && opts.namespace !== undefined)
    throw new CtlError(CtlErrorCode.Usage, "-n and --all-namespaces (-A) cannot be used together");
  if (opts.allNamespaces && names.length > 0)
    throw new CtlError(CtlErrorCode.Usage, "--all-namespaces (-A) cannot be used with names");
  const { datastore: ds } = await ctx.session();
  const fetch = async (kind: ResourceKind): Promise<StoredObject[]> => {
    let objects: StoredObject[];
    if (names.length > 0) {
      const ns = namespaceFor(kind, opts.namespace);
      const keys = names.map((name) => (ns === undefined ? { kind, name } : { kind, name, namespace: ns }));
      const got = await Promise.all(keys.map((k) => tryGet(ds, k)));
      const missing = keys.filter((_k, i) => got[i] === undefined).map(describeKey);
      if (missing.length > 0)
        throw new CtlError(CtlErrorCode.NotFound, `not found: ${missing.join(", ")}`, { keys: missing });
      objects = got as StoredObject[];
    } else {
      const ns = isNamespaced(kind) && !opts.allNamespaces ? opts.namespace : undefined;
      objects = (await ds.list(kind, ns !== undefined ? { namespace: ns } : {})).items;
    }
    return selector === undefined
      ? objects
      : objects.filter((o) => selector.matches(o.metadata.labels ?? {}));
  };
  if (kinds.length === 1) {
    printResources(ctx, kinds[0]!, await fetch(kinds[0]!), format, names.length === 1);
    return;
  }
  if (format.type === "table" || format.type === "wide") {
    for (const [i, kind] of kinds.entries()) {
      ctx.io.out(`${i > 0 ? "\n" : ""}${ctx.io.style.bold(`${kind}:`)}\n`);
      const objects = await fetch(kind);
      if (objects.length === 0) ctx.io.out("No resources found.\n");
      else printResources(ctx, kind, objects, format, false);
    }
    return;
  }
  const all: StoredObject[] = [];
  for (const kind of kinds) all.push(...(await fetch(kind)));
  if (format.type === "name") for (const o of all) ctx.io.out(`${o.kind.toLowerCase()}/${o.metadata.name}\n`);
  else printResources(ctx, kinds[0]!, all, format, false);
}

/** A `-l` selector: Calico syntax (`app == 'web'`), or kubectl's `app=web,tier!=db`. */
export function parseUserSelector(text: string): { matches(labels: Record<string, string>): boolean } {
  // kubectl's equality form: k=v, k==v, k!=v separated by commas, no quotes.
  const kubectl =
    /^\s*[A-Za-z0-9./_-]+\s*(=|==|!=)\s*[A-Za-z0-9._-]*\s*(,\s*[A-Za-z0-9./_-]+\s*(=|==|!=)\s*[A-Za-z0-9._-]*\s*)*$/;
  let calico = text;
  if (kubectl.test(text) && !text.includes("'") && !text.includes('"')) {
    calico = text
      .split(",")
      .map((term) => {
        const m = /^\s*([^=!\s]+)\s*(==|=|!=)\s*(.*?)\s*$/.exec(term)!;
        return `${m[1]} ${m[2] === "!=" ? "!=" : "=="} '${m[3]}'`;
      })
      .join(" && ");
  }
  try {
    const sel = parseSelector(calico);
    return { matches: (labels) => sel.matches(labels) };
  } catch (e) {
    throw new CtlError(CtlErrorCode.InvalidInput, `-l: ${(e as Error).message}`, { selector: text }, e);
  }
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    target !== null && typeof target === "object" && !Array.isArray(target) ? { ...(target as object) } : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** Reads, changes and writes back one object under compare-and-swap (retried on a conflict). */
async function updateOne(
  ctx: CommandContext,
  key: ObjectKey,
  change: (cur: StoredObject) => unknown,
): Promise<"changed" | "unchanged"> {
  const { datastore: ds } = await ctx.session();
  for (let attempt = 0; ; attempt++) {
    const cur = await tryGet(ds, key);
    if (cur === undefined)
      throw new CtlError(CtlErrorCode.NotFound, `not found: ${describeKey(key)}`, { key });
    const next = change(structuredClone(cur)) as StoredObject;
    const { metadata: m } = next;
    if (next.kind !== cur.kind || (next as { apiVersion?: unknown }).apiVersion !== cur.apiVersion)
      throw new CtlError(CtlErrorCode.InvalidInput, "apiVersion and kind cannot be changed", { key });
    if (m?.name !== cur.metadata.name || m.namespace !== cur.metadata.namespace)
      throw new CtlError(
        CtlErrorCode.InvalidInput,
        "metadata.name and metadata.namespace cannot be changed",
        { key },
      );
    const checked = checkResource(next);
    if (!checked.ok)
      throw new CtlError(
        CtlErrorCode.InvalidInput,
        `${describeKey(key)}: ${checked.issues.map((i) => `${i.path || "<root>"}: ${i.message}`).join("; ")}`,
        { key, issues: checked.issues },
      );
    if (userView(next) === userView(cur)) return "unchanged";
    try {
      const { uid: _u, creationTimestamp: _c, resourceVersion: _r, ...meta } = next.metadata;
      const rv = cur.metadata.resourceVersion;
      await ds.update({
        ...next,
        metadata: { ...meta, ...(rv !== undefined ? { resourceVersion: rv } : {}) },
      });
      return "changed";
    } catch (e) {
      if (errorCode(e) === "conflict" && attempt < 4) continue;
      throw toCtlError(e);
    }
  }
}

/** Resolves `KIND NAME` with `-n` into a key. */
function keyFor(typed: string, name: string, namespace: string | undefined): ObjectKey {
  const kind = resolveKind(typed);
  const ns = namespaceFor(kind, namespace);
  return ns === undefined ? { kind, name } : { kind, name, namespace: ns };
}

/** patch KIND NAME -p PATCH. */
export async function patchResource(
  ctx: CommandContext,
  typed: string,
  name: string,
  opts: { patch?: string | undefined; namespace?: string | undefined },
): Promise<void> {
  if (opts.patch === undefined) throw new CtlError(CtlErrorCode.Usage, "patch: -p PATCH is required");
  let patch: unknown;
  try {
    patch = parseYaml(opts.patch);
  } catch (e) {
    throw new CtlError(
      CtlErrorCode.InvalidInput,
      `-p: not JSON or YAML (${(e as Error).message.split("\n")[0]})`,
      {},
      e,
    );
  }
  if (patch === null || typeof patch !== "object" || Array.isArray(patch))
    throw new CtlError(
      CtlErrorCode.InvalidInput,
      '-p: a merge patch must be an object, e.g. \'{"spec":{"disabled":true}}\'',
    );
  const key = keyFor(typed, name, opts.namespace);
  const r = await updateOne(ctx, key, (cur) => mergePatch(cur, patch));
  ctx.io.out(`${describeKey(key)} ${r === "changed" ? "patched" : "unchanged"}\n`);
}

/** label KIND NAME key=value... | key- | key --remove. */
export async function labelResource(
  ctx: CommandContext,
  typed: string,
  name: string,
  labels: readonly string[],
  opts: { overwrite?: boolean | undefined; remove?: boolean | undefined; namespace?: string | undefined },
): Promise<void> {
  if (labels.length === 0)
    throw new CtlError(CtlErrorCode.Usage, "label: at least one KEY=VALUE, KEY- or KEY --remove is required");
  const set = new Map<string, string>();
  const remove = new Set<string>();
  for (const l of labels) {
    const eq = l.indexOf("=");
    if (opts.remove) {
      if (eq >= 0)
        throw new CtlError(CtlErrorCode.Usage, `label --remove: give keys only, got ${JSON.stringify(l)}`);
      remove.add(l);
    } else if (eq > 0) set.set(l.slice(0, eq), l.slice(eq + 1));
    else if (l.endsWith("-") && l.length > 1) remove.add(l.slice(0, -1));
    else
      throw new CtlError(CtlErrorCode.Usage, `label: expected KEY=VALUE or KEY-, got ${JSON.stringify(l)}`);
  }
  const key = keyFor(typed, name, opts.namespace);
  const r = await updateOne(ctx, key, (cur) => {
    const now = { ...(cur.metadata.labels ?? {}) };
    for (const [k, v] of set) {
      if (now[k] !== undefined && now[k] !== v && !opts.overwrite)
        throw new CtlError(
          CtlErrorCode.InvalidInput,
          `${describeKey(key)}: label ${k} is already ${JSON.stringify(now[k])} (--overwrite replaces it)`,
          { key, label: k },
        );
      now[k] = v;
    }
    for (const k of remove) {
      if (now[k] === undefined)
        throw new CtlError(CtlErrorCode.NotFound, `${describeKey(key)}: has no label ${k}`, {
          key,
          label: k,
        });
      delete now[k];
    }
    const metadata = { ...cur.metadata, labels: now };
    if (Object.keys(now).length === 0) delete (metadata as { labels?: unknown }).labels;
    return { ...cur, metadata };
  });
  ctx.io.out(`${describeKey(key)} ${r === "changed" ? "labeled" : "unchanged"}\n`);
}
