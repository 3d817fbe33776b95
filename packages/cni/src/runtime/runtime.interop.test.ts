import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { CmdArgs } from "../skel/plugin-main.js";
import { parseCniArgs } from "../spec/cni-args.js";
import { isCniError } from "../spec/errors.js";
import type { NetConf, NetConfList } from "../spec/types.js";
import { delegateAdd, delegateDel } from "./delegate.js";
import { isCniExecError } from "./exec-error.js";
import { DEFAULT_PLUGIN_ENV, findPlugin } from "./exec-plugin.js";
import type { LogAttributes, Logger } from "./logger.js";
import { createCniRuntime } from "./runtime.js";

// Real plugin processes (small sh scripts) driven by the runtime: chain order, prevResult, the result
// cache, capabilities, STATUS/GC version gating, timeouts, aborts and error objects.

let dir: string;
let bin: string;
let log: string;
let cacheDir: string;

function recorder(name: string, ip: string): string {
  return `#!/bin/sh
stdin=$(cat)
echo "${name} $CNI_COMMAND" >> "$LOGDIR/calls"
printf '%s' "$stdin" > "$LOGDIR/${name}-$CNI_COMMAND.json"
env | grep '^CNI_' | sort > "$LOGDIR/${name}-$CNI_COMMAND.env"
case "$CNI_COMMAND" in
ADD) printf '{"cniVersion":"1.1.0","interfaces":[{"name":"%s","sandbox":"%s"}],"ips":[{"address":"${ip}/24","interface":0}]}' "$CNI_IFNAME" "$CNI_NETNS" ;;
VERSION) echo '{"cniVersion":"1.1.0","supportedVersions":["0.4.0","1.0.0","1.1.0"]}' ;;
esac
exit 0
`;
}

const scripts: Record<string, string> = {
  "rec-a": recorder("rec-a", "10.0.0.2"),
  "rec-b": recorder("rec-b", "10.0.0.2"),
  busy: `#!/bin/sh\ncat >/dev/null\necho '{"cniVersion":"1.1.0","code":11,"msg":"busy","details":"try later"}'\nexit 1\n`,
  // Records its pid (kept by exec) so a test can prove the process was killed, not waited for.
  slow: '#!/bin/sh\necho $$ >> "$LOGDIR/slow.pids"\nexec sleep 30\n',
  chatty: `#!/bin/sh\ncat >/dev/null\necho 'allocated 10.0.0.9' >&2\necho '{"cniVersion":"1.1.0"}'\n`,
  garbage: "#!/bin/sh\ncat >/dev/null\necho 'panic: runtime error' >&2\necho 'not json'\nexit 2\n",
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mgcni-rt-"));
  bin = join(dir, "bin");
  log = join(dir, "log");
  cacheDir = join(dir, "cache");
  await import("node:fs/promises").then((fs) => Promise.all([fs.mkdir(bin), fs.mkdir(log)]));
  for (const [name, body] of Object.entries(scripts)) {
    await writeFile(join(bin, name), body);
    await chmod(join(bin, name), 0o755);
  }
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  for (const f of await readdir(log)) await rm(join(log, f));
});

const env = { ...DEFAULT_PLUGIN_ENV, LOGDIR: "" };
const rtConf = {
  containerId: "ctr-1",
  netns: "/var/run/netns/x",
  ifname: "eth0",
  args: { K8S_POD_NAME: "web-0", IgnoreUnknown: "1" },
};
const list = (over: Partial<NetConfList> = {}): NetConfList => ({
  cniVersion: "1.0.0",
  cniVersions: ["1.0.0", "1.1.0"],
  name: "rtnet",
  plugins: [{ type: "rec-a", capabilities: { portMappings: true } }, { type: "rec-b" }],
  ...over,
});
const calls = async () =>
  (await readFile(join(log, "calls"), "utf8").catch(() => "")).trim().split("\n").filter(Boolean);
const stdinOf = async (f: string) => JSON.parse(await readFile(join(log, f), "utf8")) as NetConf;

/** A logger that keeps `[level, message, attributes]` (child bindings merged). */
function capturingLogger(
  records: [string, string | undefined, LogAttributes][],
  bindings: LogAttributes = {},
): Logger {
  const at =
    (level: string) =>
    (a: LogAttributes | string, m?: string): void => {
      if (typeof a === "string") records.push([level, a, { ...bindings }]);
      else records.push([level, m, { ...bindings, ...a }]);
    };
  return {
    trace: at("trace"),
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    child: (more) => capturingLogger(records, { ...bindings, ...more }),
  };
}

function runtime(extra: { timeoutMs?: number; supportedVersions?: string[]; logger?: Logger } = {}) {
  return createCniRuntime({ path: ["/nonexistent", bin], cacheDir, env: { ...env, LOGDIR: log }, ...extra });
}

