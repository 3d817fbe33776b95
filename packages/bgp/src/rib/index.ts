/**
 * `@margay/bgp/rib`: Adj-RIB-In, Loc-RIB with the RFC 4271 §9.1.2.2 decision process (RFC 4456
 * tie-breaks, multipath sets), Adj-RIB-Out with export rules, route reflection and policies; interned
 * attribute sets and compact prefix keys for full Internet tables. Every update returns its diff.
 *
 * @packageDocumentation
 */
export type { AttrSet } from "./attrs.js";
export { AttrStore, attrKey, DEFAULT_LOCAL_PREF } from "./attrs.js";
export type { Decision, DecisionOptions, DecisionPeer, Path } from "./decision.js";
export { decide } from "./decision.js";
export type {
  CompiledPolicy,
  CompiledPrefix,
  CompiledStatement,
  Policy,
  PolicyActions,
  PolicyMatch,
  PolicyStatement,
  PrefixListEntry,
} from "./policy.js";
export {
  ACCEPT_ALL,
  accepts,
  applyActions,
  asPathText,
  compilePolicy,
  evaluatePolicy,
  formatCommunity,
  parseCommunity,
  parseLargeCommunity,
  parseRibPrefix,
} from "./policy.js";
export type { RibOptions, RibPeer, RibPeerOptions, RouteChange } from "./rib.js";
export { addressRank, Rib } from "./rib.js";
export type { RibPrefix } from "./table.js";
export { formatRibPrefix, PrefixTable, U32Map, v4FromKey, v4Key, v6Key } from "./table.js";
export type { BgpConfigErrorCode, BgpConfigErrorDetails } from "../errors/config-error.js";
export { BgpConfigError, isBgpConfigError } from "../errors/config-error.js";
