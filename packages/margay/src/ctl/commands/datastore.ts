/**
 * `datastore export | import`: every object of a datastore (API resources and the IPAM's own blocks,
 * affinities and handles) to one file, and that file into an empty datastore: the migration between a
 * memory snapshot and etcd (export with one configuration, import with the other).
 *
 * The import validates the whole file first (API resources with `@margay/api`, IPAM blocks with
 * `@margay/ipam`'s structural check), refuses a datastore that holds any object of the exported kinds,
 * then creates everything in transactions of {@link TXN_CHUNK} (one, for up to that many objects).
 *
 * @packageDocumentation
 */

import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { checkResource, isResourceKind, RESOURCE_KINDS } from "@margay/api";
import type { StoredObject, TxnOp } from "@margay/datastore";
import { type IpamBlockSpec, IpamKind, parseCidr, validateBlock } from "@margay/ipam";
import { parse as parseYaml } from "yaml";
import type { CommandContext } from "../context.js";
import { CtlError, CtlErrorCode, toCtlError } from "../errors.js";
import { json, yaml } from "../output.js";
import { describeKey, keyOf, TXN_CHUNK } from "./resources.js";

/** The `kind` of an export file. */
export const EXPORT_KIND = "DatastoreExport";

/** The IPAM's internal kinds, exported after the API kinds (and imported in this order). */
export const INTERNAL_KINDS: readonly string[] = [IpamKind.Block, IpamKind.Affinity, IpamKind.Handle];

/** Every kind an export holds, in import order. */
export function exportKinds(): string[] {
  return [...RESOURCE_KINDS, ...INTERNAL_KINDS];
}

/** An export file. */
export interface ExportFile {
  apiVersion: "margay.io/v1";
  kind: typeof EXPORT_KIND;
  /** Where it came from (`memory` or `etcd`) and the store revision it was read at, per kind. */
  metadata: { source: string; kinds: Record<string, number> };
  items: StoredObject[];
}

/** `datastore export [-o FILE] [--format yaml|json]`. */
export async function datastoreExport(
  ctx: CommandContext,
  opts: { output?: string | undefined; format?: string | undefined },
): Promise<void> {
  const format = opts.format ?? (opts.output?.endsWith(".json") ? "json" : "yaml");
  if (format !== "yaml" && format !== "json")
    throw new CtlError(CtlErrorCode.Usage, `--format: yaml or json, got ${JSON.stringify(format)}`);
  const session = await ctx.session();
  const items: StoredObject[] = [];
  const kinds: Record<string, number> = {};
  for (const kind of exportKinds()) {
    const list = await session.datastore.list(kind);
    if (list.items.length > 0) kinds[kind] = list.items.length;
    for (const o of list.items) {
      const { resourceVersion: _r, ...metadata } = o.metadata;
      items.push({ ...o, metadata });
    }
  }
  const file: ExportFile = {
    apiVersion: "margay.io/v1",
    kind: EXPORT_KIND,
    metadata: { source: session.type, kinds },
    items,
  };
  const text = format === "json" ? json(file) : yaml(file);
  if (opts.output === undefined || opts.output === "-") ctx.io.out(text);
  else {
    try {
      writeFileSync(resolve(ctx.io.cwd, opts.output), text);
    } catch (e) {
      throw new CtlError(
        CtlErrorCode.Io,
        `-o ${opts.output}: cannot write it (${(e as NodeJS.ErrnoException).code})`,
        {
          file: opts.output,
        },
      );
    }
    ctx.io.err(`exported ${items.length} objects to ${opts.output}\n`);
  }
}

