import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatCniArgs, runPlugin } from "@margay/cni";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WorkloadClient } from "../../node/workload/client.js";
import { WorkloadApiError, WorkloadErrorCode } from "../../node/workload/errors.js";
import type {
  WorkloadAddReply,
  WorkloadAddRequest,
  WorkloadDelRequest,
} from "../../node/workload/protocol.js";
import { buildMargayPluginBundle } from "./build-bundle.js";
import { podCidrFamilies, substitutePodCidrs } from "./host-local.js";
import { createMargayHandlers, type MargayPluginDeps } from "./plugin.js";

const VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

const REPLY: WorkloadAddReply = {
  interfaces: [
    { name: "mgy0123456789ab", mac: "ee:ee:ee:ee:ee:ee" },
    { name: "eth0", mac: "02:00:00:00:00:01", sandbox: "/proc/1/ns/net" },
  ],
  ips: [{ address: "10.1.0.5/32", gateway: "169.254.1.1", interface: 1 }],
  routes: [{ dst: "0.0.0.0/0", gw: "169.254.1.1" }],
  mac: "02:00:00:00:00:01",
  hostInterface: "mgy0123456789ab",
  endpoint: { namespace: "default", name: "n-k8s-p-eth0", revision: "1" },
};

interface Calls {
  add: WorkloadAddRequest[];
  del: WorkloadDelRequest[];
  spooled: { stateDir: string; req: WorkloadDelRequest }[];
  removed: string[];
  sockets: string[];
}

function harness(fail?: Partial<Record<keyof WorkloadClient, unknown>>, extra: MargayPluginDeps = {}) {
  const calls: Calls = { add: [], del: [], spooled: [], removed: [], sockets: [] };
  const client = (socket: string): WorkloadClient => {
    calls.sockets.push(socket);
    const maybe = async <T>(verb: keyof WorkloadClient, v: T): Promise<T> => {
      if (fail?.[verb] !== undefined) throw fail[verb];
      return v;
    };
    return {
      add: async (r) => {
        calls.add.push(r);
        return maybe("add", REPLY);
      },
      del: async (r) => {
        calls.del.push(r);
        return maybe("del", { released: [], endpointDeleted: false, interfaceRemoved: false });
      },
      check: async () =>
        maybe("check", { ok: true as const, ips: ["10.1.0.5"], hostInterface: "mgy0123456789ab" }),
      status: async () =>
        maybe("status", { apiVersion: "v1" as const, node: "n", ready: true, mtu: 1500, inFlight: 0 }),
      gc: async () => maybe("gc", { released: [], deferred: [], endpointsDeleted: [] }),
    };
  };
  const handlers = createMargayHandlers({
    client,
    spool: async (stateDir, req) => {
      calls.spooled.push({ stateDir, req });
      return join(stateDir, "del-spool", "x.json");
    },
    removeLink: async (name) => {
      calls.removed.push(name);
      return true;
    },
    ...extra,
  });
  return { handlers, calls };
}

const ENV = (command: string, cniArgs: Record<string, string> = {}) => ({
  CNI_COMMAND: command,
  CNI_CONTAINERID: "cid1",
  CNI_NETNS: "/proc/self/ns/net",
  CNI_IFNAME: "eth0",
  CNI_PATH: "/opt/cni/bin",
  ...(Object.keys(cniArgs).length === 0 ? {} : { CNI_ARGS: formatCniArgs(cniArgs) }),
});

const conf = (extra: Record<string, unknown> = {}, cniVersion = "1.1.0") =>
  Buffer.from(JSON.stringify({ cniVersion, name: "margay", type: "margay", ...extra }));

const INFO = { about: "margay", supportedVersions: VERSIONS };

