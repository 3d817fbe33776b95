/**
 * Writing resources as YAML or JSON. Output is read back unchanged by `parseManifests`.
 *
 * @packageDocumentation
 */
import { stringify } from "yaml";
import type { Resource } from "../resources/kinds.js";

/**
 * Serialises resources as YAML: one document per resource, separated by `---`. Field order follows
 * the objects (`apiVersion`, `kind`, `metadata`, `spec` for validated resources). Does not validate.
 */
export function toYAML(resources: Resource | readonly Resource[]): string {
  const list = Array.isArray(resources) ? resources : [resources as Resource];
  return list.map((r) => stringify(r, { lineWidth: 0 })).join("---\n");
}

/** Options of {@link toJSON}. */
export interface ToJSONOptions {
  /** Indentation; 0 for compact output. Default 2. */
  indent?: number;
}

/**
 * Serialises one resource as a JSON object, or several as a `kind: List` document (which
 * `parseManifests` reads back). Does not validate.
 */
export function toJSON(resources: Resource | readonly Resource[], options: ToJSONOptions = {}): string {
  const indent = options.indent ?? 2;
  const body = Array.isArray(resources) ? { apiVersion: "v1", kind: "List", items: resources } : resources;
  return `${JSON.stringify(body, null, indent)}\n`;
}
