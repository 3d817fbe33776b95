/**
 * Calico's label selector language: tokenizer, parser, evaluator, canonical form, stable id and
 * label-restriction analysis.
 *
 * @packageDocumentation
 */
export type {
  AllNode,
  BoolNode,
  GlobalNode,
  HasNode,
  LabelSetNode,
  LabelValueNode,
  NotNode,
  SelectorNode,
} from "./ast.js";
export { canonicalSelector, selectorUniqueId } from "./canonical.js";
export type { SelectorParseErrorDetails } from "./errors.js";
export { isSelectorParseError, SelectorParseError } from "./errors.js";
export type { Labels } from "./evaluate.js";
export { evaluateSelector } from "./evaluate.js";
export { MAX_SELECTOR_NESTING, parseSelectorAst } from "./parser.js";
export type { LabelRestriction, LabelRestrictions } from "./restrictions.js";
export { labelRestrictions } from "./restrictions.js";
export type { Selector, SelectorParseResult } from "./selector.js";
export { parseSelector, selectorMatches, tryParseSelector } from "./selector.js";
export type { SelectorToken } from "./tokenizer.js";
export { SelectorTokenKind, tokenizeSelector } from "./tokenizer.js";
