/**
 * `node diags` in-process: a real `tar`, `ip -j route` and `nft list table inet margay` inside a fresh
 * network namespace the test creates (root), an agent "binary" (a script standing in for `margay-node
 * config`, whose output names the etcd password and key files) and a log file full of secrets. The
 * archive is unpacked and no secret may be left in any file.
 */

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createMemoryDatastore } from "@margay/datastore";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REDACTED, redact } from "./commands/diags.js";
import type { CtlIo } from "./io.js";
import { PLAIN } from "./output.js";
import { runCtl } from "./run.js";

const NS = `h14diags${process.pid}`;
const PASSWORD = "s3cr3t-Etcd-Pa55word";
const KEY_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKjMzEfYyjiWA4R4";
const TOKEN = "tok-9f8e7d6c5b4a";
let dir: string;

function io(env: Record<string, string>) {
  const out: string[] = [];
  const err: string[] = [];
  const value: CtlIo = {
    out: (t) => void out.push(t),
    err: (t) => void err.push(t),
    readStdin: async () => "",
    env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", ...env },
    isTTY: false,
    style: PLAIN,
    cwd: dir,
  };
  return { io: value, out, err };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "margayctl-diags-"));
  execFileSync("ip", ["netns", "add", NS]);
  execFileSync("ip", ["-n", NS, "link", "set", "lo", "up"]);
  execFileSync("ip", ["-n", NS, "link", "add", "dummy0", "type", "veth", "peer", "name", "dummy1"]);
  execFileSync("ip", ["-n", NS, "addr", "add", "192.0.2.1/24", "dev", "dummy0"]);
  execFileSync("ip", ["-n", NS, "link", "set", "dummy0", "up"]);
  execFileSync("ip", [
    "netns",
    "exec",
    NS,
    "nft",
    "add table inet margay; add chain inet margay pi-0123456789abcdef",
  ]);
  writeFileSync(join(dir, "etcd-password"), `${PASSWORD}\n`);
  writeFileSync(
    join(dir, "etcd.key"),
    `-----BEGIN PRIVATE KEY-----\n${KEY_BODY}\n-----END PRIVATE KEY-----\n`,
  );
  // Stands in for `margay-node config`: JSON naming the secret files (as the agent prints them).
  writeFileSync(
    join(dir, "fake-agent.cjs"),
    `process.stdout.write(JSON.stringify({ config: { nodeName: "node-1", etcdEndpoints: ["https://10.0.0.1:2379"],
      etcdPasswordFile: { value: ${JSON.stringify(join(dir, "etcd-password"))}, source: "env" },
      etcdKeyFile: ${JSON.stringify(join(dir, "etcd.key"))}, etcdUsername: "margay" } }, null, 2));`,
  );
  writeFileSync(
    join(dir, "agent.log"),
    [
      `{"level":30,"msg":"datastore open","password":"${PASSWORD}"}`,
      `debug ETCD_PASSWORD=${PASSWORD} token=${TOKEN}`,
      `dial https://margay:${PASSWORD}@10.0.0.1:2379 failed`,
      `read key ${KEY_BODY}`,
      "-----BEGIN RSA PRIVATE KEY-----",
      KEY_BODY,
      "-----END RSA PRIVATE KEY-----",
      `{"level":30,"msg":"agent ready","node":"node-1"}`,
    ].join("\n"),
  );
  const snap = join(dir, "ds.json");
  const ds = createMemoryDatastore({ snapshotPath: snap });
  await ds.create({
    apiVersion: "margay.io/v1",
    kind: "NodeStatus",
    metadata: { name: "node-1" },
    spec: { node: "node-1" },
    status: { mtu: 1450, addresses: { ipv4: "10.0.0.1/24" } },
  } as never);
  await ds.flush();
  await ds.close();
});

afterAll(() => {
  try {
    execFileSync("ip", ["netns", "del", NS]);
  } catch {
    // Already gone.
  }
  rmSync(dir, { recursive: true, force: true });
});

describe("redact", () => {
  it("removes passwords, tokens, private keys and URL credentials; keeps file paths", () => {
    const text = redact(
      [
        `"password": "${PASSWORD}"`,
        `ETCD_PASSWORD=${PASSWORD}`,
        `etcdPasswordFile: /etc/margay/etcd-password`,
        `--etcd-password ${PASSWORD}`,
        `url=https://u:${PASSWORD}@h:2379`,
        `-----BEGIN EC PRIVATE KEY-----\n${KEY_BODY}\n-----END EC PRIVATE KEY-----`,
        `api_token: ${TOKEN}`,
        `literal ${KEY_BODY}`,
      ].join("\n"),
      [KEY_BODY],
    );
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(KEY_BODY);
    expect(text).toContain("etcdPasswordFile: /etc/margay/etcd-password");
    expect(text).toContain(`"password": "${REDACTED}"`);
    expect(text).toContain("-----BEGIN EC PRIVATE KEY-----");
  });
});

