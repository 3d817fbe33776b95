/**
 * Printing resources and tables: `-o yaml|json|name|wide|custom-columns=…` and the default table
 * (calicoctl's `ps` layout: upper-case headings, columns padded with spaces, no borders). Colour is the
 * caller's choice (`Style`): a TTY gets bold headings, a pipe plain text.
 *
 * @packageDocumentation
 */

import Table from "cli-table3";
import { stringify } from "yaml";
import { CtlError, CtlErrorCode } from "./errors.js";

/** The output formats of `get` (and of commands that print resources). */
export type OutputFormat =
  | { type: "table" }
  | { type: "wide" }
  | { type: "yaml" }
  | { type: "json" }
  | { type: "name" }
  | { type: "custom-columns"; columns: { heading: string; path: (string | number)[] }[] };

/** Text styling; identity functions when colour is off. */
export interface Style {
  bold(s: string): string;
  red(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
  dim(s: string): string;
}

/** No colour. */
export const PLAIN: Style = {
  bold: (s) => s,
  red: (s) => s,
  green: (s) => s,
  yellow: (s) => s,
  dim: (s) => s,
};

/** Parses a field path `.metadata.name`, `.spec.ipNetworks[0]`, `.metadata.labels.app`. */
export function parseFieldPath(text: string, what: string): (string | number)[] {
  const t = text.trim();
  if (!t.startsWith(".") && !t.startsWith("{."))
    throw new CtlError(
      CtlErrorCode.Usage,
      `${what}: a field path starts with ".", got ${JSON.stringify(text)}`,
    );
  const body = t.startsWith("{") ? t.replace(/^\{|\}$/g, "") : t;
  const out: (string | number)[] = [];
  const re = /\.([^.[\]]+)|\[(\d+)\]|\["([^"]+)"\]/y;
  let i = 0;
  while (i < body.length) {
    re.lastIndex = i;
    const m = re.exec(body);
    if (m === null)
      throw new CtlError(
        CtlErrorCode.Usage,
        `${what}: cannot read field path ${JSON.stringify(text)} at offset ${i}`,
      );
    out.push(m[1] ?? (m[2] !== undefined ? Number(m[2]) : m[3]!));
    i = re.lastIndex;
  }
  return out;
}

/** Parses the value of `-o`. */
export function parseOutputFormat(text: string): OutputFormat {
  switch (text) {
    case "table":
    case "ps":
      return { type: "table" };
    case "wide":
      return { type: "wide" };
    case "yaml":
      return { type: "yaml" };
    case "json":
      return { type: "json" };
    case "name":
      return { type: "name" };
  }
  if (text.startsWith("custom-columns=")) {
    const spec = text.slice("custom-columns=".length);
    if (spec === "")
      throw new CtlError(
        CtlErrorCode.Usage,
        "-o custom-columns=: at least one NAME:.path column is required",
      );
    const columns = spec.split(",").map((col) => {
      const at = col.indexOf(":");
      if (at <= 0)
        throw new CtlError(
          CtlErrorCode.Usage,
          `-o custom-columns: expected HEADING:.field.path, got ${JSON.stringify(col)}`,
        );
      return { heading: col.slice(0, at), path: parseFieldPath(col.slice(at + 1), "-o custom-columns") };
    });
    return { type: "custom-columns", columns };
  }
  throw new CtlError(
    CtlErrorCode.Usage,
    `-o: unknown output format ${JSON.stringify(text)} (yaml, json, wide, name, table, custom-columns=NAME:.path,...)`,
  );
}

/** The value at `path` in `obj`, or undefined. */
export function fieldAt(obj: unknown, path: readonly (string | number)[]): unknown {
  let cur = obj;
  for (const p of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string | number, unknown>)[p];
  }
  return cur;
}

/** How a value reads in a table cell (`<none>` for nothing, lists comma-separated). */
export function cell(v: unknown): string {
  if (v === undefined || v === null || v === "") return "<none>";
  if (Array.isArray(v))
    return v.length === 0
      ? "<none>"
      : v.map((x) => (typeof x === "object" ? JSON.stringify(x) : String(x))).join(",");
  if (typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>);
    if (entries.length === 0) return "<none>";
    return entries.map(([k, x]) => `${k}=${typeof x === "object" ? JSON.stringify(x) : String(x)}`).join(",");
  }
  return String(v);
}

/** A borderless table: headings then rows, columns separated by three spaces. */
export function renderTable(
  headings: readonly string[],
  rows: readonly (readonly string[])[],
  style: Style = PLAIN,
): string {
  const table = new Table({
    head: headings.map((h) => style.bold(h)),
    chars: {
      top: "",
      "top-mid": "",
      "top-left": "",
      "top-right": "",
      bottom: "",
      "bottom-mid": "",
      "bottom-left": "",
      "bottom-right": "",
      left: "",
      "left-mid": "",
      mid: "",
      "mid-mid": "",
      right: "",
      "right-mid": "",
      middle: "   ",
    },
    style: { head: [], border: [], "padding-left": 0, "padding-right": 0, compact: true },
  });
  for (const r of rows) table.push([...r]);
  return `${table
    .toString()
    .split("\n")
    .map((l) => l.trimEnd())
    .join("\n")}\n`;
}

/** A YAML document (no line folding). */
export function yaml(value: unknown): string {
  return stringify(value, { lineWidth: 0 });
}

/** A JSON document, 2-space indented, newline-terminated. */
export function json(value: unknown): string {
  return `${JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? v.toString() : v), 2)}\n`;
}
