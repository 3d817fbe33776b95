import { describe, expect, it } from "vitest";
import { CniError } from "../spec/errors.js";
import type { CniResult } from "../spec/types.js";
import { type CmdArgs, type GcArgs, type PluginHandlers, runPlugin } from "./plugin-main.js";

const conf = { cniVersion: "1.1.0", name: "net1", type: "t" };
const env = {
  CNI_COMMAND: "ADD",
  CNI_CONTAINERID: "c1",
  CNI_NETNS: "/proc/self/ns/net",
  CNI_IFNAME: "eth0",
  CNI_PATH: "/opt/cni/bin:/x",
};

function handlers(seen: { add?: CmdArgs; gc?: GcArgs; del?: number } = {}): PluginHandlers {
  return {
    add(a) {
      seen.add = a;
      const r: CniResult = {
        cniVersion: a.cniVersion,
        interfaces: [{ name: "eth0", sandbox: a.netns }],
        ips: [{ address: "10.0.0.2/24", gateway: "10.0.0.1", interface: 0 }],
      };
      return r;
    },
    del() {
      seen.del = (seen.del ?? 0) + 1;
    },
    check() {
      throw new CniError(120, "drifted", { details: "eth0 lost its address" });
    },
    gc(a) {
      seen.gc = a;
    },
  };
}

