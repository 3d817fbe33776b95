import { isCniError } from "@margay/cni";
import { describe, expect, it } from "vitest";
import { reservedFor } from "./backend.js";
import { parseIpamConfig, poolGeometry } from "./config.js";
import { handleId } from "./plugin.js";

const base = {
  cniVersion: "1.1.0",
  name: "net1",
  type: "bridge",
  ipam: {
    type: "margay-ipam",
    datastore: { type: "memory", snapshotPath: "/var/lib/margay/ipam.json" },
    pools: [{ cidr: "10.250.0.7/24" }, { cidr: "fd00:250::/64", blockSize: 122, gateway: "fd00:250::fe" }],
    routes: [{ dst: "0.0.0.0/0" }],
  },
};

function errorOf(f: () => unknown): { code: number; msg: string } {
  try {
    f();
  } catch (e) {
    if (isCniError(e)) return { code: e.cniCode, msg: e.message };
    throw e;
  }
  throw new Error("expected an error");
}

describe("parseIpamConfig", () => {
  it("normalises pools, names them after the network, defaults gateway and node", () => {
    const c = parseIpamConfig(base, "host-1");
    expect(c.node).toBe("host-1");
    expect(c.datastore).toEqual({
      type: "memory",
      snapshotPath: "/var/lib/margay/ipam.json",
      lockTimeoutMs: 10_000,
    });
    expect(c.pools).toEqual([
      { name: "net1-0", cidr: "10.250.0.0/24", family: 4, prefixLength: 24, gateway: "10.250.0.1" },
      {
        name: "net1-1",
        cidr: "fd00:250::/64",
        family: 6,
        prefixLength: 64,
        gateway: "fd00:250::fe",
        blockSize: 122,
      },
    ]);
    expect(c.routes).toEqual([{ dst: "0.0.0.0/0" }]);
  });

  it("reads an etcd datastore", () => {
    const c = parseIpamConfig(
      {
        ...base,
        ipam: {
          ...base.ipam,
          node: "n2",
          datastore: { type: "etcd", endpoints: ["http://127.0.0.1:2379"], prefix: "/x" },
        },
      },
      "h",
    );
    expect(c.datastore).toEqual({
      type: "etcd",
      endpoints: ["http://127.0.0.1:2379"],
      prefix: "/x",
      dialTimeoutMs: 3_000,
      requestTimeoutMs: 10_000,
    });
    expect(c.node).toBe("n2");
  });

  const bad: Array<[string, (i: Record<string, unknown>) => void, RegExp]> = [
    [
      "relative snapshot path",
      (i) => (i.datastore = { type: "memory", snapshotPath: "ipam.json" }),
      /^\$\.ipam\.datastore\.snapshotPath:/,
    ],
    [
      "no etcd endpoints",
      (i) => (i.datastore = { type: "etcd", endpoints: [] }),
      /^\$\.ipam\.datastore\.endpoints:/,
    ],
    [
      "overlapping pools",
      (i) => (i.pools = [{ cidr: "10.0.0.0/16" }, { cidr: "10.0.3.0/24" }]),
      /^\$\.ipam\.pools: pools 10\.0\.0\.0\/16 and 10\.0\.3\.0\/24 overlap/,
    ],
    [
      "unknown datastore field (a tls block)",
      (i) => (i.datastore = { type: "etcd", endpoints: ["https://127.0.0.1:2379"], tls: { ca: "x" } }),
      /^\$\.ipam\.datastore\.tls: unknown field/,
    ],
    [
      "misspelt username",
      (i) => (i.datastore = { type: "etcd", endpoints: ["http://127.0.0.1:2379"], usrname: "u" }),
      /^\$\.ipam\.datastore\.usrname: unknown field/,
    ],
    [
      "inline password",
      (i) => (i.datastore = { type: "etcd", endpoints: ["http://127.0.0.1:2379"], password: "hunter2" }),
      /^\$\.ipam\.datastore\.password: an inline password is not accepted/,
    ],
    ["negative GC grace period", (i) => (i.gcGracePeriodMs = -1), /^\$\.ipam\.gcGracePeriodMs:/],
    ["pool too small", (i) => (i.pools = [{ cidr: "10.0.0.0/31" }]), /^\$\.ipam\.pools\[0\]\.cidr:/],
    [
      "block larger than pool",
      (i) => (i.pools = [{ cidr: "10.0.0.0/24", blockSize: 16 }]),
      /^\$\.ipam\.pools\[0\]\.blockSize:/,
    ],
    [
      "gateway not an IP",
      (i) => (i.pools = [{ cidr: "10.0.0.0/24", gateway: "gw" }]),
      /^\$\.ipam\.pools\[0\]\.gateway:/,
    ],
  ];
  for (const [what, mutate, msg] of bad) {
    it(`${what} → code 7 naming the path`, () => {
      const c = structuredClone(base) as unknown as { ipam: Record<string, unknown> };
      mutate(c.ipam);
      const e = errorOf(() => parseIpamConfig(c as unknown as Record<string, unknown>, "h"));
      expect(e.code).toBe(7);
      expect(e.msg).toMatch(msg);
    });
  }
});

describe("pool geometry and reservations", () => {
  it("computes network, first host and broadcast", () => {
    expect(poolGeometry("10.250.0.77/26")).toEqual({
      family: 4,
      base: "10.250.0.64",
      prefix: 26,
      firstHost: "10.250.0.65",
      last: "10.250.0.127",
    });
  });
  it("reserves the gateway, and for IPv4 the network and broadcast addresses", () => {
    const [v4, v6] = parseIpamConfig(base, "h").pools;
    expect(reservedFor(v4!)).toEqual(["10.250.0.1/32", "10.250.0.0/32", "10.250.0.255/32"]);
    expect(reservedFor(v6!)).toEqual(["fd00:250::fe/128"]);
  });
  it("names handles <network>.<containerID>", () => {
    expect(handleId("net1", "abc")).toBe("net1.abc");
  });
});