describe("margay plugin verbs (fake agent)", () => {
  it("ADD sends one request naming the pod from the K8s args; the result is converted per version", async () => {
    for (const v of VERSIONS) {
      const { handlers, calls } = harness();
      const out = await runPlugin(handlers, INFO, {
        env: ENV("ADD", {
          IgnoreUnknown: "1",
          K8S_POD_NAMESPACE: "shop",
          K8S_POD_NAME: "web-0",
          K8S_POD_UID: "u-1",
          K8S_POD_INFRA_CONTAINER_ID: "cid1",
        }),
        stdin: conf(
          { agent_socket: "/run/x.sock", mtu: 1400, ipam: { type: "margay", ipv4_pools: ["p1"] } },
          v,
        ),
      });
      expect(out.exitCode, out.stdout).toBe(0);
      expect(calls.sockets).toEqual(["/run/x.sock"]);
      expect(calls.add[0]).toEqual({
        containerId: "cid1",
        ifName: "eth0",
        netns: "/proc/self/ns/net",
        namespace: "shop",
        pod: "web-0",
        args: { K8S_POD_UID: "u-1", K8S_POD_INFRA_CONTAINER_ID: "cid1" },
        pools: ["p1"],
        mtu: 1400,
      });
      const res = JSON.parse(out.stdout);
      expect(res.cniVersion).toBe(v);
      if (v.startsWith("0.")) expect(res.ips[0]).toMatchObject({ version: "4", address: "10.1.0.5/32" });
      else expect(res.ips[0]).toEqual({ address: "10.1.0.5/32", gateway: "169.254.1.1", interface: 1 });
      expect(res.interfaces[1]).toMatchObject({ name: "eth0", sandbox: "/proc/1/ns/net" });
    }
  });

  it("honours IP=, the ips capability (CIDR or bare) and mac (capability, CNI_ARGS, key)", async () => {
    const { handlers, calls } = harness();
    await runPlugin(handlers, INFO, {
      env: ENV("ADD", { IP: "10.1.0.9,fd00::9", MAC: "02:AA:00:00:00:01" }),
      stdin: conf(),
    });
    expect(calls.add[0]).toMatchObject({ ips: ["10.1.0.9", "fd00::9"], mac: "02:aa:00:00:00:01" });
    await runPlugin(handlers, INFO, {
      env: ENV("ADD", { IP: "10.1.0.9" }),
      stdin: conf({ runtimeConfig: { ips: ["10.1.0.7/24"], mac: "02:00:00:00:00:07" } }),
    });
    expect(calls.add[1]).toMatchObject({ ips: ["10.1.0.7"], mac: "02:00:00:00:00:07" });
    await runPlugin(handlers, INFO, {
      env: ENV("ADD"),
      stdin: conf({ args: { cni: { ips: ["10.1.0.8"], labels: { app: "db" } } } }),
    });
    expect(calls.add[2]).toMatchObject({ ips: ["10.1.0.8"], labels: { app: "db" } });
  });

  it("bad configuration is a code-7 error naming the JSON path; bad CNI_ARGS code 4; nothing sent", async () => {
    const cases: [Record<string, unknown>, Record<string, string>, number, RegExp][] = [
      [{ ipam: { type: "host-local" } }, {}, 7, /\$\.ipam: host-local needs "subnet" or "ranges"/],
      [{ ipam: { type: "host-local", subnet: "usePodCIDR" } }, {}, 7, /\$\.ipam\.subnet: must be a CIDR/],
      [{ ipam: { type: "host-local", ranges: [[]] } }, {}, 7, /\$\.ipam\.ranges: must list at least one/],
      [
        { ipam: { type: "host-local", ranges: [[{ subnet: "10.1.0.0" }]] } },
        {},
        7,
        /\$\.ipam\.ranges\[0\]\[0\]\.subnet: must be a CIDR/,
      ],
      [
        { ipam: { type: "host-local", subnet: "usePodCidr", ipv4_pools: ["p"] } },
        {},
        7,
        /\$\.ipam\.ipv4_pools: is for the agent's IPAM/,
      ],
      [{ ipam: { type: "host-local", subnet: "usePodCidr", dataDir: "rel" } }, {}, 7, /\$\.ipam\.dataDir/],
      [{ ipam: { type: "calico-ipam" } }, {}, 7, /\$\.ipam\.type/],
      [{ mtu: 70000 }, {}, 7, /\$\.mtu: must be between 576 and 65535/],
      [{ agent_socket: "relative.sock" }, {}, 7, /\$\.agent_socket: must be an absolute path/],
      [{ runtimeConfig: { ips: ["nope"] } }, {}, 7, /\$\.runtimeConfig\.ips\[0\]/],
      [{ runtimeConfig: { ips: ["10.0.0.1", "10.0.0.2"] } }, {}, 7, /at most one address per family/],
      [{ mac: "zz" }, {}, 7, /\$\.mac: must be a MAC address/],
      [{ ipam: { type: "margay", ipv4_pools: [1] } }, {}, 7, /\$\.ipam\.ipv4_pools\[0\]: must be a string/],
      [{ args: { cni: { labels: { a: 1 } } } }, {}, 7, /\$\.args\.cni\.labels\.a/],
      [{}, { IP: "10.0.0.300" }, 4, /CNI_ARGS IP/],
      [{}, { MAC: "02:00" }, 4, /CNI_ARGS MAC/],
    ];
    for (const [extra, args, code, msg] of cases) {
      const { handlers, calls } = harness();
      const out = await runPlugin(handlers, INFO, { env: ENV("ADD", args), stdin: conf(extra) });
      expect(out.exitCode).toBe(1);
      const err = JSON.parse(out.stdout);
      expect(err.code, out.stdout).toBe(code);
      expect(err.msg).toMatch(msg);
      expect(calls.add).toEqual([]);
      expect(out.stderr).toBe("");
    }
  });

  it("agent errors become coded CNI errors with the agent's reason; agent missing: ADD 11, STATUS 50", async () => {
    const table: [WorkloadApiError, string, number][] = [
      [
        new WorkloadApiError(
          WorkloadErrorCode.AgentUnavailable,
          "margay-node agent not reachable on /x: ENOENT",
        ),
        "ADD",
        11,
      ],
      [new WorkloadApiError(WorkloadErrorCode.AgentUnavailable, "not reachable"), "STATUS", 50],
      [new WorkloadApiError(WorkloadErrorCode.NotReady, "dataplane not in sync"), "ADD", 11],
      [
        new WorkloadApiError(WorkloadErrorCode.PoolExhausted, "pool exhausted: pool default, 0 of 1024 free"),
        "ADD",
        110,
      ],
      [new WorkloadApiError(WorkloadErrorCode.AddressUnavailable, "10.0.0.1 held"), "ADD", 140],
      [new WorkloadApiError(WorkloadErrorCode.PlumbingFailed, "veth"), "ADD", 150],
      [new WorkloadApiError(WorkloadErrorCode.UnknownField, "unknown field x"), "ADD", 180],
      [new WorkloadApiError(WorkloadErrorCode.CheckFailed, "veth missing"), "CHECK", 170],
    ];
    for (const [err, verb, code] of table) {
      const key = verb.toLowerCase() as keyof WorkloadClient;
      const { handlers } = harness({ [key]: err });
      const prev = {
        cniVersion: "1.1.0",
        ips: [{ address: "10.1.0.5/32", interface: 1 }],
        interfaces: REPLY.interfaces,
      };
      const stdin = verb === "CHECK" ? conf({ prevResult: prev }) : conf();
      const out = await runPlugin(handlers, INFO, { env: ENV(verb), stdin });
      expect(out.exitCode, `${verb} ${err.code}`).toBe(1);
      const obj = JSON.parse(out.stdout);
      expect(obj.code, `${verb} ${err.code}`).toBe(code);
      expect(JSON.parse(obj.details).code).toBe(err.code);
      expect(out.stdout).not.toMatch(/\n\s+at /);
    }
  });

  it("STATUS of a reachable agent that is not ready is code 50 with its reason", async () => {
    const { handlers } = createNotReady();
    const out = await runPlugin(handlers, INFO, { env: ENV("STATUS"), stdin: conf() });
    expect(JSON.parse(out.stdout)).toMatchObject({ code: 50, details: "dataplane not in sync" });
  });

  it("DEL with the agent down removes the host veth (prevResult's, else the derived name) and spools", async () => {
    for (const code of [
      WorkloadErrorCode.AgentUnavailable,
      WorkloadErrorCode.DeadlineExceeded,
      WorkloadErrorCode.ShuttingDown,
    ]) {
      const { handlers, calls } = harness({ del: new WorkloadApiError(code, "down") });
      const prevResult = {
        cniVersion: "1.1.0",
        interfaces: REPLY.interfaces,
        ips: [{ address: "10.1.0.5/32" }],
      };
      const out = await runPlugin(handlers, INFO, {
        env: ENV("DEL", { K8S_POD_NAMESPACE: "shop", K8S_POD_NAME: "web-0" }),
        stdin: conf({ state_dir: "/var/lib/m", prevResult }),
      });
      expect(out.exitCode, out.stdout).toBe(0);
      expect(calls.removed).toEqual(["mgy0123456789ab"]);
      expect(calls.spooled).toEqual([
        {
          stateDir: "/var/lib/m",
          req: {
            containerId: "cid1",
            ifName: "eth0",
            netns: "/proc/self/ns/net",
            namespace: "shop",
            pod: "web-0",
          },
        },
      ]);
    }
    // Without prevResult the name is derived as the agent's plumber derives it (@margay/api).
    const { workloadInterfaceName } = await import("@margay/api");
    const { handlers, calls } = harness({
      del: new WorkloadApiError(WorkloadErrorCode.AgentUnavailable, "down"),
    });
    await runPlugin(handlers, INFO, {
      env: ENV("DEL", { K8S_POD_NAMESPACE: "shop", K8S_POD_NAME: "web-0" }),
      stdin: conf(),
    });
    expect(calls.removed).toEqual([
      workloadInterfaceName({ namespace: "shop", workload: "web-0", endpoint: "eth0" }),
    ]);
  });

  it("DEL is not stopped by a broken configuration key, nor by a failing spool", async () => {
    const warnings: string[] = [];
    const { handlers, calls } = harness(
      { del: new WorkloadApiError(WorkloadErrorCode.AgentUnavailable, "down") },
      {
        spool: async () => {
          throw new Error("EROFS");
        },
        warn: (l) => warnings.push(l),
      },
    );
    const out = await runPlugin(handlers, INFO, { env: ENV("DEL"), stdin: conf({ mtu: "big" }) });
    expect(out.exitCode, out.stdout).toBe(0);
    expect(calls.del).toHaveLength(1);
    expect(warnings.join("\n")).toMatch(/spool failed: EROFS/);
  });

  it("DEL with an agent rejecting the request (not retryable) reports the error", async () => {
    const { handlers, calls } = harness({
      del: new WorkloadApiError(WorkloadErrorCode.InvalidField, "invalid namespace", {
        details: { field: "namespace" },
      }),
    });
    const out = await runPlugin(handlers, INFO, { env: ENV("DEL"), stdin: conf() });
    expect(JSON.parse(out.stdout).code).toBe(4);
    expect(calls.spooled).toEqual([]);
  });
});