describe("margayctl node diags", () => {
  it("writes a tarball of logs, config, NodeStatus, routes and nftables with every secret redacted", {
    timeout: 60_000,
  }, async () => {
    const {
      io: ctlIo,
      out,
      err,
    } = io({
      DATASTORE_TYPE: "memory",
      MARGAY_SNAPSHOT_PATH: join(dir, "ds.json"),
      ETCD_KEY_FILE: join(dir, "etcd.key"),
    });
    const code = await runCtl(
      [
        "node",
        "diags",
        "node-1",
        "-o",
        "d.tar.gz",
        "--log-file",
        "agent.log",
        "--agent-bin",
        "fake-agent.cjs",
        "--netns",
        NS,
      ],
      ctlIo,
    );
    expect(err.join(""), err.join("")).toBe("");
    expect(code).toBe(0);
    expect(out.join("")).toBe(`${join(dir, "d.tar.gz")}\n`);
    const x = join(dir, "x");
    mkdirSync(x);
    execFileSync("tar", ["-xzf", join(dir, "d.tar.gz"), "-C", x]);
    const root = join(x, "margay-diags");
    const files = readdirSync(root).sort();
    expect(files).toEqual([
      "agent.log",
      "config.json",
      "manifest.json",
      "nftables.txt",
      "nodestatus.yaml",
      "routes-ipv4.json",
      "routes-ipv6.json",
    ]);
    const all = files.map((f) => readFileSync(join(root, f), "utf8"));
    for (const text of all) {
      expect(text).not.toContain(PASSWORD);
      expect(text).not.toContain(TOKEN);
      expect(text).not.toContain(KEY_BODY);
    }
    const read = (f: string) => readFileSync(join(root, f), "utf8");
    expect(read("agent.log")).toContain(`"msg":"agent ready"`);
    expect(read("agent.log")).toContain(REDACTED);
    expect(read("config.json")).toContain(join(dir, "etcd-password"));
    expect(read("nodestatus.yaml")).toContain("mtu: 1450");
    expect(read("nftables.txt")).toContain("pi-0123456789abcdef");
    const routes = JSON.parse(read("routes-ipv4.json")) as { dst: string; dev: string }[];
    expect(routes).toContainEqual(expect.objectContaining({ dst: "192.0.2.0/24", dev: "dummy0" }));
  });

  it("records a source it cannot read and keeps the rest", { timeout: 60_000 }, async () => {
    const { io: ctlIo, err } = io({ DATASTORE_TYPE: "memory", MARGAY_SNAPSHOT_PATH: join(dir, "ds.json") });
    const code = await runCtl(
      [
        "node",
        "diags",
        "node-9",
        "-o",
        "e.tar.gz",
        "--log-file",
        "agent.log",
        "--agent-bin",
        join(dir, "nope"),
      ],
      ctlIo,
    );
    expect(code).toBe(0);
    expect(err.join("")).toContain("warning: config.json not collected");
    expect(err.join("")).toContain("no NodeStatus for node node-9");
    const list = execFileSync("tar", ["-tzf", join(dir, "e.tar.gz")], { encoding: "utf8" });
    expect(list).toContain("margay-diags/errors.txt");
    expect(list).toContain("margay-diags/agent.log");
  });

  it.each([
    [["--netns", "../x"], "--netns: a network namespace name"],
    [["--log-file", "missing.log"], "--log-file: missing.log: no such file"],
    [["-o", "out.zip"], "-o: the archive name ends in .tar.gz"],
    [["-o", "no/such/dir/x.tar.gz"], "no such directory"],
    [["-o", "d.tar.gz"], "exists (use --force"],
    [["--log-file", "agent.log", "--journal-unit", "x"], "give one of them"],
  ])("bad input %j: exit 2, one line, no archive", async (args, cause) => {
    const before = readdirSync(dir).sort();
    const {
      io: ctlIo,
      out,
      err,
    } = io({ DATASTORE_TYPE: "memory", MARGAY_SNAPSHOT_PATH: join(dir, "ds.json") });
    const code = await runCtl(["node", "diags", "node-1", ...args], ctlIo);
    expect(code).toBe(2);
    expect(out.join("")).toBe("");
    expect(err.join("").trim().split("\n")).toHaveLength(1);
    expect(err.join("")).toContain(cause);
    expect(readdirSync(dir).sort()).toEqual(before);
  });
});
