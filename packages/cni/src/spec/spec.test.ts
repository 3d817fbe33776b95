import { describe, expect, it } from "vitest";
import { formatCniArgs, parseCniArgs } from "./cni-args.js";
import { parseNetConf, parseNetConfList, validateNetConfList } from "./config.js";
import { CniError, CniErrorCode, cniErrorName, isCniError, parseErrorObject } from "./errors.js";
import {
  validateContainerId,
  validateInterfaceName,
  validateNetnsPath,
  validateNetworkName,
} from "./names.js";
import { convertResult, parseResult } from "./result.js";
import type { CniResult } from "./types.js";
import { checkVersionSupported, compareVersions, negotiateListVersion } from "./version.js";

function codeOf(f: () => unknown): { code: number; msg: string } {
  try {
    f();
  } catch (e) {
    if (isCniError(e)) return { code: e.cniCode, msg: e.message };
    throw e;
  }
  throw new Error("expected a CniError");
}

describe("errors", () => {
  it("names well-known and plugin-specific codes and marks 11 retryable", () => {
    expect(cniErrorName(7)).toBe("invalid-network-config");
    expect(cniErrorName(50)).toBe("plugin-not-available");
    expect(cniErrorName(120)).toBe("plugin-specific");
    expect(cniErrorName(42)).toBe("reserved");
    expect(new CniError(CniErrorCode.TryAgainLater, "busy").retryable).toBe(true);
    expect(new CniError(CniErrorCode.IoFailure, "x").retryable).toBe(false);
  });
  it("serialises to the spec's error object and reads it back", () => {
    const obj = new CniError(4, "bad env", { details: "CNI_IFNAME" }).toErrorObject("1.1.0");
    expect(obj).toEqual({ cniVersion: "1.1.0", code: 4, msg: "bad env", details: "CNI_IFNAME" });
    expect(parseErrorObject(JSON.parse(JSON.stringify(obj)))).toEqual(obj);
    expect(parseErrorObject({ msg: "no code" })).toBeUndefined();
    expect(isCniError(new Error("x"))).toBe(false);
    expect(isCniError(new CniError(3, "x"), 3)).toBe(true);
    expect(isCniError(new CniError(3, "x"), 4)).toBe(false);
  });
});

describe("versions", () => {
  it("compares numerically, not lexically", () => {
    expect(compareVersions("0.10.0", "0.4.0")).toBeGreaterThan(0);
    expect(compareVersions("1.0.0", "1.0.0")).toBe(0);
    expect(codeOf(() => compareVersions("1.0", "1.0.0")).code).toBe(6);
  });
  it("rejects an unsupported config version with code 1 naming both sides", () => {
    const e = codeOf(() => checkVersionSupported("9.9.9", ["1.0.0"]));
    expect(e.code).toBe(1);
  });
  it("picks the highest supported of cniVersions, else cniVersion", () => {
    expect(negotiateListVersion({ cniVersion: "1.0.0", cniVersions: ["1.0.0", "1.1.0", "2.0.0"] })).toBe(
      "1.1.0",
    );
    expect(negotiateListVersion({ cniVersion: "0.4.0" })).toBe("0.4.0");
    expect(
      codeOf(() => negotiateListVersion({ cniVersion: "1.1.0", cniVersions: ["1.1.0"] }, ["1.0.0"])).code,
    ).toBe(1);
  });
});

describe("config validation names the JSON path", () => {
  const list = {
    cniVersion: "1.1.0",
    cniVersions: ["1.0.0", "1.1.0"],
    name: "net1",
    disableCheck: false,
    disableGC: true,
    plugins: [
      {
        type: "bridge",
        ipam: { type: "host-local", subnet: "10.1.0.0/24" },
        dns: { nameservers: ["10.1.0.1"] },
      },
      { type: "portmap", capabilities: { portMappings: true } },
    ],
  };
  it("accepts a valid 1.1.0 list", () => {
    expect(parseNetConfList(JSON.stringify(list)).plugins).toHaveLength(2);
  });
  const cases: Array<[string, (l: Record<string, unknown>) => void, string]> = [
    [
      "plugin type wrong type",
      (l) => ((l.plugins as Array<Record<string, unknown>>)[1]!.type = 5),
      "$.plugins[1].type",
    ],
    [
      "ipam type missing",
      (l) => delete (l.plugins as Array<Record<string, Record<string, unknown>>>)[0]!.ipam!.type,
      "$.plugins[0].ipam.type",
    ],
    [
      "nameserver not an IP",
      (l) => ((l.plugins as Array<Record<string, { nameservers: string[] }>>)[0]!.dns!.nameservers[0] = "x"),
      "$.plugins[0].dns.nameservers[0]",
    ],
    [
      "capability not boolean",
      (l) =>
        ((l.plugins as Array<Record<string, Record<string, unknown>>>)[1]!.capabilities!.portMappings =
          "yes"),
      "$.plugins[1].capabilities.portMappings",
    ],
    ["disableCheck a string", (l) => (l.disableCheck = "true"), "$.disableCheck"],
    ["bad name", (l) => (l.name = "-net"), "$.name"],
    ["bad cniVersions entry", (l) => ((l.cniVersions as string[])[1] = "one"), "$.cniVersions[1]"],
    ["no plugins", (l) => (l.plugins = []), "$.plugins"],
    ["plugins not array", (l) => (l.plugins = {}), "$.plugins"],
  ];
  for (const [what, mutate, path] of cases) {
    it(`${what} → code 7 at ${path}`, () => {
      const l = structuredClone(list) as Record<string, unknown>;
      mutate(l);
      const e = codeOf(() => validateNetConfList(l));
      expect(e.code).toBe(7);
      expect(e.msg.startsWith(`${path}:`)).toBe(true);
    });
  }
  it("broken JSON is code 6, a bad single config code 7", () => {
    expect(codeOf(() => parseNetConf('{"cniVersion":')).code).toBe(6);
    expect(codeOf(() => parseNetConf('{"cniVersion":"1.0.0","name":"n"}')).msg).toMatch(/^\$\.type:/);
    expect(parseNetConf('{"cniVersion":"1.0.0","name":"n","type":"x","custom":1}').custom).toBe(1);
  });
});

