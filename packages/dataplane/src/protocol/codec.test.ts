import { DATAPLANE_DESCRIPTOR, DATAPLANE_PROTO, type PolicyUpdate } from "@margay/dataplane-contract";
import fc from "fast-check";
import protobuf from "protobufjs";
import { describe, expect, it } from "vitest";
import { isDataplaneError } from "../errors.js";
import type { DataplaneUpdate } from "../stream.js";
import { renderedRule } from "../testing/rendered-rule.js";
import { createFrameDecoder, decodeEnvelope, encodeFrame } from "./codec.js";

const rule = renderedRule({
  ruleId: "p/in/0",
  ipVersion: 4,
  protocol: 0,
  srcNets: ["10.0.0.0/8"],
  srcIpSetIds: ["s1"],
  dstPorts: [{ first: 80, last: 90 }],
  notDstNamedPortIpSetIds: ["np"],
  icmp: { type: 8, code: 0 },
});
const tiers = {
  ingress: [{ tier: "default", defaultAction: "deny" as const, policyIds: ["default/p"] }],
  egress: [],
};

/** One of every kind, with optional fields both present and absent, and zero values that must survive. */
const EVERY_KIND: DataplaneUpdate[] = [
  { kind: "route-update", dst: "10.0.0.0/26", type: "remote-block", nodes: ["b", "c"] },
  { kind: "route-update", dst: "10.0.0.5/32", type: "local-workload", ifname: "mgy1" },
  {
    kind: "route-update",
    dst: "192.0.2.0/24",
    type: "remote-block",
    nextHops: [
      { via: "10.0.0.254", encapsulation: "none" },
      { via: "10.1.0.3", encapsulation: "vxlan", node: "c" },
    ],
  },
  { kind: "route-remove", dst: "10.0.0.0/26" },
  {
    kind: "vtep-update",
    node: "b",
    tunnelAddress: "10.1.0.1",
    mac: "02:00:00:00:00:01",
    underlayAddress: "192.168.0.2",
  },
  { kind: "vtep-remove", node: "b" },
  { kind: "pool-update", cidr: "10.0.0.0/16", encapsulation: "vxlan", crossSubnet: true, natOutgoing: false },
  { kind: "pool-remove", cidr: "10.0.0.0/16" },
  { kind: "host-update", node: "b", addresses: ["192.168.0.2/24"] },
  { kind: "host-remove", node: "b" },
  { kind: "ip-set-update", id: "s1", type: "ip-and-port", members: ["10.0.0.1,tcp:80"] },
  { kind: "ip-set-delta-update", id: "s1", added: [], removed: ["10.0.0.1,tcp:80"] },
  { kind: "ip-set-remove", id: "s1" },
  {
    kind: "active-policy-update",
    id: "default/p",
    tier: "default",
    name: "p",
    namespace: "ns",
    inbound: [rule],
    outbound: [],
    flags: { untracked: false, preDnat: true, applyOnForward: false },
  },
  { kind: "active-policy-remove", id: "default/p" },
  { kind: "active-profile-update", id: "kns.default", inbound: [], outbound: [rule] },
  { kind: "active-profile-remove", id: "kns.default" },
  {
    kind: "workload-endpoint-update",
    id: "ns/w",
    ifname: "mgy1",
    mac: "02:00:00:00:00:02",
    ipNetworks: ["10.0.0.5/32"],
    tiers,
    profileIds: ["kns.default"],
  },
  { kind: "workload-endpoint-remove", id: "ns/w" },
  {
    kind: "host-endpoint-update",
    id: "h",
    ifname: "*",
    expectedIps: ["192.168.0.1"],
    tiers,
    untrackedTiers: { ingress: [], egress: [] },
    preDnatTiers: { ingress: [], egress: [] },
    forwardTiers: { ingress: [], egress: [] },
    profileIds: [],
    failsafe: {
      inbound: [{ protocol: "tcp", port: 22 }],
      outbound: [{ protocol: "udp", port: 53, net: "0.0.0.0/0" }],
    },
  } satisfies PolicyUpdate,
  { kind: "host-endpoint-remove", id: "h" },
  { kind: "in-sync" },
];

