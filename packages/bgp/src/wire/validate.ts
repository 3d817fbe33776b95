/**
 * Session-aware validation, apart from decoding: what an OPEN or UPDATE means for this session (peer AS,
 * eBGP vs iBGP, our own addresses). Decoding already checked syntax; these checks need configuration.
 *
 * @packageDocumentation
 */
import { AS_TRANS, AttrType, OpenErrorSubcode, UpdateErrorSubcode } from "./constants.js";
import { type BgpWireError, openError, updateError, worstAction } from "./errors.js";
import { parseIpv4, parseIpv6 } from "./ip.js";
import { ErrorAction, type OpenMessage, type PathAttributes, type UpdateMessage } from "./types.js";
import type { UpdateSections } from "./update.js";

/** The 4-octet ASN an OPEN announces: the 4-octet AS capability when present, else `myAs`. */
export function openPeerAs(open: OpenMessage): number {
  for (const c of open.capabilities) if (c.kind === "four-octet-as") return c.asn;
  return open.myAs;
}

/** Options of {@link validateOpen}. */
export interface OpenValidationOptions {
  /** Expected peer ASN; a mismatch is Bad Peer AS. Default: not checked. */
  peerAs?: number;
  /** Our ASN and BGP Identifier: an iBGP peer with our identifier is Bad BGP Identifier (RFC 6286 §2.2). */
  localAs?: number;
  localBgpId?: string;
}

/**
 * Checks an OPEN against RFC 4271 §6.2, RFC 6286 and RFC 6793: hold time 1 or 2 seconds, zero BGP
 * Identifier, peer AS, 2-octet AS field inconsistent with the 4-octet AS capability. Returns the error to
 * send, or `undefined` when the OPEN is acceptable. (The version was checked while decoding.)
 */
export function validateOpen(open: OpenMessage, opts: OpenValidationOptions = {}): BgpWireError | undefined {
  if (open.holdTime === 1 || open.holdTime === 2)
    return openError(
      OpenErrorSubcode.UnacceptableHoldTime,
      "hold-time",
      `hold time ${open.holdTime} is not 0 or >= 3`,
    );
  const id = parseIpv4(open.bgpId);
  if (id === undefined || id === 0)
    return openError(OpenErrorSubcode.BadBgpIdentifier, "bgp-id-zero", "BGP Identifier is 0");
  const asn = openPeerAs(open);
  const four = open.capabilities.find((c) => c.kind === "four-octet-as");
  if (four && ((asn <= 0xffff && open.myAs !== asn) || (asn > 0xffff && open.myAs !== AS_TRANS)))
    return openError(
      OpenErrorSubcode.BadPeerAs,
      "as-trans-mismatch",
      "My Autonomous System disagrees with the 4-octet AS capability",
    );
  if (opts.peerAs !== undefined && asn !== opts.peerAs)
    return openError(OpenErrorSubcode.BadPeerAs, "peer-as", `peer AS ${asn}, expected ${opts.peerAs}`);
  if (
    opts.localBgpId !== undefined &&
    opts.localAs !== undefined &&
    asn === opts.localAs &&
    open.bgpId === opts.localBgpId
  )
    return openError(
      OpenErrorSubcode.BadBgpIdentifier,
      "bgp-id-collision",
      "iBGP peer uses our BGP Identifier",
    );
  return undefined;
}

/** Options of {@link validateUpdate}. */
export interface UpdateValidationOptions {
  /** The session is eBGP. */
  ebgp: boolean;
  /** Peer ASN, for the leftmost-AS check on eBGP (RFC 4271 §6.3). Default: not checked. */
  peerAs?: number;
  /** Require the leftmost AS of an eBGP path to be `peerAs`. Default true (off for route servers). */
  enforceFirstAs?: boolean;
  /** We are in a confederation, so AS_CONFED segments from eBGP (confederation) peers are legal. Default false. */
  confederation?: boolean;
  /** Our own addresses: a next hop equal to one is a semantic error. Default none. */
  localAddresses?: readonly string[];
  /**
   * The prefix sections of the UPDATE, from the result of `decodeUpdate`. Pass them when the UPDATE was
   * decoded with `prefixes: "sections"`: its prefix lists are then empty, and the sections tell whether
   * it announces anything (which the first-AS and next-hop checks depend on). Default: the prefix lists.
   */
  sections?: UpdateSections | undefined;
}

