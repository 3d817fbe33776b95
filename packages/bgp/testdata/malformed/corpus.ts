/**
 * Corpus of malformed BGP messages, each with the NOTIFICATION code/subcode and RFC 7606 action that the
 * wire layer must report. Hand-built from RFC 4271 §6, RFC 7606 §4–§7, RFC 6793 §6, RFC 4760 §7,
 * RFC 5492, RFC 7313 and RFC 8654. Run by `src/wire/malformed.test.ts`; also seeds the fuzzer.
 */
import type { CodecContext, ErrorAction, OpenValidationOptions, UpdateValidationOptions } from "../../src/wire/index.js";

/** Where the error must surface. */
export type Stage = "framer" | "decode" | "validate-open" | "validate-update";

/** One malformed message and what the wire layer must say about it. */
export interface MalformedCase {
  name: string;
  /** RFC section the expectation comes from. */
  rfc: string;
  bytes: Uint8Array;
  stage: Stage;
  ctx?: Partial<CodecContext>;
  openOptions?: OpenValidationOptions;
  updateOptions?: UpdateValidationOptions;
  expect: { code: number; subcode: number; action: ErrorAction };
}

const hex = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const MARKER = "ff".repeat(16);

/** A message with a correct header around `body`. */
function msg(type: number, body: string): Uint8Array {
  const b = hex(body);
  const len = 19 + b.length;
  return hex(`${MARKER}${len.toString(16).padStart(4, "0")}${type.toString(16).padStart(2, "0")}${body}`);
}

function u16(n: number): string {
  return n.toString(16).padStart(4, "0");
}

/** An UPDATE from its three parts (hex). */
function update(withdrawn: string, attrs: string, nlri: string): Uint8Array {
  const w = withdrawn.replace(/\s+/g, "");
  const a = attrs.replace(/\s+/g, "");
  return msg(2, `${u16(w.length / 2)}${w}${u16(a.length / 2)}${a}${nlri}`);
}

/** An attribute TLV (short length). */
function attr(flags: number, type: number, value: string): string {
  const v = value.replace(/\s+/g, "");
  return `${flags.toString(16).padStart(2, "0")}${type.toString(16).padStart(2, "0")}${(v.length / 2).toString(16).padStart(2, "0")}${v}`;
}

/** An OPEN with the given hold time, BGP ID, ASN and raw optional parameters. */
function open(opts: { version?: number; myAs?: number; hold?: number; id?: string; params?: string } = {}): Uint8Array {
  const p = (opts.params ?? "").replace(/\s+/g, "");
  const v = (opts.version ?? 4).toString(16).padStart(2, "0");
  return msg(1, `${v}${u16(opts.myAs ?? 65001)}${u16(opts.hold ?? 90)}${opts.id ?? "0a000001"}${(p.length / 2).toString(16).padStart(2, "0")}${p}`);
}

const ORIGIN = attr(0x40, 1, "00");
const AS_PATH = attr(0x40, 2, "02 01 0000fde8");
const NEXT_HOP = attr(0x40, 3, "0a000001");
const BASE = ORIGIN + AS_PATH + NEXT_HOP;
const NLRI = "18 0a0100";
const NH6 = "20010db8000000000000000000000001";
const MP_REACH = attr(0x80, 14, `0002 01 10 ${NH6} 00 30 20010db80001`);

const RESET = "session-reset" as const;
const TAW = "treat-as-withdraw" as const;
const DISCARD = "attribute-discard" as const;
const DISABLE = "afi-safi-disable" as const;

const hdr = (subcode: number) => ({ code: 1, subcode, action: RESET });
const openErr = (subcode: number) => ({ code: 2, subcode, action: RESET });
const upd = (subcode: number, action: ErrorAction) => ({ code: 3, subcode, action });

