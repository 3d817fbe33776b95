/**
 * Reading manifests: YAML (multi-document) or JSON, `kind: List` and `<Kind>List` documents, Margay
 * and Calico resources.
 *
 * @packageDocumentation
 */
import { Composer, type CST, type Document, isMap, isSeq, LineCounter, Parser } from "yaml";
import { isResourceKind, type Resource } from "../resources/kinds.js";
import { API_VERSION, CALICO_API_VERSION } from "../resources/meta.js";
import { isPlainObject, type Obj, show } from "../validation/context.js";
import type { ValidationIssue } from "../validation/errors.js";
import { checkResource, withDefaults } from "../validation/resource.js";
import { CALICO_KIND_MAP, convertCalicoDocument } from "./calico.js";
import { isManifestError, ManifestError, type ManifestErrorDetails } from "./errors.js";

/**
 * Deepest collection nesting (maps and sequences, block or flow) a manifest may have; resources nest about
 * ten levels. The YAML composer and validation recurse once per level, so much deeper input would exhaust
 * the call stack, and V8 may then abort the whole process (an out-of-memory in its regular-expression
 * compiler) instead of throwing. Deeper input is refused with a `syntax` {@link ManifestError} before
 * anything recurses.
 */
export const MAX_MANIFEST_NESTING = 128;

/** First collection token nested deeper than the limit (an iterative walk: the CST can be arbitrarily deep). */
function tooDeep(token: CST.Token): { offset: number } | undefined {
  const stack: [unknown, number][] = [[token, 0]];
  while (stack.length > 0) {
    const [t, depth] = stack.pop()!;
    if (t === null || typeof t !== "object") continue;
    const tok = t as { type?: unknown; offset?: unknown; value?: unknown; items?: unknown };
    let d = depth;
    if (tok.type === "block-map" || tok.type === "block-seq" || tok.type === "flow-collection") {
      d++;
      if (d > MAX_MANIFEST_NESTING) return { offset: typeof tok.offset === "number" ? tok.offset : 0 };
    }
    if (tok.type === "document") stack.push([tok.value, d]);
    if (Array.isArray(tok.items)) {
      for (const item of tok.items as { key?: unknown; value?: unknown }[]) {
        stack.push([item.key, d], [item.value, d]);
      }
    }
  }
  return undefined;
}

/** Annotation recording the origin of a converted resource (with `annotateConversions`). */
export const CONVERTED_FROM_ANNOTATION = "margay.io/converted-from";

/** Options of {@link parseManifests}. */
export interface ManifestParseOptions {
  /** Apply `withDefaults` to every resource. Default false. */
  defaults?: boolean;
  /** Fail on Calico fields Margay does not implement instead of dropping them with a warning. Default false. */
  strict?: boolean;
  /** Record the Calico origin of converted resources in the `margay.io/converted-from` annotation. Default false. */
  annotateConversions?: boolean;
}

/** One resource read from a manifest, with where it came from. */
export interface ManifestItem {
  /** The validated (and, with `defaults`, defaulted) resource. */
  readonly resource: Resource;
  /** 0-based index of its document in the stream. */
  readonly documentIndex: number;
  /** 0-based index within a List document. */
  readonly itemIndex?: number;
  /** 1-based line where the resource starts. */
  readonly line?: number;
  /** Set when the document was a Calico resource converted to Margay. */
  readonly convertedFrom?: {
    /** The document's apiVersion (`projectcalico.org/v3`). */
    readonly apiVersion: string;
    /** The document's (Calico) kind. */
    readonly kind: string;
  };
  /** Fields dropped or rewritten by conversion. Empty for native documents. */
  readonly warnings: readonly string[];
}

/** Result of {@link parseManifests}. */
export interface ManifestParseResult {
  /** The resources, in document order. */
  readonly resources: Resource[];
  /** The same resources with their origin and conversion notes. */
  readonly items: ManifestItem[];
}

interface Where {
  documentIndex: number;
  itemIndex?: number;
  line?: number;
}

function details(
  where: Where,
  reason: ManifestErrorDetails["reason"],
  extra: Partial<ManifestErrorDetails> = {},
) {
  return { reason, ...where, ...extra } as ManifestErrorDetails;
}