/** Result of {@link validateUpdate}. */
export interface UpdateValidationResult {
  /** The attributes with every `attribute-discard` applied. */
  attributes: PathAttributes;
  errors: BgpWireError[];
  /** Most severe action, `undefined` when none. */
  action: ErrorAction | undefined;
}

function isBadV4NextHop(s: string): boolean {
  const n = parseIpv4(s);
  if (n === undefined) return true;
  const first = n >>> 24;
  // 0.0.0.0/8, multicast and class E cannot be a next hop.
  return first === 0 || first >= 224;
}

function isBadV6NextHop(s: string): boolean {
  const b = parseIpv6(s);
  if (!b) return true;
  return b[0] === 0xff || b.every((x) => x === 0);
}

/**
 * RFC 7606 §7 semantic checks that depend on the session: LOCAL_PREF, ORIGINATOR_ID and CLUSTER_LIST from
 * an eBGP peer are discarded; AS_CONFED segments from a non-confederation eBGP peer, a leftmost AS that is
 * not the peer's, and unusable next hops (RFC 4271 §6.3) make the UPDATE treat-as-withdraw.
 */
export function validateUpdate(update: UpdateMessage, opts: UpdateValidationOptions): UpdateValidationResult {
  const a: PathAttributes = { ...update.attributes };
  const errors: BgpWireError[] = [];
  let action: ErrorAction | undefined;
  const add = (e: BgpWireError) => {
    errors.push(e);
    action = worstAction(action, e.action);
  };
  const discard = (attr: number, key: keyof PathAttributes, name: string) => {
    delete a[key];
    add(
      updateError(
        UpdateErrorSubcode.MalformedAttributeList,
        ErrorAction.AttributeDiscard,
        { reason: "ebgp-attribute", attribute: attr },
        `${name} from an eBGP peer discarded`,
      ),
    );
  };
  const withdraw = (subcode: number, attr: number, reason: string, message: string) =>
    add(updateError(subcode, ErrorAction.TreatAsWithdraw, { reason, attribute: attr }, message));

  if (opts.ebgp) {
    if (a.localPref !== undefined) discard(AttrType.LocalPref, "localPref", "LOCAL_PREF");
    if (a.originatorId !== undefined) discard(AttrType.OriginatorId, "originatorId", "ORIGINATOR_ID");
    if (a.clusterList !== undefined) discard(AttrType.ClusterList, "clusterList", "CLUSTER_LIST");
  }
  const sec = opts.sections;
  const v4Announces = sec ? sec.nlri.end > sec.nlri.start : update.nlri.length > 0;
  const mpAnnounces = sec
    ? sec.mpReach !== undefined && sec.mpReach.end > sec.mpReach.start
    : (a.mpReach?.nlri.length ?? 0) > 0;
  const announces = v4Announces || mpAnnounces;
  if (announces && a.asPath) {
    if (opts.ebgp && !opts.confederation && a.asPath.some((s) => s.type === 3 || s.type === 4))
      withdraw(
        UpdateErrorSubcode.MalformedAsPath,
        AttrType.AsPath,
        "confed-segment",
        "AS_CONFED segment from an eBGP peer",
      );
    if (opts.ebgp && !opts.confederation && opts.peerAs !== undefined && (opts.enforceFirstAs ?? true)) {
      const first = a.asPath[0];
      if (first?.type !== 2 || first.asns[0] !== opts.peerAs)
        withdraw(
          UpdateErrorSubcode.MalformedAsPath,
          AttrType.AsPath,
          "first-as",
          "leftmost AS is not the peer's AS",
        );
    }
  }
  const locals = new Set(opts.localAddresses ?? []);
  if (v4Announces && a.nextHop !== undefined && (isBadV4NextHop(a.nextHop) || locals.has(a.nextHop)))
    withdraw(
      UpdateErrorSubcode.InvalidNextHopAttribute,
      AttrType.NextHop,
      "next-hop",
      `unusable NEXT_HOP ${a.nextHop}`,
    );
  if (a.mpReach && mpAnnounces) {
    const nh = a.mpReach.nextHops[0];
    const bad =
      nh === undefined || (nh.includes(":") ? isBadV6NextHop(nh) : isBadV4NextHop(nh)) || locals.has(nh);
    if (bad)
      withdraw(
        UpdateErrorSubcode.InvalidNextHopAttribute,
        AttrType.MpReachNlri,
        "next-hop",
        `unusable MP_REACH next hop ${nh}`,
      );
  }
  return { attributes: a, errors, action };
}
