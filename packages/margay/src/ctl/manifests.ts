/**
 * Reading `-f` sources: files, directories (their `.yaml`, `.yml` and `.json` files, in name order) and
 * `-` (standard input). Every document of every source is parsed and validated before the caller writes
 * anything: one bad document fails the whole batch, naming the file, the document, the line and the
 * field path.
 *
 * @packageDocumentation
 */

import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  checkResource,
  isManifestError,
  type ManifestItem,
  parseManifests,
  type Resource,
} from "@margay/api";
import {
  convertNamespace,
  convertNetworkPolicy,
  type K8sNamespace,
  type K8sNetworkPolicy,
} from "@margay/policy";
import { parseAllDocuments, stringify } from "yaml";
import { CtlError, CtlErrorCode } from "./errors.js";
import type { CtlIo } from "./io.js";

/** One resource read from a `-f` source. */
export interface LoadedResource {
  resource: Resource;
  /** `<file>: document N` (or `<stdin>`). */
  origin: string;
  /** Conversion notes (Calico fields dropped). */
  warnings: readonly string[];
  /** Set when the document was a Calico resource. */
  convertedFrom?: string | undefined;
}

const EXTENSIONS = /\.(ya?ml|json)$/i;

/** The files a `-f` argument names (a directory's manifest files, sorted), with the names errors use. */
export function expandSource(source: string, cwd: string): { path: string; name: string }[] {
  if (source === "-") return [{ path: "-", name: "<stdin>" }];
  const path = resolve(cwd, source);
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch (e) {
    throw new CtlError(
      CtlErrorCode.Io,
      `-f ${source}: cannot read it (${(e as NodeJS.ErrnoException).code ?? "error"})`,
      { file: source },
      e,
    );
  }
  if (!st.isDirectory()) return [{ path, name: source }];
  const files = readdirSync(path)
    .filter((f) => EXTENSIONS.test(f))
    .sort()
    .map((f) => ({ path: join(path, f), name: join(source, f) }));
  if (files.length === 0)
    throw new CtlError(
      CtlErrorCode.InvalidInput,
      `-f ${source}: the directory holds no .yaml, .yml or .json file`,
      {
        file: source,
      },
    );
  return files;
}

/** One line naming every validation issue of a manifest error. */
export function manifestMessage(e: unknown, name: string): string {
  if (!isManifestError(e)) return `${name}: ${e instanceof Error ? e.message : String(e)}`;
  const issues = e.details.issues ?? [];
  if (issues.length <= 1) return `${name}: ${e.message}`;
  // "document 0, line 3: invalid IPPool "a": spec.cidr: ... (and 1 more)" → every issue on the line.
  const head = e.message.replace(/: [^:]*: [^:]*\(and \d+ more\)$/, "");
  const where = /^([^:]*: invalid [^:]*)/.exec(e.message)?.[1] ?? head;
  return `${name}: ${where}: ${issues.map((i) => `${i.path || "<root>"}: ${i.message}`).join("; ")}`;
}