const TOP_LEVEL_SPEC_FIELD = /^spec(?:\.([A-Za-z_$][A-Za-z0-9_$]*)|\[("(?:[^"\\]|\\.)*")\])$/;

function topLevelSpecField(issue: ValidationIssue): string | undefined {
  if (issue.message !== "unknown field") return undefined;
  const m = TOP_LEVEL_SPEC_FIELD.exec(issue.path);
  if (m === null) return undefined;
  return m[1] ?? (JSON.parse(m[2]!) as string);
}

function readOne(doc: Obj, where: Where, opts: ManifestParseOptions): ManifestItem {
  const apiVersion = doc.apiVersion;
  const kind = doc.kind;
  const ident = {
    ...(typeof kind === "string" ? { kind } : {}),
    ...(typeof apiVersion === "string" ? { apiVersion } : {}),
  };
  let object: unknown = doc;
  let warnings: string[] = [];
  let convertedFrom: ManifestItem["convertedFrom"];

  if (apiVersion === API_VERSION) {
    if (!isResourceKind(kind)) {
      throw new ManifestError(
        `unknown kind ${show(kind)} for ${API_VERSION}`,
        details(where, "unknown-kind", ident),
      );
    }
  } else if (apiVersion === CALICO_API_VERSION) {
    if (typeof kind !== "string" || !Object.hasOwn(CALICO_KIND_MAP, kind)) {
      throw new ManifestError(
        `Calico kind ${show(kind)} is not supported (supported: ${Object.keys(CALICO_KIND_MAP).join(", ")})`,
        details(where, "unknown-kind", ident),
      );
    }
    const conv = convertCalicoDocument(doc);
    object = conv.object;
    warnings = conv.warnings;
    convertedFrom = { apiVersion: CALICO_API_VERSION, kind };
  } else {
    throw new ManifestError(
      `unsupported apiVersion ${show(apiVersion)} (expected ${API_VERSION} or ${CALICO_API_VERSION})`,
      details(where, "unsupported-api-version", ident),
    );
  }

  let result = checkResource(object);
  if (!result.ok && convertedFrom !== undefined) {
    // Calico fields Margay does not implement: drop them (with a warning) unless strict.
    const dropped = result.issues.map(topLevelSpecField).filter((f): f is string => f !== undefined);
    if (dropped.length > 0) {
      if (opts.strict) {
        throw new ManifestError(
          `Calico field(s) not supported by Margay: ${dropped.map((f) => `spec.${f}`).join(", ")}`,
          details(where, "unsupported-field", { ...ident, issues: result.issues }),
        );
      }
      const spec = { ...((object as { spec: Obj }).spec as Obj) };
      for (const f of dropped) {
        delete spec[f];
        warnings.push(`dropped spec.${f} (not supported by Margay)`);
      }
      object = { ...(object as Obj), spec };
      result = checkResource(object);
    }
  }
  if (!result.ok) {
    throw new ManifestError(
      result.error.message,
      details(where, "invalid-resource", { ...ident, issues: result.issues }),
      { cause: result.error },
    );
  }
  let resource = opts.defaults ? withDefaults(result.resource) : result.resource;
  if (convertedFrom !== undefined && opts.annotateConversions) {
    resource = {
      ...resource,
      metadata: {
        ...resource.metadata,
        annotations: {
          ...resource.metadata.annotations,
          [CONVERTED_FROM_ANNOTATION]: `${convertedFrom.apiVersion}/${convertedFrom.kind}`,
        },
      },
    };
  }
  const item: { -readonly [K in keyof ManifestItem]: ManifestItem[K] } = {
    resource,
    documentIndex: where.documentIndex,
    warnings,
  };
  if (where.itemIndex !== undefined) item.itemIndex = where.itemIndex;
  if (where.line !== undefined) item.line = where.line;
  if (convertedFrom !== undefined) item.convertedFrom = convertedFrom;
  return item;
}

function isListKind(kind: unknown): kind is string {
  return typeof kind === "string" && (kind === "List" || (kind.endsWith("List") && kind.length > 4));
}

function readDocument(
  value: unknown,
  where: Where,
  itemLines: (i: number) => number | undefined,
  opts: ManifestParseOptions,
) {
  if (Array.isArray(value)) return readItems(value, where, undefined, undefined, itemLines, opts);
  if (!isPlainObject(value)) {
    throw new ManifestError(
      `expected a resource object, got ${show(value)}`,
      details(where, "not-an-object"),
    );
  }
  if (isListKind(value.kind)) {
    const items = value.items ?? [];
    if (!Array.isArray(items)) {
      throw new ManifestError(
        `${value.kind}.items must be an array`,
        details(where, "not-an-object", { kind: value.kind }),
      );
    }
    const itemKind = value.kind === "List" ? undefined : value.kind.slice(0, -"List".length);
    const itemApiVersion =
      typeof value.apiVersion === "string" && value.apiVersion !== "v1" ? value.apiVersion : undefined;
    return readItems(items, where, itemKind, itemApiVersion, itemLines, opts);
  }
  return [readOne(value, where, opts)];
}

function readItems(
  items: readonly unknown[],
  where: Where,
  kind: string | undefined,
  apiVersion: string | undefined,
  itemLines: (i: number) => number | undefined,
  opts: ManifestParseOptions,
): ManifestItem[] {
  return items.map((item, itemIndex) => {
    const line = itemLines(itemIndex);
    const at: Where = {
      documentIndex: where.documentIndex,
      itemIndex,
      ...(line !== undefined ? { line } : {}),
    };
    if (!isPlainObject(item)) {
      throw new ManifestError(`expected a resource object, got ${show(item)}`, details(at, "not-an-object"));
    }
    if (isListKind(item.kind))
      throw new ManifestError("nested lists are not supported", details(at, "not-an-object"));
    // `<Kind>List` items may leave out their kind and apiVersion (as Calico's list output allows).
    const filled = {
      ...(kind !== undefined ? { kind } : {}),
      ...(apiVersion !== undefined ? { apiVersion } : {}),
      ...item,
    };
    return readOne(filled, at, opts);
  });
}

/**
 * Reads Margay (`margay.io/v1`) and Calico (`projectcalico.org/v3`) resources from YAML or JSON
 * text: several YAML documents separated by `---`, `kind: List` or `<Kind>List` documents, or a JSON
 * array. Calico documents of supported kinds are converted (see {@link ManifestItem.convertedFrom}).
 * Every resource is validated.
 *
 * @example
 * ```ts
 * const { resources } = parseManifests(`
 * apiVersion: projectcalico.org/v3
 * kind: IPPool
 * metadata: { name: pool-a }
 * spec: { cidr: 10.244.0.0/16, vxlanMode: Always }
 * `);
 * resources[0].apiVersion; // "margay.io/v1"
 * ```
 * @throws {@link ManifestError} naming the document (and list item and line) that failed. Never
 *   throws anything else.
 */
export function parseManifests(text: string, options: ManifestParseOptions = {}): ManifestParseResult {
  if (typeof text !== "string") {
    throw new ManifestError("manifest text must be a string", details({ documentIndex: 0 }, "syntax"));
  }
  const lineCounter = new LineCounter();
  // What `parseAllDocuments` does, in two steps: the CST parser is iterative, so its tokens can be checked
  // for excessive nesting before the (recursive) composer runs.
  let list: Document.Parsed[];
  try {
    const tokens = Array.from(new Parser(lineCounter.addNewLine).parse(text));
    let documentIndex = 0;
    for (const token of tokens) {
      const deep = tooDeep(token);
      if (deep !== undefined) {
        const pos = lineCounter.linePos(deep.offset);
        throw new ManifestError(
          `collections nested deeper than ${MAX_MANIFEST_NESTING} levels`,
          details({ documentIndex, line: pos.line }, "syntax", { column: pos.col }),
        );
      }
      if (token.type === "document") documentIndex++;
    }
    list = Array.from(new Composer({ uniqueKeys: true }).compose(tokens));
  } catch (e) {
    if (isManifestError(e)) throw e;
    // Nothing above should throw; if the YAML library does (e.g. on resource exhaustion), say so in our type.
    throw new ManifestError(
      `YAML error: ${e instanceof Error ? e.message : String(e)}`,
      details({ documentIndex: 0 }, "syntax"),
      { cause: e },
    );
  }
  const items: ManifestItem[] = [];
  for (const [documentIndex, doc] of list.entries()) {
    const err = doc.errors[0];
    const startOffset = doc.contents?.range?.[0] ?? doc.range[0];
    const startLine = lineCounter.linePos(startOffset).line;
    if (err !== undefined) {
      const pos = lineCounter.linePos(err.pos[0]);
      throw new ManifestError(
        `YAML syntax error: ${err.message.split("\n")[0]}`,
        details({ documentIndex, line: pos.line }, "syntax", { column: pos.col }),
        { cause: err },
      );
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (e) {
      throw new ManifestError(
        `YAML error: ${e instanceof Error ? e.message : String(e)}`,
        details({ documentIndex, line: startLine }, "syntax"),
        { cause: e },
      );
    }
    if (value === null || value === undefined) continue; // empty document (e.g. a trailing ---)
    const contents = doc.contents;
    const seq = isSeq(contents) ? contents : isMap(contents) ? contents.get("items", true) : undefined;
    const itemLines = (i: number): number | undefined => {
      const node = isSeq(seq) ? seq.items[i] : undefined;
      const off = node !== null && typeof node === "object" && "range" in node ? node.range?.[0] : undefined;
      return off === undefined ? undefined : lineCounter.linePos(off).line;
    };
    items.push(...readDocument(value, { documentIndex, line: startLine }, itemLines, options));
  }
  return { resources: items.map((i) => i.resource), items };
}