describe("runPlugin", () => {
  it("ADD prints the result in the requested version and passes parsed args", async () => {
    const seen: { add?: CmdArgs } = {};
    const out = await runPlugin(
      handlers(seen),
      {},
      {
        env: { ...env, CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAME=web" },
        stdin: JSON.stringify({ ...conf, cniVersion: "0.4.0" }),
      },
    );
    expect(out.exitCode).toBe(0);
    const r = JSON.parse(out.stdout);
    expect(r.cniVersion).toBe("0.4.0");
    expect(r.ips[0]).toEqual({ version: "4", address: "10.0.0.2/24", gateway: "10.0.0.1", interface: 0 });
    expect(seen.add?.path).toEqual(["/opt/cni/bin", "/x"]);
    expect(seen.add?.cniArgs.k8s.name).toBe("web");
  });

  it("passes prevResult converted to the 1.x shape", async () => {
    const seen: { add?: CmdArgs } = {};
    const prevResult = { cniVersion: "0.4.0", ips: [{ version: "4", address: "10.9.0.2/24" }] };
    const out = await runPlugin(
      handlers(seen),
      {},
      { env, stdin: JSON.stringify({ ...conf, cniVersion: "0.4.0", prevResult }) },
    );
    expect(out.exitCode).toBe(0);
    expect(seen.add?.prevResult?.ips).toEqual([{ address: "10.9.0.2/24" }]);
  });

  it("VERSION answers with supported versions and echoes a supported asked version", async () => {
    const out = await runPlugin(
      handlers(),
      { supportedVersions: ["1.0.0", "1.1.0"] },
      {
        env: { CNI_COMMAND: "VERSION" },
        stdin: '{"cniVersion":"1.0.0"}',
      },
    );
    expect(JSON.parse(out.stdout)).toEqual({ cniVersion: "1.0.0", supportedVersions: ["1.0.0", "1.1.0"] });
    const out2 = await runPlugin(
      handlers(),
      { supportedVersions: ["1.0.0", "1.1.0"] },
      { env: { CNI_COMMAND: "VERSION" }, stdin: "" },
    );
    expect(JSON.parse(out2.stdout).cniVersion).toBe("1.1.0");
  });

  it("rejects an unsupported version with code 1 in the plugin's newest version", async () => {
    const out = await runPlugin(
      handlers(),
      { supportedVersions: ["1.0.0"] },
      { env, stdin: JSON.stringify(conf) },
    );
    expect(out.exitCode).toBe(1);
    expect(JSON.parse(out.stdout)).toMatchObject({
      cniVersion: "1.0.0",
      code: 1,
      msg: "incompatible CNI versions",
    });
  });

  it("reports a handler's CniError with its code and details, DEL/CHECK print nothing on success", async () => {
    const seen: { del?: number } = {};
    const check = await runPlugin(
      handlers(seen),
      {},
      { env: { ...env, CNI_COMMAND: "CHECK" }, stdin: JSON.stringify(conf) },
    );
    expect(check.exitCode).toBe(1);
    expect(JSON.parse(check.stdout)).toEqual({
      cniVersion: "1.1.0",
      code: 120,
      msg: "drifted",
      details: "eth0 lost its address",
    });
    const del = await runPlugin(
      handlers(seen),
      {},
      {
        env: { ...env, CNI_COMMAND: "DEL", CNI_NETNS: "" },
        stdin: JSON.stringify(conf),
      },
    );
    expect(del).toMatchObject({ exitCode: 0, stdout: "" });
    expect(seen.del).toBe(1);
  });

  it("turns an unexpected exception into code 999 with the stack on stderr only", async () => {
    const h = { ...handlers(), add: () => Promise.reject(new TypeError("boom")) };
    const out = await runPlugin(h, {}, { env, stdin: JSON.stringify(conf) });
    expect(out.exitCode).toBe(1);
    expect(JSON.parse(out.stdout)).toEqual({ cniVersion: "1.1.0", code: 999, msg: "boom" });
    expect(out.stdout).not.toMatch(/at /);
    expect(out.stderr).toMatch(/TypeError: boom/);
  });

  it("rejects an invalid result from the handler instead of printing it", async () => {
    const h = { ...handlers(), add: () => ({ cniVersion: "1.1.0", ips: [{ address: "nope" }] }) };
    const out = await runPlugin(h, {}, { env, stdin: JSON.stringify(conf) });
    expect(JSON.parse(out.stdout)).toMatchObject({ code: 999, msg: "plugin produced an invalid result" });
  });

  it("GC gets the valid attachments; STATUS without a handler succeeds", async () => {
    const seen: { gc?: GcArgs } = {};
    const valid = [{ containerID: "c1", ifname: "eth0" }];
    const gc = await runPlugin(
      handlers(seen),
      {},
      {
        env: { CNI_COMMAND: "GC", CNI_PATH: "/x" },
        stdin: JSON.stringify({ ...conf, "cni.dev/valid-attachments": valid }),
      },
    );
    expect(gc.exitCode).toBe(0);
    expect(seen.gc?.validAttachments).toEqual(valid);
    const st = await runPlugin(
      handlers(),
      {},
      { env: { CNI_COMMAND: "STATUS" }, stdin: JSON.stringify(conf) },
    );
    expect(st).toMatchObject({ exitCode: 0, stdout: "" });
  });

  it("reads stdin from a stream and enforces the size limit with code 5", async () => {
    async function* chunks() {
      for (let i = 0; i < 10; i++) yield Buffer.alloc(100, 32);
    }
    const out = await runPlugin(handlers(), { maxStdinBytes: 500 }, { env, stdin: chunks() });
    expect(JSON.parse(out.stdout)).toMatchObject({ code: 5 });
  });

  it("names the JSON path of an invalid field", async () => {
    const out = await runPlugin(
      handlers(),
      {},
      { env, stdin: JSON.stringify({ ...conf, ipam: { type: 3 } }) },
    );
    expect(JSON.parse(out.stdout)).toMatchObject({
      code: 7,
      msg: "$.ipam.type: must be a string, got number",
    });
  });

  it("ADD into a namespace path that does not exist is code 3", async () => {
    const out = await runPlugin(
      handlers(),
      {},
      { env: { ...env, CNI_NETNS: "/var/run/netns/absent-xyz" }, stdin: JSON.stringify(conf) },
    );
    expect(JSON.parse(out.stdout)).toMatchObject({ code: 3 });
  });

  it.each([
    ["CHECK", "0.3.1", "0.4.0"],
    ["STATUS", "1.0.0", "1.1.0"],
    ["GC", "1.0.0", "1.1.0"],
  ])("%s with a %s configuration is code 1, the handler never runs (needs %s)", async (verb, v, floor) => {
    let called = false;
    const h: PluginHandlers = {
      ...handlers(),
      check() {
        called = true;
      },
      status() {
        called = true;
      },
      gc() {
        called = true;
      },
    };
    const out = await runPlugin(
      h,
      {},
      { env: { ...env, CNI_COMMAND: verb }, stdin: JSON.stringify({ ...conf, cniVersion: v }) },
    );
    expect(out.exitCode).toBe(1);
    expect(JSON.parse(out.stdout)).toMatchObject({
      cniVersion: v,
      code: 1,
      msg: `config version does not allow ${verb}`,
    });
    expect(called).toBe(false);
    const ok = await runPlugin(
      h,
      {},
      { env: { ...env, CNI_COMMAND: verb }, stdin: JSON.stringify({ ...conf, cniVersion: floor }) },
    );
    expect(ok.exitCode, ok.stdout).toBe(0);
    expect(called).toBe(true);
  });
});