const K8S_HINT =
  /apiVersion:\s*["']?(networking\.k8s\.io\/v1|v1)["']?\s*$|"apiVersion"\s*:\s*"(networking\.k8s\.io\/v1|v1)"/m;

function isK8sDocument(v: unknown): v is { apiVersion: string; kind: string } {
  if (v === null || typeof v !== "object") return false;
  const { apiVersion, kind } = v as { apiVersion?: unknown; kind?: unknown };
  return (
    (apiVersion === "networking.k8s.io/v1" && kind === "NetworkPolicy") ||
    (apiVersion === "v1" && kind === "Namespace")
  );
}

/** Converts one Kubernetes NetworkPolicy or Namespace (to a Profile), validated. */
function convertK8s(doc: { kind: string }, where: string): Resource {
  let r: Resource;
  try {
    r =
      doc.kind === "Namespace"
        ? convertNamespace(doc as unknown as K8sNamespace)
        : convertNetworkPolicy(doc as unknown as K8sNetworkPolicy, {
            onInvalidRule: (e) => {
              throw e;
            },
          });
  } catch (e) {
    throw new CtlError(CtlErrorCode.InvalidInput, `${where}: ${(e as Error).message}`, {}, e);
  }
  const checked = checkResource(r);
  if (!checked.ok)
    throw new CtlError(
      CtlErrorCode.InvalidInput,
      `${where}: ${checked.issues.map((i) => `${i.path || "<root>"}: ${i.message}`).join("; ")}`,
      { issues: checked.issues },
    );
  return checked.resource;
}

/**
 * A text holding Kubernetes documents (NetworkPolicy, Namespace) among Margay and Calico ones: each
 * document on its own (Kubernetes ones converted by `@margay/policy`, the others by `parseManifests`).
 */
function parseMixed(text: string, name: string): LoadedResource[] | undefined {
  let docs: ReturnType<typeof parseAllDocuments>;
  try {
    docs = parseAllDocuments(text);
  } catch {
    return undefined;
  }
  if (!Array.isArray(docs)) return undefined;
  const values = docs.map((d) => (d.errors.length > 0 ? undefined : d.toJS({ maxAliasCount: 100 })));
  const hasK8s = values.some(
    (v) =>
      isK8sDocument(v) ||
      (v !== null &&
        typeof v === "object" &&
        Array.isArray((v as { items?: unknown }).items) &&
        (v as { items: unknown[] }).items.some(isK8sDocument)),
  );
  if (!hasK8s || docs.some((d) => d.errors.length > 0)) return undefined;
  const out: LoadedResource[] = [];
  for (const [i, v] of values.entries()) {
    if (v === null || v === undefined) continue;
    const items: unknown[] =
      typeof v === "object" &&
      (v as { kind?: unknown }).kind === "List" &&
      Array.isArray((v as { items?: unknown }).items)
        ? (v as { items: unknown[] }).items
        : [v];
    for (const [j, item] of items.entries()) {
      const where = `${name}: document ${i}${items.length > 1 || item !== v ? ` item ${j}` : ""}`;
      if (isK8sDocument(item)) {
        out.push({
          resource: convertK8s(item, where),
          origin: where,
          warnings: [],
          convertedFrom: `${item.apiVersion}/${item.kind}`,
        });
      } else {
        for (const r of parseText(stringify(item), where)) out.push({ ...r, origin: where });
      }
    }
  }
  return out;
}

/** Parses one text; `name` prefixes errors. Kubernetes NetworkPolicies and Namespaces are converted. */
export function parseText(text: string, name: string): LoadedResource[] {
  if (K8S_HINT.test(text)) {
    const mixed = parseMixed(text, name);
    if (mixed !== undefined) return mixed;
  }
  let items: ManifestItem[];
  try {
    items = parseManifests(text).items;
  } catch (e) {
    throw new CtlError(CtlErrorCode.InvalidInput, manifestMessage(e, name), { file: name }, e);
  }
  return items.map((i) => ({
    resource: i.resource,
    origin: `${name}: document ${i.documentIndex}${i.itemIndex !== undefined ? ` item ${i.itemIndex}` : ""}`,
    warnings: i.warnings,
    convertedFrom:
      i.convertedFrom === undefined ? undefined : `${i.convertedFrom.apiVersion}/${i.convertedFrom.kind}`,
  }));
}

/** Reads and validates every document of every source; throws on the first bad one (nothing read is used). */
export async function loadSources(sources: readonly string[], io: CtlIo): Promise<LoadedResource[]> {
  if (sources.length === 0)
    throw new CtlError(CtlErrorCode.Usage, "-f: at least one file, directory or - is required");
  const out: LoadedResource[] = [];
  let stdinRead = false;
  for (const source of sources) {
    for (const { path: file, name } of expandSource(source, io.cwd)) {
      let text: string;
      if (file === "-") {
        if (stdinRead) throw new CtlError(CtlErrorCode.Usage, "-f -: standard input can be read only once");
        stdinRead = true;
        text = await io.readStdin();
      } else {
        try {
          text = readFileSync(file, "utf8");
        } catch (e) {
          throw new CtlError(
            CtlErrorCode.Io,
            `${name}: cannot read it (${(e as NodeJS.ErrnoException).code ?? "error"})`,
            { file },
            e,
          );
        }
      }
      out.push(...parseText(text, name));
    }
  }
  if (out.length === 0)
    throw new CtlError(CtlErrorCode.InvalidInput, `-f ${sources.join(" ")}: no resources found`);
  return out;
}