/** The corpus. */
export const MALFORMED: readonly MalformedCase[] = [
  // --- Message header (RFC 4271 §6.1), seen by the framer.
  { name: "marker not all ones", rfc: "4271 §6.1", stage: "framer", bytes: hex(`${"ff".repeat(15)}fe 0013 04`), expect: hdr(1) },
  { name: "length 18", rfc: "4271 §6.1", stage: "framer", bytes: hex(`${MARKER} 0012 04`), expect: hdr(2) },
  { name: "length 4097 without extended messages", rfc: "8654 §4", stage: "framer", bytes: hex(`${MARKER} 1001 02`), expect: hdr(2) },
  { name: "length 65535 without extended messages", rfc: "8654 §4", stage: "framer", bytes: hex(`${MARKER} ffff 02`), expect: hdr(2) },
  { name: "unknown message type 6", rfc: "4271 §6.1", stage: "framer", bytes: hex(`${MARKER} 0013 06`), expect: hdr(3) },
  { name: "message type 0", rfc: "4271 §6.1", stage: "framer", bytes: hex(`${MARKER} 0013 00`), expect: hdr(3) },
  { name: "KEEPALIVE of 20 bytes", rfc: "4271 §6.1", stage: "framer", bytes: hex(`${MARKER} 0014 04 00`), expect: hdr(2) },
  { name: "OPEN of 28 bytes", rfc: "4271 §6.1", stage: "framer", bytes: hex(`${MARKER} 001c 01 ${"00".repeat(9)}`), expect: hdr(2) },
  { name: "UPDATE of 22 bytes", rfc: "4271 §6.1", stage: "framer", bytes: hex(`${MARKER} 0016 02 000000`), expect: hdr(2) },
  { name: "NOTIFICATION of 20 bytes", rfc: "4271 §6.1", stage: "framer", bytes: hex(`${MARKER} 0014 03 06`), expect: hdr(2) },
  { name: "header length disagrees with the bytes", rfc: "4271 §6.1", stage: "decode", bytes: hex(`${MARKER} 0017 02 0000 0000 00`), expect: hdr(2) },
  { name: "ROUTE-REFRESH of 24 bytes", rfc: "7313 §5", stage: "decode", bytes: msg(5, "0001 00 01 00"), expect: { code: 7, subcode: 1, action: RESET } },

  // --- OPEN (RFC 4271 §6.2, RFC 5492, RFC 6793, RFC 7911).
  { name: "OPEN version 3", rfc: "4271 §6.2", stage: "decode", bytes: open({ version: 3 }), expect: openErr(1) },
  { name: "OPEN authentication parameter (type 1)", rfc: "4271 §6.2", stage: "decode", bytes: open({ params: "01 02 0000" }), expect: openErr(4) },
  { name: "OPEN parameter overruns the message", rfc: "4271 §6.2", stage: "decode", bytes: open({ params: "02 08 0104 00010001" }), expect: openErr(0) },
  { name: "OPEN capability overruns its parameter", rfc: "5492 §3", stage: "decode", bytes: open({ params: "02 04 0104 0001" }), expect: openErr(0) },
  { name: "OPEN multiprotocol capability of 3 bytes", rfc: "4760 §8", stage: "decode", bytes: open({ params: "02 05 0103 000100" }), expect: openErr(0) },
  { name: "OPEN 4-octet AS capability of 2 bytes", rfc: "6793 §3", stage: "decode", bytes: open({ params: "02 04 4102 fde9" }), expect: openErr(0) },
  { name: "OPEN ADD-PATH send/receive 0", rfc: "7911 §4", stage: "decode", bytes: open({ params: "02 06 4504 00010100" }), expect: openErr(0) },
  { name: "OPEN graceful restart of 3 bytes", rfc: "4724 §3", stage: "decode", bytes: open({ params: "02 05 4003 007800" }), expect: openErr(0) },
  { name: "OPEN hold time 1", rfc: "4271 §6.2", stage: "validate-open", bytes: open({ hold: 1 }), expect: openErr(6) },
  { name: "OPEN hold time 2", rfc: "4271 §6.2", stage: "validate-open", bytes: open({ hold: 2 }), expect: openErr(6) },
  { name: "OPEN BGP Identifier 0.0.0.0", rfc: "6286 §2.2", stage: "validate-open", bytes: open({ id: "00000000" }), expect: openErr(3) },
  { name: "OPEN from an unexpected AS", rfc: "4271 §6.2", stage: "validate-open", bytes: open({ myAs: 65002 }), openOptions: { peerAs: 65001 }, expect: openErr(2) },
  {
    name: "OPEN 4-octet AS 4200000000 but My AS not AS_TRANS",
    rfc: "6793 §4.1",
    stage: "validate-open",
    bytes: open({ myAs: 65001, params: "02 06 4104 fa56ea00" }),
    expect: openErr(2),
  },
  {
    name: "iBGP OPEN with our own BGP Identifier",
    rfc: "6286 §2.2",
    stage: "validate-open",
    bytes: open({ myAs: 65001, id: "0a000001" }),
    openOptions: { localAs: 65001, localBgpId: "10.0.0.1" },
    expect: openErr(3),
  },

  // --- UPDATE errors that reset the session (RFC 7606 §3, §5.3).
  { name: "withdrawn routes length overruns", rfc: "7606 §3.a", stage: "decode", bytes: msg(2, "0010 0000"), expect: upd(1, RESET) },
  { name: "total path attribute length overruns", rfc: "7606 §3.a", stage: "decode", bytes: msg(2, "0000 0020 40010100"), expect: upd(1, RESET) },
  { name: "withdrawn prefix of length 33", rfc: "7606 §5.3", stage: "decode", bytes: update("21 0a000000 00", "", ""), expect: upd(10, RESET) },
  { name: "NLRI prefix of length 33", rfc: "7606 §5.3", stage: "decode", bytes: update("", BASE, "21 0a00000000"), expect: upd(10, RESET) },
  { name: "NLRI prefix truncated", rfc: "7606 §5.3", stage: "decode", bytes: update("", BASE, "18 0a01"), expect: upd(10, RESET) },
  { name: "MP_REACH_NLRI twice", rfc: "7606 §3.g", stage: "decode", bytes: update("", ORIGIN + AS_PATH + MP_REACH + MP_REACH, ""), expect: upd(1, RESET) },
  { name: "unrecognized well-known attribute", rfc: "4271 §6.3", stage: "decode", bytes: update("", BASE + attr(0x40, 99, "00"), NLRI), expect: upd(2, RESET) },
  { name: "MP_REACH_NLRI of 2 bytes (no AFI/SAFI)", rfc: "7606 §7.11", stage: "decode", bytes: update("", ORIGIN + AS_PATH + attr(0x80, 14, "0002"), ""), expect: upd(9, RESET) },

  // --- Treat-as-withdraw and attribute discard (RFC 7606 §4, §7).
  { name: "attribute header truncated", rfc: "7606 §4", stage: "decode", bytes: update("", `${BASE}4001`, NLRI), expect: upd(1, TAW) },
  { name: "attribute overruns the attribute field", rfc: "7606 §4", stage: "decode", bytes: update("", `${BASE}c008080000`, NLRI), expect: upd(5, TAW) },
  { name: "ORIGIN value 3", rfc: "7606 §7.1", stage: "decode", bytes: update("", attr(0x40, 1, "03") + AS_PATH + NEXT_HOP, NLRI), expect: upd(6, TAW) },
  { name: "ORIGIN of 2 bytes", rfc: "7606 §7.1", stage: "decode", bytes: update("", attr(0x40, 1, "0000") + AS_PATH + NEXT_HOP, NLRI), expect: upd(5, TAW) },
  { name: "ORIGIN marked optional", rfc: "7606 §3.c", stage: "decode", bytes: update("", attr(0xc0, 1, "00") + AS_PATH + NEXT_HOP, NLRI), expect: upd(4, TAW) },
  { name: "AS_PATH segment type 5", rfc: "7606 §7.2", stage: "decode", bytes: update("", ORIGIN + attr(0x40, 2, "05 01 0000fde8") + NEXT_HOP, NLRI), expect: upd(11, TAW) },
  { name: "AS_PATH segment of zero ASes", rfc: "7606 §7.2", stage: "decode", bytes: update("", ORIGIN + attr(0x40, 2, "02 00") + NEXT_HOP, NLRI), expect: upd(11, TAW) },
  { name: "AS_PATH segment overruns", rfc: "7606 §7.2", stage: "decode", bytes: update("", ORIGIN + attr(0x40, 2, "02 02 0000fde8") + NEXT_HOP, NLRI), expect: upd(11, TAW) },
  {
    name: "AS_PATH with 2-octet ASNs on a 4-octet session",
    rfc: "7606 §7.2",
    stage: "decode",
    bytes: update("", ORIGIN + attr(0x40, 2, "02 03 fde8 fde9 fdea") + NEXT_HOP, NLRI),
    expect: upd(11, TAW),
  },
  { name: "NEXT_HOP of 5 bytes", rfc: "7606 §7.3", stage: "decode", bytes: update("", ORIGIN + AS_PATH + attr(0x40, 3, "0a00000100"), NLRI), expect: upd(5, TAW) },
  { name: "MULTI_EXIT_DISC of 3 bytes", rfc: "7606 §7.4", stage: "decode", bytes: update("", BASE + attr(0x80, 4, "000001"), NLRI), expect: upd(5, TAW) },
  { name: "MULTI_EXIT_DISC marked transitive", rfc: "7606 §3.c", stage: "decode", bytes: update("", BASE + attr(0xc0, 4, "00000001"), NLRI), expect: upd(4, TAW) },
  { name: "LOCAL_PREF of 2 bytes", rfc: "7606 §7.5", stage: "decode", bytes: update("", BASE + attr(0x40, 5, "0064"), NLRI), expect: upd(5, TAW) },
  { name: "ATOMIC_AGGREGATE of 1 byte", rfc: "7606 §7.6", stage: "decode", bytes: update("", BASE + attr(0x40, 6, "00"), NLRI), expect: upd(5, DISCARD) },
  { name: "AGGREGATOR of 7 bytes", rfc: "7606 §7.7", stage: "decode", bytes: update("", BASE + attr(0xc0, 7, "0000fde80a0000"), NLRI), expect: upd(5, DISCARD) },
  { name: "AGGREGATOR marked non-transitive", rfc: "7606 §7.7", stage: "decode", bytes: update("", BASE + attr(0x80, 7, "0000fde80a000001"), NLRI), expect: upd(4, DISCARD) },
  { name: "COMMUNITIES of 5 bytes", rfc: "7606 §7.8", stage: "decode", bytes: update("", BASE + attr(0xc0, 8, "fde8000100"), NLRI), expect: upd(5, TAW) },
  { name: "COMMUNITIES of 0 bytes", rfc: "7606 §7.8", stage: "decode", bytes: update("", BASE + attr(0xc0, 8, ""), NLRI), expect: upd(5, TAW) },
  { name: "COMMUNITIES twice", rfc: "7606 §3.g", stage: "decode", bytes: update("", BASE + attr(0xc0, 8, "fde80001") + attr(0xc0, 8, "fde80002"), NLRI), expect: upd(1, DISCARD) },
  { name: "ORIGINATOR_ID of 5 bytes", rfc: "7606 §7.9", stage: "decode", bytes: update("", BASE + attr(0x80, 9, "0a00000100"), NLRI), expect: upd(5, TAW) },
  { name: "CLUSTER_LIST of 6 bytes", rfc: "7606 §7.10", stage: "decode", bytes: update("", BASE + attr(0x80, 10, "0a0000010a00"), NLRI), expect: upd(5, TAW) },
  { name: "EXTENDED_COMMUNITIES of 7 bytes", rfc: "7606 §7.14", stage: "decode", bytes: update("", BASE + attr(0xc0, 16, "00020000000000"), NLRI), expect: upd(5, TAW) },
  { name: "LARGE_COMMUNITY of 11 bytes", rfc: "8092 §6", stage: "decode", bytes: update("", BASE + attr(0xc0, 32, "0000fde8000000010000ff"), NLRI), expect: upd(5, TAW) },
  { name: "ORIGIN missing", rfc: "7606 §3.d", stage: "decode", bytes: update("", AS_PATH + NEXT_HOP, NLRI), expect: upd(3, TAW) },
  { name: "NEXT_HOP missing", rfc: "7606 §3.d", stage: "decode", bytes: update("", ORIGIN + AS_PATH, NLRI), expect: upd(3, TAW) },
  { name: "AS_PATH missing with MP_REACH_NLRI", rfc: "7606 §3.d", stage: "decode", bytes: update("", ORIGIN + MP_REACH, ""), expect: upd(3, TAW) },
  { name: "attributes absent but NLRI present", rfc: "7606 §3.d", stage: "decode", bytes: update("", "", NLRI), expect: upd(3, TAW) },
  {
    name: "MP_REACH_NLRI IPv6 next hop of 5 bytes",
    rfc: "7606 §7.11",
    stage: "decode",
    bytes: update("", ORIGIN + AS_PATH + attr(0x80, 14, "0002 01 05 2001db8000 00 30 20010db80001"), ""),
    expect: upd(9, DISABLE),
  },
  {
    name: "MP_REACH_NLRI IPv6 prefix of length 129",
    rfc: "7606 §7.11",
    stage: "decode",
    bytes: update("", ORIGIN + AS_PATH + attr(0x80, 14, `0002 01 10 ${NH6} 00 81 ${"00".repeat(17)}`), ""),
    expect: upd(9, DISABLE),
  },
  {
    name: "MP_REACH_NLRI IPv4 with a 16-byte next hop without RFC 8950",
    rfc: "8950 §3",
    stage: "decode",
    bytes: update("", ORIGIN + AS_PATH + attr(0x80, 14, `0001 01 10 ${NH6} 00 18 0a0100`), ""),
    expect: upd(9, DISABLE),
  },
  { name: "MP_UNREACH_NLRI prefix truncated", rfc: "7606 §7.12", stage: "decode", bytes: update("", attr(0x80, 15, "0002 01 40 20010db8"), ""), expect: upd(9, DISABLE) },
  {
    name: "AS4_PATH malformed on a 2-octet session",
    rfc: "6793 §6",
    stage: "decode",
    ctx: { asn4: false },
    bytes: update("", `${ORIGIN}${attr(0x40, 2, "02 01 5ba0")}${NEXT_HOP}${attr(0xc0, 17, "02 02 fa56ea00")}`, NLRI),
    expect: upd(9, DISCARD),
  },
  {
    name: "AS4_AGGREGATOR of 6 bytes on a 2-octet session",
    rfc: "6793 §6",
    stage: "decode",
    ctx: { asn4: false },
    bytes: update("", `${ORIGIN}${attr(0x40, 2, "02 01 5ba0")}${NEXT_HOP}${attr(0xc0, 7, "5ba00a000001")}${attr(0xc0, 18, "fa560a000001")}`, NLRI),
    expect: upd(9, DISCARD),
  },

  // --- Session-aware validation (RFC 7606 §7, RFC 4271 §6.3).
  { name: "LOCAL_PREF from an eBGP peer", rfc: "7606 §7.5", stage: "validate-update", updateOptions: { ebgp: true }, bytes: update("", BASE + attr(0x40, 5, "00000064"), NLRI), expect: upd(1, DISCARD) },
  { name: "ORIGINATOR_ID from an eBGP peer", rfc: "7606 §7.9", stage: "validate-update", updateOptions: { ebgp: true }, bytes: update("", BASE + attr(0x80, 9, "0a000001"), NLRI), expect: upd(1, DISCARD) },
  { name: "CLUSTER_LIST from an eBGP peer", rfc: "7606 §7.10", stage: "validate-update", updateOptions: { ebgp: true }, bytes: update("", BASE + attr(0x80, 10, "0a000001"), NLRI), expect: upd(1, DISCARD) },
  { name: "AS_CONFED_SEQUENCE from an eBGP peer", rfc: "7606 §7.2", stage: "validate-update", updateOptions: { ebgp: true }, bytes: update("", ORIGIN + attr(0x40, 2, "03 01 0000fde8") + NEXT_HOP, NLRI), expect: upd(11, TAW) },
  { name: "leftmost AS is not the peer's", rfc: "4271 §6.3", stage: "validate-update", updateOptions: { ebgp: true, peerAs: 65002 }, bytes: update("", BASE, NLRI), expect: upd(11, TAW) },
  { name: "NEXT_HOP 0.0.0.0", rfc: "4271 §6.3", stage: "validate-update", updateOptions: { ebgp: false }, bytes: update("", ORIGIN + AS_PATH + attr(0x40, 3, "00000000"), NLRI), expect: upd(8, TAW) },
  { name: "NEXT_HOP multicast", rfc: "4271 §6.3", stage: "validate-update", updateOptions: { ebgp: false }, bytes: update("", ORIGIN + AS_PATH + attr(0x40, 3, "e0000001"), NLRI), expect: upd(8, TAW) },
  { name: "NEXT_HOP is our own address", rfc: "4271 §6.3", stage: "validate-update", updateOptions: { ebgp: false, localAddresses: ["10.0.0.1"] }, bytes: update("", BASE, NLRI), expect: upd(8, TAW) },
  {
    name: "MP_REACH_NLRI next hop ::",
    rfc: "4760 §3",
    stage: "validate-update",
    updateOptions: { ebgp: false },
    bytes: update("", ORIGIN + AS_PATH + attr(0x80, 14, `0002 01 10 ${"00".repeat(16)} 00 30 20010db80001`), ""),
    expect: upd(8, TAW),
  },
];
