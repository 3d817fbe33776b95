import { createRecordingLogger } from "@margay/api";
import { describe, expect, it } from "vitest";
import { type CliIo, EXIT_CODES, MARGAY_NODE_VERSION, type RunningAgentHandle, runCli } from "./cli.js";
import { AgentConfigError } from "./errors.js";
import { AGENT_CONFIG_SCHEMA, SETTING_NAMES } from "./schema.js";
import type { AgentConfig } from "./types.js";

function harness(env: Record<string, string> = {}, runAgent?: CliIo["runAgent"]) {
  let out = "";
  let err = "";
  const listeners: ((s: "SIGTERM" | "SIGINT") => void)[] = [];
  const logger = createRecordingLogger();
  const io: CliIo = {
    env,
    hostname: "node1",
    stdout: (s) => {
      out += s;
    },
    stderr: (s) => {
      err += s;
    },
    onSignal: (l) => {
      listeners.push(l);
      return () => listeners.splice(listeners.indexOf(l), 1);
    },
    createLogger: () => logger,
    runAgent,
  };
  return {
    io,
    logger,
    out: () => out,
    err: () => err,
    signal: (s: "SIGTERM" | "SIGINT" = "SIGTERM") => {
      for (const l of [...listeners]) l(s);
    },
    listeners,
  };
}

/** A fake agent: records its config and stops; `ready` as given. */
function fakeAgent(ready: Promise<void> = Promise.resolve()) {
  const seen: { config?: AgentConfig; warnings?: readonly unknown[]; stops: (string | undefined)[] } = {
    stops: [],
  };
  let release: () => void = () => {};
  const stopGate = new Promise<void>((r) => {
    release = r;
  });
  const runAgent: CliIo["runAgent"] = async (config, deps) => {
    seen.config = config;
    seen.warnings = deps.warnings;
    const agent: RunningAgentHandle = {
      ready,
      async stop(signal) {
        seen.stops.push(signal);
        await stopGate;
      },
    };
    return agent;
  };
  return { runAgent, seen, release };
}

const tick = () => new Promise((r) => setTimeout(r, 10));