function createNotReady() {
  return {
    handlers: createMargayHandlers({
      client: () =>
        ({
          status: async () => ({
            apiVersion: "v1",
            node: "n",
            ready: false,
            reason: "dataplane not in sync",
            mtu: 1500,
            inFlight: 0,
          }),
        }) as unknown as WorkloadClient,
    }),
  };
}

describe("host-local delegation: the node's pod CIDR", () => {
  const ipam = {
    type: "host-local",
    subnet: "usePodCidr",
    ranges: [[{ subnet: "usePodCidrIPv6" }, { subnet: "10.9.0.0/24" }]],
    routes: [{ dst: "0.0.0.0/0" }],
  };

  it("replaces usePodCidr / usePodCidrIPv6 (subnet and ranges) by the pod CIDR of that family, the rest as given", () => {
    expect(podCidrFamilies(ipam)).toEqual(new Set([4, 6]));
    expect(substitutePodCidrs(ipam, ["fd10:0:0:7::/64", "10.245.7.0/24"])).toEqual({
      type: "host-local",
      subnet: "10.245.7.0/24",
      ranges: [[{ subnet: "fd10:0:0:7::/64" }, { subnet: "10.9.0.0/24" }]],
      routes: [{ dst: "0.0.0.0/0" }],
    });
    expect(podCidrFamilies({ type: "host-local", ranges: [[{ subnet: "10.9.0.0/24" }]] }).size).toBe(0);
  });

  it("without a pod CIDR of the family: code 11 naming it; DEL takes a stand-in (host-local releases by attachment)", () => {
    expect(() => substitutePodCidrs(ipam, ["10.245.7.0/24"])).toThrow(
      expect.objectContaining({ cniCode: 11, message: expect.stringContaining("no IPv6 pod CIDR") }),
    );
    expect(substitutePodCidrs(ipam, [], true)).toMatchObject({ subnet: "169.254.0.0/16" });
  });
});

