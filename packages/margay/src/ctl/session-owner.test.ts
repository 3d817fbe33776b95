/**
 * margayctl on a memory snapshot a live margay-node owns (`<snapshot>.owner`): reads work and write
 * nothing; every write fails at once with exit 1 and one line naming the agent; the snapshot file is left
 * byte for byte. A marker whose owner is dead does not block. Runs the command tree in-process.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createMemoryDatastore } from "@margay/datastore";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { processIdentity } from "../cni/ipam/file-lock.js";
import { apiValidator } from "../config/api-validator.js";
import { type SnapshotOwnership, takeSnapshotOwnership } from "../node/snapshot-owner.js";
import type { CtlIo } from "./io.js";
import { PLAIN } from "./output.js";
import { runCtl } from "./run.js";

let dir: string;
let snapshot: string;

const POOL = {
  apiVersion: "margay.io/v1",
  kind: "IPPool",
  metadata: { name: "pool-a" },
  spec: { cidr: "10.70.0.0/16", blockSize: 26, ipipMode: "Never", vxlanMode: "Never", natOutgoing: true },
};
const NEW_POOL = `apiVersion: margay.io/v1
kind: IPPool
metadata:
  name: pool-b
spec:
  cidr: 10.71.0.0/16
`;

function io() {
  const out: string[] = [];
  const err: string[] = [];
  const value: CtlIo = {
    out: (t) => void out.push(t),
    err: (t) => void err.push(t),
    readStdin: async () => NEW_POOL,
    env: {
      PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
      DATASTORE_TYPE: "memory",
      MARGAY_SNAPSHOT_PATH: snapshot,
      MARGAYCTL_CONFIG: "/dev/null",
    },
    isTTY: false,
    style: PLAIN,
    cwd: dir,
  };
  return { io: value, out, err };
}

async function ctl(...args: string[]) {
  const { io: value, out, err } = io();
  const code = await runCtl(args, value);
  return { code, stdout: out.join(""), stderr: err.join("") };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "margayctl-owner-"));
  snapshot = join(dir, "datastore.json");
  writeFileSync(join(dir, "pool-b.yaml"), NEW_POOL);
  const ds = createMemoryDatastore({ snapshotPath: snapshot, validate: apiValidator });
  await ds.create(POOL);
  await ds.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("margayctl on a snapshot owned by a running agent", () => {
  let ownership: SnapshotOwnership | undefined;
  afterEach(() => {
    ownership?.release();
    ownership = undefined;
  });

  const line = () =>
    `error: the embedded datastore ${snapshot} is owned by margay-node (pid ${process.pid}): stop the agent ` +
    "to change it, or use etcd for a cluster you change while it runs\n";

  it("reads work and leave the snapshot untouched", async () => {
    ownership = takeSnapshotOwnership(snapshot);
    const before = readFileSync(snapshot);
    const mtime = statSync(snapshot).mtimeMs;
    const get = await ctl("get", "ippools", "-o", "name");
    expect(get).toMatchObject({ code: 0, stderr: "" });
    expect(get.stdout).toContain("pool-a");
    expect(await ctl("ipam", "show")).toMatchObject({ code: 0, stderr: "" });
    const exported = await ctl("datastore", "export");
    expect(exported).toMatchObject({ code: 0, stderr: "" });
    expect(exported.stdout).toContain("10.70.0.0/16");
    expect(readFileSync(snapshot)).toEqual(before);
    expect(statSync(snapshot).mtimeMs).toBe(mtime);
  });

  it.each([
    ["create", ["create", "-f", "pool-b.yaml"]],
    ["apply", ["apply", "-f", "pool-b.yaml"]],
    ["delete", ["delete", "ippool", "pool-a"]],
    ["label", ["label", "ippool", "pool-a", "team=x"]],
  ])("%s fails with exit 1 and one line; nothing is written", async (_name, args) => {
    ownership = takeSnapshotOwnership(snapshot);
    const before = readFileSync(snapshot);
    const mtime = statSync(snapshot).mtimeMs;
    const run = await ctl(...args);
    expect(run.stderr).toBe(line());
    expect(run.code).toBe(1);
    expect(readFileSync(snapshot)).toEqual(before);
    expect(statSync(snapshot).mtimeMs).toBe(mtime);
    const after = await ctl("get", "ippools", "-o", "name");
    expect(after.stdout).not.toContain("pool-b");
  });

  it("a marker whose agent died does not block a write", async () => {
    const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
    const identity = processIdentity(child.pid!) ?? `${child.pid} 1`;
    await new Promise((r) => child.on("exit", r));
    writeFileSync(`${snapshot}.owner`, identity);
    try {
      expect(await ctl("create", "-f", "pool-b.yaml")).toMatchObject({ code: 0, stderr: "" });
      expect((await ctl("get", "ippools", "-o", "name")).stdout).toContain("pool-b");
      expect(await ctl("delete", "ippool", "pool-b")).toMatchObject({ code: 0 });
    } finally {
      rmSync(`${snapshot}.owner`, { force: true });
    }
  });

  it("once the agent released the snapshot, writes work again", async () => {
    takeSnapshotOwnership(snapshot).release();
    expect(await ctl("label", "ippool", "pool-a", "team=y")).toMatchObject({ code: 0, stderr: "" });
  });
});