describe("margay-node CLI", () => {
  it("--help lists every flag with its environment variable and default", async () => {
    const h = harness();
    expect(await runCli(["--help"], h.io)).toBe(EXIT_CODES.ok);
    const help = h.out();
    for (const n of SETTING_NAMES) {
      const d = AGENT_CONFIG_SCHEMA[n];
      expect(help, n).toContain(`--${d.flag}`);
      expect(help.replace(/\s+/g, " "), n).toContain(
        `[env ${d.env}] (default: ${d.defaultText.replace(/\s+/g, " ")})`,
      );
    }
    expect(help).toContain("Exit codes");
    expect(help).toContain("margay-node install-cni | uninstall-cni");
    expect(help).toMatch(/config \[options\]\s+print the resolved configuration/);
  });

  it("run --help lists the flags too", async () => {
    const h = harness();
    expect(await runCli(["run", "--help"], h.io)).toBe(EXIT_CODES.ok);
    expect(h.out()).toContain("--ip-autodetection-method <method>");
  });

  it("version prints the package version", async () => {
    const h = harness();
    expect(await runCli(["version"], h.io)).toBe(0);
    expect(h.out()).toBe(`margay-node ${MARGAY_NODE_VERSION}\n`);
    expect(MARGAY_NODE_VERSION).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("config prints the resolved configuration with sources and origins, sensitive values redacted", async () => {
    const h = harness({
      ETCD_ENDPOINTS: "https://e:2379",
      ETCD_USERNAME: "operator-name",
      ETCD_PASSWORD_FILE: "/etc/margay/pw",
    });
    expect(await runCli(["config", "--vxlan-port", "4790"], h.io)).toBe(0);
    const doc = JSON.parse(h.out());
    expect(doc.config.vxlan.port).toBe(4790);
    expect(doc.config.datastore.username).toBe("[redacted]");
    expect(h.out()).not.toContain("operator-name");
    expect(doc.sources.vxlanPort).toEqual({
      source: "flag",
      origin: "--vxlan-port",
      env: "MARGAY_VXLAN_PORT",
    });
    expect(doc.sources.etcdEndpoints).toMatchObject({ source: "env", origin: "env:ETCD_ENDPOINTS" });
    expect(doc.sources.nodeName).toMatchObject({ source: "default" });
    expect(doc.warnings).toEqual([]);
  });

  it("an unknown flag is a usage error (2); a malformed value a configuration error (3) on stderr", async () => {
    const a = harness();
    expect(await runCli(["--vxlan-prot", "1"], a.io)).toBe(EXIT_CODES.usage);
    expect(a.err()).toContain("unknown option '--vxlan-prot'");
    const b = harness({ MARGAY_VXLAN_PORT: "99999" });
    expect(await runCli(["config"], b.io)).toBe(EXIT_CODES.config);
    expect(b.err()).toBe(
      'margay-node: env:MARGAY_VXLAN_PORT: "99999" must be an integer in [1, 65535] (invalid-value)\n',
    );
    const c = harness();
    expect(await runCli(["frobnicate"], c.io)).toBe(EXIT_CODES.usage);
  });

  it("run (default verb): starts the agent with the resolved config, stops on SIGTERM, exits 0", async () => {
    const fake = fakeAgent();
    const h = harness({ NODENAME: "host-a", MARGAY_FOO: "x" }, fake.runAgent);
    const code = runCli(["--vxlan-port", "4790"], h.io);
    await tick();
    expect(fake.seen.config).toMatchObject({ nodeName: "host-a", vxlan: { port: 4790 } });
    expect(h.logger.find({ message: "margay-node ready" })).toHaveLength(1);
    expect(fake.seen.warnings).toEqual([expect.objectContaining({ code: "unknown-variable" })]);
    h.signal("SIGTERM");
    fake.release();
    expect(await code).toBe(EXIT_CODES.ok);
    expect(fake.seen.stops).toEqual(["SIGTERM"]);
    expect(h.listeners).toHaveLength(0);
  });

  it("run: flags after the verb, and root flags before it, both apply", async () => {
    const fake = fakeAgent();
    const h = harness({}, fake.runAgent);
    const code = runCli(["--vxlan-vni", "7", "run", "--vxlan-port", "4790"], h.io);
    await tick();
    expect(fake.seen.config?.vxlan).toMatchObject({ port: 4790, vni: 7 });
    h.signal("SIGINT");
    fake.release();
    expect(await code).toBe(0);
  });

  it("a second signal during shutdown exits at once with 143", async () => {
    const fake = fakeAgent();
    const h = harness({}, fake.runAgent);
    const code = runCli([], h.io);
    await tick();
    h.signal("SIGTERM");
    h.signal("SIGTERM");
    expect(await code).toBe(EXIT_CODES.forced);
    fake.release();
  });

  it("an agent that cannot get ready exits 4 after stopping what it started", async () => {
    const fake = fakeAgent(Promise.reject(new Error("datastore unreachable")));
    fake.release();
    const h = harness({}, fake.runAgent);
    expect(await runCli([], h.io)).toBe(EXIT_CODES.startup);
    expect(h.err()).toContain("could not start: datastore unreachable");
    expect(fake.seen.stops).toEqual(["startup-failed"]);
  });

  it("a configuration error raised by the agent (an AgentConfiguration resource) exits 3", async () => {
    const h = harness({}, async () => {
      throw new AgentConfigError("invalid-resource", "AgentConfiguration default spec.routeSource: ...", {
        field: "AgentConfiguration default spec.routeSource",
      });
    });
    expect(await runCli([], h.io)).toBe(EXIT_CODES.config);
  });

  it("an agent that ends on its own with an error exits 1", async () => {
    const h = harness({}, async () => ({
      ready: Promise.resolve(),
      done: Promise.reject(new Error("dataplane driver died")),
      stop: async () => {},
    }));
    expect(await runCli([], h.io)).toBe(EXIT_CODES.failure);
    expect(h.logger.find({ message: "margay-node failed" })).toHaveLength(1);
  });
});

describe("margay-node config --resources", () => {
  it("folds the datastore's AgentConfiguration resources in, below flags and environment", async () => {
    const { mkdtempSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const { createMemoryDatastore } = await import("@margay/datastore");
    const dir = mkdtempSync(join(tmpdir(), "margay-node-config-"));
    try {
      const ds = createMemoryDatastore({ snapshotPath: join(dir, "datastore.json") });
      const ac = (name: string, spec: Record<string, unknown>) => ({
        apiVersion: "margay.io/v1",
        kind: "AgentConfiguration",
        metadata: { name },
        spec,
      });
      await ds.create(ac("default", { vxlanPort: 4800, vxlanVNI: 11, ipipEnabled: true }) as never);
      await ds.create(ac("node.node1", { vxlanVNI: 12 }) as never);
      await ds.flush();
      await ds.close();
      const h = harness({ MARGAY_STATE_DIR: dir, NODENAME: "node1" });
      expect(await runCli(["config", "--resources", "--health-port", "19099"], h.io)).toBe(0);
      const doc = JSON.parse(h.out());
      expect(doc.config.vxlan).toMatchObject({ port: 4800, vni: 12 });
      expect(doc.config.health.port).toBe(19099);
      expect(doc.sources.vxlanPort.source).toBe("global-resource");
      expect(doc.sources.vxlanVni).toMatchObject({
        source: "node-resource",
        origin: "AgentConfiguration node.<name> spec.vxlanVNI",
      });
      expect(doc.sources.healthPort.source).toBe("flag");
      expect(doc.warnings).toEqual([
        expect.objectContaining({ field: "AgentConfiguration default spec.ipipEnabled" }),
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a datastore that cannot be opened exits 4", async () => {
    const h = harness({ ETCD_ENDPOINTS: "https://127.0.0.1:1", ETCD_CA_CERT_FILE: "/nonexistent/ca.crt" });
    expect(await runCli(["config", "--resources"], h.io)).toBe(EXIT_CODES.startup);
    expect(h.err()).toContain("cannot open the datastore");
  });
});
