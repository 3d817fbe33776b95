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
import { isManifestError, type ManifestItem, parseManifests, type Resource } from "@margay/api";
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

/** Parses one text; `name` prefixes errors. */
export function parseText(text: string, name: string): LoadedResource[] {
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
