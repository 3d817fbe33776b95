import { describe, expect, it } from "vitest";
import type { Capability, OpenMessage } from "../wire/types.js";
import {
  buildOpen,
  type FsmConfig,
  localCapabilities,
  negotiateOpen,
  OpenSubcode,
  resolveCollision,
} from "./index.js";

const config: FsmConfig = {
  localAsn: 4200000001,
  localId: "10.0.0.1",
  peerAsn: 65001,
  passive: false,
  holdTime: 90,
  connectRetryTime: 5,
  idleHoldTime: 1,
  maxIdleHoldTime: 8,
  idleHoldResetAfter: 60,
  capabilities: localCapabilities({
    asn: 4200000001,
    families: ["1/1", "2/1"],
    addPathReceive: ["1/1"],
    gracefulRestartTime: 120,
  }),
};

function open(o: Partial<OpenMessage> = {}, caps?: Capability[]): OpenMessage {
  return {
    type: 1,
    version: 4,
    myAs: 65001,
    holdTime: 30,
    bgpId: "10.0.0.2",
    capabilities: caps ?? localCapabilities({ asn: 65001, families: ["1/1", "2/1"] }),
    ...o,
  };
}

function rejected(m: OpenMessage, cfg = config) {
  const r = negotiateOpen(m, cfg);
  if (r.ok) throw new Error("expected a rejection");
  return r;
}