describe("the bundle", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "margay-bundle-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("is one small file with no agent code (no IPAM, datastore, dataplane or etcd)", async () => {
    const size = await buildMargayPluginBundle(join(dir, "margay"));
    expect(size).toBeLessThan(80 * 1024);
    const text = await readFile(join(dir, "margay"), "utf8");
    for (const marker of ["etcd3", "grpc", "autoAssign", "IPAMBlock", "nft", "createWorkloadPlumber", "pino"])
      expect(text.includes(marker), marker).toBe(false);
    expect(text).toContain("margay-payload"); // the code-cache loader
  });

  it("loads node:http never, node:net and the streams not even on ADD, child_process and fs/promises only on the verbs that use them, and starts no thread pool", async () => {
    const bin = join(dir, "margay");
    await buildMargayPluginBundle(bin);
    // A preload printing which builtins the process loaded and how many threads it has, at its exit.
    const preload = join(dir, "loaded.cjs");
    await writeFile(
      preload,
      'process.on("exit",()=>{const fs=require("node:fs");fs.writeSync(2,"\\nLOADED "+JSON.stringify(process.moduleLoadList.filter(m=>m.startsWith("NativeModule ")).map(m=>m.slice(13)))+"\\nTHREADS "+fs.readdirSync("/proc/self/task").length+"\\n")});',
    );
    const agent = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        const body = JSON.stringify(REPLY);
        res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
        res.end(body);
      });
    });
    const socket = join(dir, "agent.sock");
    await new Promise<void>((r) => agent.listen(socket, r));
    try {
      // Asynchronously: the fake agent answers from this process's event loop.
      const loaded = (command: string) =>
        new Promise<{ status: number | null; stdout: string; mods: string[]; threads: number }>(
          (resolve, reject) => {
            const child = spawn(process.execPath, ["--require", preload, bin], {
              env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...ENV(command) },
            });
            let stdout = "";
            let stderr = "";
            child.stdout.on("data", (b: Buffer) => (stdout += b));
            child.stderr.on("data", (b: Buffer) => (stderr += b));
            child.once("error", reject);
            child.once("close", (status) => {
              const m = /\nLOADED (.*)\nTHREADS (\d+)\n/.exec(stderr);
              if (m === null) reject(new Error(`no module list: ${stderr}`));
              else resolve({ status, stdout, mods: JSON.parse(m[1]!) as string[], threads: Number(m[2]) });
            });
            child.stdin.end(conf({ agent_socket: socket }, "1.0.0"));
          },
        );
      const version = await loaded("VERSION");
      expect(version.status).toBe(0);
      for (const mod of ["http", "net", "child_process", "fs/promises"])
        expect(version.mods).not.toContain(mod);
      const add = await loaded("ADD");
      expect(add.status, add.stdout).toBe(0);
      expect(JSON.parse(add.stdout).ips).toEqual([
        { address: "10.1.0.5/32", gateway: "169.254.1.1", interface: 1 },
      ]);
      // The one exchange with the agent goes over libuv's pipe handle (pipe-socket.ts), not node:net, on
      // the Node major that path was tested on; any other falls back to node:net (and its streams).
      const fast = process.versions.node.split(".")[0] === "20";
      for (const mod of ["http", "child_process", "fs/promises", ...(fast ? ["net", "stream"] : [])])
        expect(add.mods).not.toContain(mod);
      if (!fast) expect(add.mods).toContain("net");
      // No asynchronous file system call: libuv's thread pool (4 threads) is never started.
      expect(add.threads).toBe(version.threads);
    } finally {
      agent.close();
    }
  });
});