describe("results", () => {
  const r11: CniResult = {
    cniVersion: "1.1.0",
    interfaces: [
      { name: "cni0", mac: "aa:bb:cc:dd:ee:ff" },
      { name: "eth0", sandbox: "/run/netns/x", mtu: 1400 },
    ],
    ips: [
      { address: "10.1.0.5/24", gateway: "10.1.0.1", interface: 1 },
      { address: "fd00::5/64", interface: 1 },
    ],
    routes: [{ dst: "0.0.0.0/0", gw: "10.1.0.1", mtu: 1400 }],
    dns: { nameservers: ["10.1.0.1"] },
  };
  it("converts 1.1.0 to 0.4.0 and 0.3.1 with ip versions, and back", () => {
    for (const v of ["0.4.0", "0.3.1"]) {
      const legacy = convertResult(r11, v) as {
        ips: Array<{ version: string }>;
        routes: object[];
        interfaces: object[];
      };
      expect(legacy.ips.map((i) => i.version)).toEqual(["4", "6"]);
      expect(legacy.routes[0]).toEqual({ dst: "0.0.0.0/0", gw: "10.1.0.1" });
      expect(legacy.interfaces[1]).toEqual({ name: "eth0", sandbox: "/run/netns/x" });
      const back = parseResult(JSON.parse(JSON.stringify(legacy)));
      expect(back.ips).toEqual(r11.ips);
      expect(convertResult(back, "1.0.0").cniVersion).toBe("1.0.0");
    }
  });
  it("round-trips 1.x unchanged", () => {
    expect(parseResult(JSON.parse(JSON.stringify(convertResult(r11, "1.1.0"))))).toEqual(r11);
  });
  it("rejects bad results with the path", () => {
    expect(codeOf(() => parseResult({ cniVersion: "1.0.0", ips: [{ address: "10.0.0.1" }] })).msg).toMatch(
      /^\$\.ips\[0\]\.address:/,
    );
    expect(
      codeOf(() =>
        parseResult({ cniVersion: "1.0.0", interfaces: [], ips: [{ address: "10.0.0.1/8", interface: 0 }] }),
      ).msg,
    ).toMatch(/^\$\.ips\[0\]\.interface:/);
    expect(codeOf(() => parseResult({ cniVersion: "0.4.0", ips: [{ address: "10.0.0.1/8" }] })).msg).toMatch(
      /^\$\.ips\[0\]\.version:/,
    );
    expect(codeOf(() => parseResult({ cniVersion: "0.2.0" })).code).toBe(1);
  });
});

describe("names", () => {
  it("interface names follow the spec", () => {
    for (const ok of ["eth0", "a", "x".repeat(15)]) expect(() => validateInterfaceName(ok)).not.toThrow();
    for (const bad of ["", ".", "..", "a/b", "a:b", "a b", "a\tb", "x".repeat(16), "é".repeat(8)]) {
      expect(codeOf(() => validateInterfaceName(bad)).code).toBe(4);
    }
  });
  it("container ids: empty is 3, malformed is 4", () => {
    expect(() => validateContainerId("abc-1_2.3")).not.toThrow();
    expect(codeOf(() => validateContainerId("")).code).toBe(3);
    expect(codeOf(() => validateContainerId("-abc")).code).toBe(4);
    expect(codeOf(() => validateContainerId("a;b")).code).toBe(4);
  });
  it("network names and netns paths", () => {
    expect(codeOf(() => validateNetworkName("a b")).code).toBe(7);
    expect(() => validateNetnsPath("/run/netns/x")).not.toThrow();
    for (const bad of ["run/netns/x", "/run/../x", "/a\0b", ""])
      expect(codeOf(() => validateNetnsPath(bad)).code).toBe(4);
  });
});

describe("CNI_ARGS", () => {
  it("parses Kubernetes keys and IgnoreUnknown", () => {
    const a = parseCniArgs(
      "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1;X=a=b",
      { known: ["K8S_POD_NAMESPACE"] },
    );
    expect(a.ignoreUnknown).toBe(true);
    expect(a.k8s).toEqual({ namespace: "default", name: "web-0", infraContainerId: "abc", uid: "u-1" });
    expect(a.values.X).toBe("a=b");
  });
  it("rejects unknown keys without IgnoreUnknown, and malformed pairs, with code 4", () => {
    expect(codeOf(() => parseCniArgs("FOO=1", { known: ["BAR"] })).code).toBe(4);
    expect(codeOf(() => parseCniArgs("FOO")).code).toBe(4);
    expect(codeOf(() => parseCniArgs("=x")).code).toBe(4);
    expect(codeOf(() => parseCniArgs("IgnoreUnknown=maybe")).code).toBe(4);
    expect(parseCniArgs(undefined).values).toEqual({});
  });
  it("formats pairs", () => {
    expect(formatCniArgs({ A: "1", B: "2" })).toBe("A=1;B=2");
    expect(codeOf(() => formatCniArgs({ A: "x;y" })).code).toBe(4);
  });
});