describe("createCniRuntime", () => {
  it("logs each plugin run with its stderr, and each failed plugin", async () => {
    const records: [string, string | undefined, LogAttributes][] = [];
    const r = runtime({ logger: capturingLogger(records) });
    await r.addNetworkList(list({ plugins: [{ type: "rec-a" }] }), rtConf);
    await r.addNetworkList(list({ plugins: [{ type: "chatty" }] }), rtConf);
    await r.addNetworkList(list({ plugins: [{ type: "garbage" }] }), rtConf).catch(() => undefined);
    expect(records).toEqual([
      [
        "debug",
        "cni plugin ran",
        { component: "cni-runtime", plugin: "rec-a", command: "ADD", containerId: "ctr-1", ifname: "eth0" },
      ],
      [
        "debug",
        "cni plugin ran",
        expect.objectContaining({ plugin: "chatty", stderr: "allocated 10.0.0.9\n" }),
      ],
      [
        "warn",
        "cni plugin failed",
        expect.objectContaining({
          component: "cni-runtime",
          plugin: "garbage",
          command: "ADD",
          code: "exec-failed",
        }),
      ],
    ]);
  });

  it("ADD runs the chain in order, passes prevResult and capabilities, caches; DEL runs in reverse with it", async () => {
    const r = runtime();
    const result = await r.addNetworkList(list(), {
      ...rtConf,
      capabilityArgs: { portMappings: [{ hostPort: 8080 }], bandwidth: {} },
    });
    expect(result.ips).toEqual([{ address: "10.0.0.2/24", interface: 0 }]);
    expect(await calls()).toEqual(["rec-a ADD", "rec-b ADD"]);
    const a = await stdinOf("rec-a-ADD.json");
    const b = await stdinOf("rec-b-ADD.json");
    expect(a).toMatchObject({
      cniVersion: "1.1.0",
      name: "rtnet",
      type: "rec-a",
      runtimeConfig: { portMappings: [{ hostPort: 8080 }] },
    });
    expect(a.prevResult).toBeUndefined();
    expect(b.runtimeConfig).toBeUndefined();
    expect(b.prevResult).toMatchObject({ cniVersion: "1.1.0", ips: [{ address: "10.0.0.2/24" }] });
    const envA = await readFile(join(log, "rec-a-ADD.env"), "utf8");
    expect(envA).toContain(`CNI_PATH=/nonexistent:${bin}`);
    expect(parseCniArgs(/CNI_ARGS=(.*)/.exec(envA)![1]).k8s.name).toBe("web-0");
    expect(await r.getCachedResult("rtnet", rtConf)).toEqual(result);

    await r.checkNetworkList(list(), rtConf);
    expect((await stdinOf("rec-b-CHECK.json")).prevResult).toMatchObject({
      ips: [{ address: "10.0.0.2/24" }],
    });

    await r.delNetworkList(list(), rtConf);
    expect((await calls()).slice(-2)).toEqual(["rec-b DEL", "rec-a DEL"]);
    expect((await stdinOf("rec-a-DEL.json")).prevResult).toMatchObject({ ips: [{ address: "10.0.0.2/24" }] });
    expect(await r.getCachedResult("rtnet", rtConf)).toBeUndefined();
  });

  it("negotiates cniVersions down to what the runtime supports and converts prevResult on DEL", async () => {
    const r = runtime({ supportedVersions: ["0.4.0", "1.0.0"] });
    await r.addNetworkList(list({ cniVersion: "0.4.0", cniVersions: ["0.4.0", "1.1.0"] }), rtConf);
    expect((await stdinOf("rec-a-ADD.json")).cniVersion).toBe("0.4.0");
    await r.delNetworkList(list({ cniVersion: "0.4.0", cniVersions: ["0.4.0", "1.1.0"] }), rtConf);
    const prev = (await stdinOf("rec-b-DEL.json")).prevResult as {
      cniVersion: string;
      ips: Array<{ version: string }>;
    };
    expect(prev.cniVersion).toBe("0.4.0");
    expect(prev.ips[0]!.version).toBe("4");
  });

  it("CHECK needs a cached result and is skipped with disableCheck; DEL without a cache omits prevResult", async () => {
    const r = runtime();
    const other = { ...rtConf, containerId: "ctr-none" };
    await expect(r.checkNetworkList(list(), other)).rejects.toSatisfy((e) =>
      isCniExecError(e, "invalid-request"),
    );
    await r.checkNetworkList(list({ disableCheck: true }), other);
    await r.delNetworkList(list(), other);
    expect((await stdinOf("rec-a-DEL.json")).prevResult).toBeUndefined();
  });

  it("STATUS and GC reach plugins only for 1.1.0 lists; GC deletes stale cached attachments first", async () => {
    const r = runtime();
    await r.statusNetworkList(list({ cniVersion: "1.0.0", cniVersions: ["1.0.0"] }));
    expect(await calls()).toEqual([]);
    await r.statusNetworkList(list());
    expect(await calls()).toEqual(["rec-a STATUS", "rec-b STATUS"]);
    expect(await readFile(join(log, "rec-a-STATUS.env"), "utf8")).not.toContain("CNI_CONTAINERID");

    await r.addNetworkList(list(), { ...rtConf, containerId: "keep" });
    await r.addNetworkList(list(), { ...rtConf, containerId: "stale" });
    const errs = await r.gcNetworkList(list(), {
      validAttachments: [{ containerID: "keep", ifname: "eth0" }],
    });
    expect(errs).toEqual([]);
    expect((await calls()).slice(-4)).toEqual(["rec-b DEL", "rec-a DEL", "rec-a GC", "rec-b GC"]);
    expect((await readFile(join(log, "rec-a-DEL.env"), "utf8")).includes("CNI_CONTAINERID=stale")).toBe(true);
    expect((await stdinOf("rec-a-GC.json"))["cni.dev/valid-attachments"]).toEqual([
      { containerID: "keep", ifname: "eth0" },
    ]);
    expect((await r.cache.list("rtnet")).map((e) => e.containerId)).toEqual(["keep"]);
    await r.delNetworkList(list(), { ...rtConf, containerId: "keep" });
  });

  it("GC of a list with disableGC does nothing: no stale DEL, no GC verb", async () => {
    const r = runtime();
    const l = list({ disableGC: true, cniVersion: "1.1.0", cniVersions: ["1.1.0"] });
    await r.addNetworkList(l, { ...rtConf, containerId: "stale-but-shared" });
    const before = await calls();
    expect(await r.gcNetworkList(l, { validAttachments: [] })).toEqual([]);
    expect(await calls()).toEqual(before);
    expect((await r.cache.list("rtnet")).map((e) => e.containerId)).toEqual(["stale-but-shared"]);
    await r.delNetworkList(l, { ...rtConf, containerId: "stale-but-shared" });
  });

  it("turns a plugin's error object into a CniError with its code; garbage into exec-failed with stderr", async () => {
    const r = runtime();
    const e1 = await r.addNetworkList(list({ plugins: [{ type: "busy" }] }), rtConf).catch((e) => e);
    expect(isCniError(e1, 11) && e1.retryable && e1.details === "try later").toBe(true);
    const e2 = await r.addNetworkList(list({ plugins: [{ type: "garbage" }] }), rtConf).catch((e) => e);
    expect(isCniExecError(e2, "exec-failed")).toBe(true);
    expect(e2.details).toMatchObject({ exitCode: 2, stderr: expect.stringContaining("panic") });
  });

  it("kills a plugin at the timeout and on abort", async () => {
    const r = runtime({ timeoutMs: 300 });
    const e = await r.addNetworkList(list({ plugins: [{ type: "slow" }] }), rtConf).catch((x) => x);
    expect(isCniExecError(e, "timeout") && e.retryable).toBe(true);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const e2 = await runtime()
      .addNetworkList(list({ plugins: [{ type: "slow" }] }), rtConf, { signal: ac.signal })
      .catch((x) => x);
    expect(isCniExecError(e2, "aborted")).toBe(true);
    // Both `sleep 30` processes are gone once the calls reject: killed, not left running.
    const pids = (await readFile(join(log, "slow.pids"), "utf8")).trim().split("\n").map(Number);
    expect(pids).toHaveLength(2);
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    expect(pids.filter(alive)).toEqual([]);
  });

  it("finds plugins only by plain name on the path", async () => {
    await expect(findPlugin("rec-a", ["/nonexistent", bin])).resolves.toBe(join(bin, "rec-a"));
    await expect(findPlugin("../bin/rec-a", [bin])).rejects.toSatisfy((e) =>
      isCniExecError(e, "plugin-not-found"),
    );
    await expect(findPlugin("nope", [bin])).rejects.toSatisfy((e) => isCniExecError(e, "plugin-not-found"));
  });

  it("delegateAdd/Del run an IPAM plugin with the caller's parameters and stdin", async () => {
    const args = {
      command: "ADD",
      containerId: "ctr-9",
      netns: "/var/run/netns/y",
      ifname: "net1",
      args: "",
      path: [bin],
      signal: new AbortController().signal,
    } as unknown as CmdArgs;
    const stdin = JSON.stringify({
      cniVersion: "1.1.0",
      name: "rtnet",
      type: "main",
      ipam: { type: "rec-a" },
    });
    const r = await delegateAdd(args, "rec-a", stdin, { env: { ...env, LOGDIR: log } });
    expect(r.ips?.[0]?.address).toBe("10.0.0.2/24");
    const e = await readFile(join(log, "rec-a-ADD.env"), "utf8");
    expect(e).toContain("CNI_CONTAINERID=ctr-9");
    expect(e).toContain("CNI_IFNAME=net1");
    expect(await stdinOf("rec-a-ADD.json")).toEqual(JSON.parse(stdin));
    await delegateDel(args, "rec-a", stdin, { env: { ...env, LOGDIR: log } });
    expect(await calls()).toEqual(["rec-a ADD", "rec-a DEL"]);
  });
});
