/**
 * Per-attribute rules: expected flags and the RFC 7606 §7 (and RFC 6793 §6, RFC 8092 §6, RFC 4760 §7)
 * action when an attribute is malformed. Decoding consults this table; it holds no decoding itself.
 *
 * @packageDocumentation
 */
import { AttrFlag, AttrType, UpdateErrorSubcode } from "./constants.js";
import { ErrorAction } from "./types.js";

/** What the codec knows about one path attribute type. */
export interface AttributeRule {
  /** RFC name, for messages. */
  name: string;
  /** Expected Optional and Transitive bits (`flags & 0xc0`). */
  flags: number;
  /** RFC 7606 action when the attribute is malformed (length, value or flags). */
  action: ErrorAction;
  /** NOTIFICATION subcode for a malformed value when the session is reset. */
  subcode: number;
}

const O = AttrFlag.Optional;
const T = AttrFlag.Transitive;
const S = UpdateErrorSubcode;
const A = ErrorAction;

/** Rules for every attribute type the codec interprets. */
export const ATTRIBUTE_RULES: ReadonlyMap<number, AttributeRule> = new Map<number, AttributeRule>([
  [
    AttrType.Origin,
    { name: "ORIGIN", flags: T, action: A.TreatAsWithdraw, subcode: S.InvalidOriginAttribute },
  ],
  [AttrType.AsPath, { name: "AS_PATH", flags: T, action: A.TreatAsWithdraw, subcode: S.MalformedAsPath }],
  [
    AttrType.NextHop,
    { name: "NEXT_HOP", flags: T, action: A.TreatAsWithdraw, subcode: S.AttributeLengthError },
  ],
  [
    AttrType.MultiExitDisc,
    { name: "MULTI_EXIT_DISC", flags: O, action: A.TreatAsWithdraw, subcode: S.AttributeLengthError },
  ],
  [
    AttrType.LocalPref,
    { name: "LOCAL_PREF", flags: T, action: A.TreatAsWithdraw, subcode: S.AttributeLengthError },
  ],
  [
    AttrType.AtomicAggregate,
    { name: "ATOMIC_AGGREGATE", flags: T, action: A.AttributeDiscard, subcode: S.AttributeLengthError },
  ],
  [
    AttrType.Aggregator,
    { name: "AGGREGATOR", flags: O | T, action: A.AttributeDiscard, subcode: S.AttributeLengthError },
  ],
  [
    AttrType.Communities,
    { name: "COMMUNITIES", flags: O | T, action: A.TreatAsWithdraw, subcode: S.OptionalAttributeError },
  ],
  [
    AttrType.OriginatorId,
    { name: "ORIGINATOR_ID", flags: O, action: A.TreatAsWithdraw, subcode: S.AttributeLengthError },
  ],
  [
    AttrType.ClusterList,
    { name: "CLUSTER_LIST", flags: O, action: A.TreatAsWithdraw, subcode: S.AttributeLengthError },
  ],
  [
    AttrType.MpReachNlri,
    { name: "MP_REACH_NLRI", flags: O, action: A.AfiSafiDisable, subcode: S.OptionalAttributeError },
  ],
  [
    AttrType.MpUnreachNlri,
    { name: "MP_UNREACH_NLRI", flags: O, action: A.AfiSafiDisable, subcode: S.OptionalAttributeError },
  ],
  [
    AttrType.ExtendedCommunities,
    {
      name: "EXTENDED_COMMUNITIES",
      flags: O | T,
      action: A.TreatAsWithdraw,
      subcode: S.OptionalAttributeError,
    },
  ],
  [
    AttrType.As4Path,
    { name: "AS4_PATH", flags: O | T, action: A.AttributeDiscard, subcode: S.OptionalAttributeError },
  ],
  [
    AttrType.As4Aggregator,
    { name: "AS4_AGGREGATOR", flags: O | T, action: A.AttributeDiscard, subcode: S.OptionalAttributeError },
  ],
  [
    AttrType.LargeCommunities,
    { name: "LARGE_COMMUNITY", flags: O | T, action: A.TreatAsWithdraw, subcode: S.OptionalAttributeError },
  ],
]);

/** True when `flags` carry the Optional/Transitive bits `rule` requires (RFC 7606 §3.c). */
export function flagsMatch(rule: AttributeRule, flags: number): boolean {
  return (flags & (O | T)) === rule.flags;
}