function checkItem(o: unknown, i: number, file: string): StoredObject {
  const at = `${file}: items[${i}]`;
  if (o === null || typeof o !== "object")
    throw new CtlError(CtlErrorCode.InvalidInput, `${at}: not an object`);
  const obj = o as StoredObject & { spec?: unknown };
  if (typeof obj.kind !== "string" || typeof obj.metadata?.name !== "string")
    throw new CtlError(CtlErrorCode.InvalidInput, `${at}: kind and metadata.name are required`);
  const { resourceVersion: _r, ...metadata } = obj.metadata;
  const clean = { ...obj, metadata } as StoredObject;
  if (isResourceKind(obj.kind)) {
    const r = checkResource(clean);
    if (!r.ok)
      throw new CtlError(
        CtlErrorCode.InvalidInput,
        `${at} (${describeKey(keyOf(clean))}): ${r.issues.map((x) => `${x.path || "<root>"}: ${x.message}`).join("; ")}`,
        { issues: r.issues },
      );
    return clean;
  }
  if (!INTERNAL_KINDS.includes(obj.kind))
    throw new CtlError(CtlErrorCode.InvalidInput, `${at}: unknown kind ${JSON.stringify(obj.kind)}`);
  if (obj.kind === IpamKind.Block) {
    const spec = obj.spec as IpamBlockSpec | undefined;
    let problems: string[];
    try {
      problems = spec === undefined ? ["spec is missing"] : validateBlock(spec, parseCidr(spec.cidr));
    } catch (e) {
      problems = [(e as Error).message];
    }
    if (problems.length > 0)
      throw new CtlError(
        CtlErrorCode.InvalidInput,
        `${at} (${describeKey(keyOf(clean))}): ${problems.join("; ")}`,
      );
  } else if (obj.spec === null || typeof obj.spec !== "object")
    throw new CtlError(
      CtlErrorCode.InvalidInput,
      `${at} (${describeKey(keyOf(clean))}): spec must be an object`,
    );
  return clean;
}

/** `datastore import -f FILE`. */
export async function datastoreImport(
  ctx: CommandContext,
  opts: { filename?: string[] | undefined },
): Promise<void> {
  const files = opts.filename ?? [];
  if (files.length !== 1)
    throw new CtlError(CtlErrorCode.Usage, "datastore import: exactly one -f FILE (or -) is required");
  const name = files[0]!;
  let text: string;
  if (name === "-") text = await ctx.io.readStdin();
  else {
    try {
      text = readFileSync(resolve(ctx.io.cwd, name), "utf8");
    } catch (e) {
      throw new CtlError(
        CtlErrorCode.Io,
        `-f ${name}: cannot read it (${(e as NodeJS.ErrnoException).code})`,
        { file: name },
      );
    }
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 100 });
  } catch (e) {
    const why = (e as Error).message.includes("multiple documents")
      ? `not a datastore export (it holds several YAML documents; an export is one ${EXPORT_KIND} document)`
      : `not YAML or JSON (${(e as Error).message.split("\n")[0]})`;
    throw new CtlError(CtlErrorCode.InvalidInput, `${name}: ${why}`, { file: name });
  }
  const d = doc as Partial<ExportFile> | null;
  if (d === null || typeof d !== "object" || d.kind !== EXPORT_KIND || !Array.isArray(d.items))
    throw new CtlError(
      CtlErrorCode.InvalidInput,
      `${name}: not a datastore export (kind ${EXPORT_KIND} with items)`,
      {
        file: name,
      },
    );
  const items = d.items.map((o, i) => checkItem(o, i, name));
  const seen = new Set<string>();
  for (const o of items) {
    const k = describeKey(keyOf(o));
    if (seen.has(k)) throw new CtlError(CtlErrorCode.InvalidInput, `${name}: ${k} appears twice`);
    seen.add(k);
  }
  const order = exportKinds();
  items.sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind));
  const session = await ctx.session();
  const ds = session.datastore;
  for (const kind of order) {
    const list = await ds.list(kind);
    if (list.items.length > 0)
      throw new CtlError(
        CtlErrorCode.AlreadyExists,
        `the target datastore is not empty (${list.items.length} ${kind} objects, e.g. ${describeKey(keyOf(list.items[0]!))}); import needs an empty one (nothing written)`,
        { kind },
      );
  }
  let written = 0;
  for (let i = 0; i < items.length; i += TXN_CHUNK) {
    const ops: TxnOp[] = items.slice(i, i + TXN_CHUNK).map((object) => ({ op: "create", object }));
    try {
      await ds.transaction(ops);
    } catch (e) {
      const err = toCtlError(e);
      if (written === 0) throw err;
      throw new CtlError(
        CtlErrorCode.Partial,
        `${err.message}; ${written} of ${items.length} objects were imported before the failure`,
        {
          written,
        },
      );
    }
    written += ops.length;
    if (ctx.io.isTTY && items.length > TXN_CHUNK) ctx.io.err(`imported ${written}/${items.length}\r`);
  }
  ctx.io.out(`imported ${written} objects into the ${session.type} datastore\n`);
}
