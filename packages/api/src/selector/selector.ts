import type { SelectorNode } from "./ast.js";
import { canonicalSelector, selectorUniqueId } from "./canonical.js";
import { isSelectorParseError, type SelectorParseError } from "./errors.js";
import { evaluateSelector, type Labels } from "./evaluate.js";
import { parseSelectorAst } from "./parser.js";
import { type LabelRestrictions, labelRestrictions } from "./restrictions.js";

/** A parsed selector: its tree plus the derived canonical text, id and evaluator. Immutable. */
export interface Selector {
  /** The text it was parsed from. */
  readonly source: string;
  /** The syntax tree. */
  readonly ast: SelectorNode;
  /** Canonical text (Calico's `String()`); equal selectors have equal canonical text. */
  readonly canonical: string;
  /** Stable id, `s:` + base64url SHA-224 of the canonical text (Calico's `UniqueID()`). */
  readonly id: string;
  /** True if the labels satisfy the selector. */
  matches(labels: Labels): boolean;
  /** Per-label must-be-present / must-be-absent / allowed-values restrictions, for indexing. */
  labelRestrictions(): LabelRestrictions;
  /** Same as {@link Selector.canonical}. */
  toString(): string;
}

class ParsedSelector implements Selector {
  readonly canonical: string;
  #id: string | undefined;
  #restrictions: LabelRestrictions | undefined;

  constructor(
    readonly source: string,
    readonly ast: SelectorNode,
  ) {
    this.canonical = canonicalSelector(ast);
  }
  get id(): string {
    this.#id ??= selectorUniqueId(this.canonical);
    return this.#id;
  }
  matches(labels: Labels): boolean {
    return evaluateSelector(this.ast, labels);
  }
  labelRestrictions(): LabelRestrictions {
    this.#restrictions ??= labelRestrictions(this.ast);
    return this.#restrictions;
  }
  toString(): string {
    return this.canonical;
  }
}

/**
 * Parses a selector expression (Calico syntax). The empty string selects everything (`all()`).
 *
 * @example
 * ```ts
 * const sel = parseSelector("role == 'db' && env in {'prod', 'staging'}");
 * sel.matches({ role: "db", env: "prod" }); // true
 * sel.canonical; // '(role == "db" && env in {"prod", "staging"})'
 * ```
 * @throws {@link SelectorParseError} on invalid input (never anything else).
 */
export function parseSelector(text: string): Selector {
  return new ParsedSelector(text, parseSelectorAst(text));
}

/** Result of {@link tryParseSelector}. */
export type SelectorParseResult =
  | {
      /** Parsed. */
      readonly ok: true;
      /** The parsed selector. */
      readonly selector: Selector;
    }
  | {
      /** Not parsed. */
      readonly ok: false;
      /** Why (with the position). */
      readonly error: SelectorParseError;
    };

/** Non-throwing {@link parseSelector}. */
export function tryParseSelector(text: string): SelectorParseResult {
  try {
    return { ok: true, selector: parseSelector(text) };
  } catch (e) {
    if (isSelectorParseError(e)) return { ok: false, error: e };
    throw e;
  }
}

/** Shorthand: parses `text` and evaluates it against `labels`. */
export function selectorMatches(text: string, labels: Labels): boolean {
  return evaluateSelector(parseSelectorAst(text), labels);
}
