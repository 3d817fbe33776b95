import { spawnSync } from "node:child_process";
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildMargayIpamBundle } from "./build-bundle.js";
import { escapePayload, unescapePayload } from "./code-cache.js";

// The executable as shipped: loader + payload, its V8 code cache next to it, and what its start loads.

let dir: string;
let bin: string;
let conf: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mgcni-codecache-"));
  bin = await buildMargayIpamBundle(join(dir, "bin", "margay-ipam"));
  conf = JSON.stringify({
    cniVersion: "1.1.0",
    name: "mgcc",
    type: "bridge",
    ipam: {
      type: "margay-ipam",
      datastore: { type: "memory", snapshotPath: join(dir, "state", "ipam.json") },
      node: "n1",
      pools: [{ cidr: "10.246.0.0/24" }],
    },
  });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Prints the internal modules loaded after the preload ran, so a test can see what a start pulls in. */
const PRELOAD = `const s = new Set(process.moduleLoadList);
process.on("exit", () => require("node:fs").writeSync(2, "@@loaded " + process.moduleLoadList.filter((m) => !s.has(m)).join(",") + "\\n"));`;

function run(command: string, containerId: string, preload?: string) {
  const args = preload === undefined ? [bin] : ["-r", preload, bin];
  const r = spawnSync(process.execPath, args, {
    env: {
      PATH: "/usr/bin:/bin",
      CNI_COMMAND: command,
      CNI_CONTAINERID: containerId,
      CNI_NETNS: "/proc/self/ns/net",
      CNI_IFNAME: "eth0",
      CNI_PATH: join(dir, "bin"),
    },
    input: conf,
    encoding: "utf8",
  });
  const loaded = /@@loaded (.*)/.exec(r.stderr)?.[1]?.split(",") ?? [];
  return { status: r.status, stdout: r.stdout, loaded };
}

async function cacheFiles(): Promise<string[]> {
  return (await readdir(join(dir, "bin"))).filter((f) => f.endsWith(".v8cache"));
}

describe("payload escaping", () => {
  it("round-trips any text and never leaves a comment terminator", () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom("@", "*", "/", "a", "b", "\n") }), (s) => {
        const e = escapePayload(s);
        expect(e).not.toContain("*/");
        expect(unescapePayload(e)).toBe(s);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("margay-ipam executable with its V8 code cache", () => {
  it("VERSION answers and leaves no cache (only a successful ADD writes it)", async () => {
    const r = run("VERSION", "x");
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ cniVersion: "1.1.0" });
    expect(await cacheFiles()).toEqual([]);
  });

  it("the first ADD writes the cache (0600); the next ADD and DEL use it without rewriting it", async () => {
    const a = run("ADD", "cc-a");
    expect(a.status, a.stdout).toBe(0);
    const [file] = await cacheFiles();
    expect(file).toMatch(
      new RegExp(`^\\.margay-ipam\\.[0-9a-f]{16}\\.${process.version}\\.${process.arch}\\.v8cache$`),
    );
    const path = join(dir, "bin", file!);
    const st = await stat(path);
    expect(st.mode & 0o777).toBe(0o600);
    const b = run("ADD", "cc-b");
    expect(b.status, b.stdout).toBe(0);
    expect(JSON.parse(b.stdout).ips[0].address).not.toBe(JSON.parse(a.stdout).ips[0].address);
    // Rewritten only when missing or rejected by V8: the same inode means V8 accepted it.
    expect((await stat(path)).ino).toBe(st.ino);
    expect(run("DEL", "cc-a").status).toBe(0);
    expect(run("DEL", "cc-b").status).toBe(0);
    expect((await stat(path)).ino).toBe(st.ino);
  });

  it("a corrupt cache is rejected, the call still succeeds, and the cache is rewritten", async () => {
    const [file] = await cacheFiles();
    const path = join(dir, "bin", file!);
    await writeFile(path, Buffer.alloc(4096, 7), { mode: 0o600 });
    const r = run("ADD", "cc-c");
    expect(r.status, r.stdout).toBe(0);
    const data = await readFile(path);
    expect(data.equals(Buffer.alloc(4096, 7))).toBe(false);
    expect(run("DEL", "cc-c").status).toBe(0);
  });

  it("a cache writable by others is never read", async () => {
    const [file] = await cacheFiles();
    const path = join(dir, "bin", file!);
    // A valid cache (the previous test rewrote it): were it read, V8 would accept it and keep it as is.
    await chmod(path, 0o666);
    const r = run("ADD", "cc-d");
    expect(r.status, r.stdout).toBe(0);
    // Ignored, so missing as far as the loader knew: replaced by a fresh 0600 file.
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(run("DEL", "cc-d").status).toBe(0);
  });

  it("starting does not load node:net, node:crypto or the stream stack (VERSION, ADD, DEL)", async () => {
    const preload = join(dir, "preload.cjs");
    await writeFile(preload, PRELOAD);
    for (const [cmd, id] of [
      ["VERSION", "x"],
      ["ADD", "cc-e"],
      ["DEL", "cc-e"],
    ] as const) {
      const r = run(cmd, id, preload);
      expect(r.status, r.stdout).toBe(0);
      expect(r.loaded.length, `${cmd}: nothing recorded`).toBeGreaterThan(0);
      const heavy = r.loaded.filter((m) =>
        /^NativeModule (net|crypto|internal\/crypto\/.*|internal\/streams\/readable|child_process)$/.test(m),
      );
      expect(heavy, cmd).toEqual([]);
    }
  });
});