describe("negotiateOpen", () => {
  it("takes the smaller hold time and derives keepalive", () => {
    const r = negotiateOpen(open(), config);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.negotiated.holdTime).toBe(30);
    expect(r.negotiated.keepaliveTime).toBe(10);
    expect([...r.negotiated.families].sort()).toEqual(["1/1", "2/1"]);
    expect(r.negotiated.codec.asn4).toBe(true);
  });

  it("hold time 0 from the peer disables keepalives", () => {
    const r = negotiateOpen(open({ holdTime: 0 }), config);
    expect(r.ok && r.negotiated.holdTime === 0 && r.negotiated.keepaliveTime === 0).toBe(true);
  });

  it.each([1, 2])("rejects hold time %i with subcode 6", (h) => {
    expect(rejected(open({ holdTime: h })).subcode).toBe(OpenSubcode.UnacceptableHoldTime);
  });

  it("rejects version 3 with subcode 1 and our version as data", () => {
    const r = rejected(open({ version: 3 }));
    expect([r.code, r.subcode, [...r.data]]).toEqual([2, 1, [0, 4]]);
  });

  it("rejects a peer AS mismatch with subcode 2", () => {
    expect(rejected(open({ myAs: 65002 }, localCapabilities({ asn: 65002 }))).subcode).toBe(
      OpenSubcode.BadPeerAs,
    );
  });

  it("uses the 4-octet AS capability for the peer AS", () => {
    const cfg = { ...config, peerAsn: 4200000002 };
    const r = negotiateOpen(open({ myAs: 23456 }, localCapabilities({ asn: 4200000002 })), cfg);
    expect(r.ok && r.negotiated.peerAsn).toBe(4200000002);
  });

  it.each(["0.0.0.0", "300.1.1.1", "x"])("rejects BGP identifier %s with subcode 3", (id) => {
    expect(rejected(open({ bgpId: id })).subcode).toBe(OpenSubcode.BadBgpIdentifier);
  });

  it("rejects our own identifier inside the AS (iBGP) only", () => {
    const ibgp = { ...config, localAsn: 65001, capabilities: localCapabilities({ asn: 65001 }) };
    expect(rejected(open({ bgpId: "10.0.0.1" }), ibgp).subcode).toBe(OpenSubcode.BadBgpIdentifier);
    expect(negotiateOpen(open({ bgpId: "10.0.0.1" }), config).ok).toBe(true);
  });

  it("without MP capabilities the peer speaks IPv4 unicast only", () => {
    const r = negotiateOpen(open({}, [{ code: 65, kind: "four-octet-as", asn: 65001 }]), config);
    expect(r.ok && [...r.negotiated.families]).toEqual(["1/1"]);
  });

  it("rejects with subcode 7 when no family is common", () => {
    const caps: Capability[] = [
      { code: 1, kind: "multiprotocol", afi: 1, safi: 2 },
      { code: 65, kind: "four-octet-as", asn: 65001 },
    ];
    expect(rejected(open({}, caps)).subcode).toBe(OpenSubcode.UnsupportedCapability);
  });

  it("rejects a 2-octet-only peer when our ASN needs 4 octets", () => {
    const caps: Capability[] = [{ code: 1, kind: "multiprotocol", afi: 1, safi: 1 }];
    expect(rejected(open({}, caps)).subcode).toBe(OpenSubcode.UnsupportedCapability);
  });

  it("negotiates ADD-PATH receive only when the peer sends", () => {
    const base = localCapabilities({ asn: 65001, families: ["1/1"] });
    const send: Capability = { code: 69, kind: "add-path", families: [{ afi: 1, safi: 1, sendReceive: 2 }] };
    const recv: Capability = { code: 69, kind: "add-path", families: [{ afi: 1, safi: 1, sendReceive: 1 }] };
    const a = negotiateOpen(open({}, [...base, send]), config);
    const b = negotiateOpen(open({}, [...base, recv]), config);
    expect(a.ok && [...a.negotiated.codec.addPathReceive]).toEqual(["1/1"]);
    expect(b.ok && b.negotiated.codec.addPathReceive.size).toBe(0);
  });

  it("negotiates graceful restart when both advertise it", () => {
    const caps = localCapabilities({ asn: 65001, gracefulRestartTime: 60 });
    const gr = caps.find((c) => c.kind === "graceful-restart");
    if (gr?.kind === "graceful-restart") gr.families.push({ afi: 1, safi: 1, forwardingPreserved: true });
    const r = negotiateOpen(open({}, caps), config);
    expect(r.ok && r.negotiated.gracefulRestart?.restartTime).toBe(60);
    expect(r.ok && [...(r.negotiated.gracefulRestart?.families ?? [])]).toEqual(["1/1"]);
    const noGr = negotiateOpen(open({}, caps), {
      ...config,
      capabilities: localCapabilities({ asn: 4200000001 }),
    });
    expect(noGr.ok && noGr.negotiated.gracefulRestart).toBeNull();
  });

  it("extended message only when both advertise it", () => {
    const caps = localCapabilities({ asn: 65001, extendedMessage: false });
    const r = negotiateOpen(open({}, caps), config);
    expect(r.ok && r.negotiated.codec.maxMessageSize).toBe(4096);
  });
});

describe("buildOpen", () => {
  it("uses AS_TRANS for a 4-octet ASN", () => {
    const o = buildOpen(config);
    expect(o.myAs).toBe(23456);
    expect(o.capabilities.find((c) => c.kind === "four-octet-as")).toEqual({
      code: 65,
      kind: "four-octet-as",
      asn: 4200000001,
    });
  });
});

describe("resolveCollision", () => {
  it("keeps the connection opened by the higher identifier", () => {
    expect(resolveCollision("10.0.0.2", "10.0.0.1", 1, 2)).toBe("keep-outbound");
    expect(resolveCollision("10.0.0.1", "10.0.0.2", 1, 2)).toBe("keep-inbound");
    // Numeric, not lexical, comparison.
    expect(resolveCollision("9.0.0.1", "10.0.0.1", 1, 2)).toBe("keep-inbound");
  });

  it("breaks identical identifiers by ASN (RFC 6286)", () => {
    expect(resolveCollision("10.0.0.1", "10.0.0.1", 65002, 65001)).toBe("keep-outbound");
    expect(resolveCollision("10.0.0.1", "10.0.0.1", 65001, 65002)).toBe("keep-inbound");
  });
});