describe("protobuf codec", () => {
  it("round-trips every update kind unchanged", () => {
    const frame = encodeFrame({ id: 7, apply: { updates: EVERY_KIND } });
    const [body] = createFrameDecoder().push(frame);
    const env = decodeEnvelope(body!);
    expect(env).toEqual({ id: 7, apply: { updates: EVERY_KIND } });
  });

  it("round-trips snapshots and errors", () => {
    const snap = {
      inSync: true,
      routes: [
        { dst: "10.0.0.0/26", type: "blackhole", nextHops: [] },
        {
          dst: "10.0.1.0/26",
          type: "unicast",
          nextHops: [{ via: "10.1.0.1", dev: "vxlan.margay", onlink: true }],
        },
        { dst: "10.0.0.5/32", type: "unicast", nextHops: [{ dev: "mgy1", onlink: false }] },
      ],
      vteps: [{ address: "10.1.0.1", mac: "02:00:00:00:00:01", underlay: "192.168.0.2" }],
      ipSets: [{ id: "s", members: [] }],
      policies: ["default/p"],
      endpoints: [{ id: "ns/w", ifname: "mgy1" }],
      natPools: [],
    } as const;
    const [a] = createFrameDecoder().push(encodeFrame({ id: 1, snapshotResult: snap }));
    expect(decodeEnvelope(a!)).toEqual({ id: 1, snapshotResult: snap });
    const err = { code: "invalid-update", message: "bad", retryable: false, detailsJson: '{"index":1}' };
    const [b] = createFrameDecoder().push(encodeFrame({ id: 2, error: err }));
    expect(decodeEnvelope(b!)).toEqual({ id: 2, error: err });
  });

  it("frames with a 4-byte big-endian length (golden bytes of an in-sync apply)", () => {
    // Envelope{id=1, apply{updates[Update{in_sync{}}]}}: 08 01 | 22 04 | 0a 02 4a 00  → 8 bytes.
    expect(
      Buffer.from(encodeFrame({ id: 1, apply: { updates: [{ kind: "in-sync" }] } })).toString("hex"),
    ).toBe("0000000808012204" + "0a024a00");
  });

  it("reassembles frames split at any byte boundary", () => {
    const frames = [
      encodeFrame({ id: 1, apply: { updates: EVERY_KIND.slice(0, 5) } }),
      encodeFrame({ id: 2, snapshot: {} }),
      encodeFrame({ id: 3, close: {} }),
    ];
    const all = Buffer.concat(frames.map((f) => Buffer.from(f)));
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: all.length }), { maxLength: 8 }), (cuts) => {
        const d = createFrameDecoder();
        const points = [...new Set(cuts)].sort((x, y) => x - y);
        const out: Uint8Array[] = [];
        let prev = 0;
        for (const p of [...points, all.length]) {
          out.push(...d.push(all.subarray(prev, p)));
          prev = p;
        }
        expect(out.map((b) => decodeEnvelope(b).id)).toEqual([1, 2, 3]);
        expect(d.buffered).toBe(0);
      }),
    );
  });

  it("rejects oversized frames, malformed bodies and bodiless envelopes with protocol", () => {
    expect(() => createFrameDecoder(16).push(new Uint8Array([0, 0, 1, 0]))).toThrow(/exceeds/);
    for (const body of [new Uint8Array([0xff, 0xff, 0xff]), new Uint8Array([0x08, 0x01])]) {
      try {
        decodeEnvelope(body);
        expect.unreachable();
      } catch (e) {
        expect(isDataplaneError(e, "protocol")).toBe(true);
      }
    }
    expect(() =>
      encodeFrame({ id: 1, apply: { updates: [{ kind: "nope" } as unknown as DataplaneUpdate] } }),
    ).toThrow();
  });

  it("loads the descriptor @margay/dataplane-contract generates from its .proto", () => {
    const parsed = protobuf.parse(DATAPLANE_PROTO, { keepCase: false }).root.toJSON();
    expect(JSON.parse(JSON.stringify(DATAPLANE_DESCRIPTOR))).toEqual(JSON.parse(JSON.stringify(parsed)));
  });
});
