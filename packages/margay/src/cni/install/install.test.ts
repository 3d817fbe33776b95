import { mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseNetConfList } from "@margay/cni";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { installCniMain } from "./cli.js";
import { installCni, isInstallCniError, uninstallCni } from "./install.js";

let root: string;
let src: string;
let bin: string;
let conf: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "margay-install-"));
  src = join(root, "dist");
  bin = join(root, "opt/cni/bin"); // does not exist yet: install creates it
  conf = join(root, "etc/cni/net.d");
  await rm(src, { recursive: true, force: true });
  await import("node:fs/promises").then((fs) => fs.mkdir(src, { recursive: true }));
  await writeFile(join(src, "margay.cjs"), "#!/usr/bin/env node\n// margay\n");
  await writeFile(join(src, "margay-ipam.cjs"), "#!/usr/bin/env node\n// margay-ipam\n");
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const opts = () => ({ sourceDir: src, binDir: bin, confDir: conf });
const actions = (r: { files: readonly { path: string; action: string }[] }) =>
  Object.fromEntries(r.files.map((f) => [f.path.slice(root.length), f.action]));

describe("installCni", () => {
  it("creates the directories, copies both plugins (mode 755) and writes a valid conflist", async () => {
    const r = await installCni({ ...opts(), mtu: 1450, chain: ["portmap", "bandwidth", "tuning"] });
    expect(actions(r)).toEqual({
      "/opt/cni/bin/margay": "written",
      "/opt/cni/bin/margay-ipam": "written",
      "/etc/cni/net.d/10-margay.conflist": "written",
    });
    expect((await stat(join(bin, "margay"))).mode & 0o777).toBe(0o755);
    const list = parseNetConfList(await readFile(join(conf, "10-margay.conflist")));
    expect(list.name).toBe("margay");
    expect(list.plugins.map((p) => p.type)).toEqual(["margay", "portmap", "bandwidth", "tuning"]);
    expect(list.plugins[0]).toMatchObject({
      mtu: 1450,
      agent_socket: "/var/run/margay/agent.sock",
      state_dir: "/var/lib/margay",
      ipam: { type: "margay" },
    });
    expect(list.plugins[1]).toMatchObject({ capabilities: { portMappings: true } });
    expect(list.plugins[2]).toMatchObject({ capabilities: { bandwidth: true } });
  });

  it("is idempotent: a second run changes nothing", async () => {
    await installCni(opts());
    const before = await stat(join(conf, "10-margay.conflist"));
    const r = await installCni(opts());
    expect(new Set(Object.values(actions(r)))).toEqual(new Set(["unchanged"]));
    expect((await stat(join(conf, "10-margay.conflist"))).mtimeMs).toBe(before.mtimeMs);
  });

  it("rewrites its own untouched conflist when the options change (MTU)", async () => {
    await installCni(opts());
    const r = await installCni({ ...opts(), mtu: 1400 });
    expect(actions(r)["/etc/cni/net.d/10-margay.conflist"]).toBe("written");
    expect(JSON.parse(await readFile(join(conf, "10-margay.conflist"), "utf8")).plugins[0].mtu).toBe(1400);
  });

  it("keeps a user-edited conflist unless --overwrite", async () => {
    await installCni(opts());
    const path = join(conf, "10-margay.conflist");
    const edited = (await readFile(path, "utf8")).replace('"margay",', '"margay", "x": 1,');
    await writeFile(path, edited);
    const r = await installCni({ ...opts(), mtu: 1400 });
    expect(actions(r)["/etc/cni/net.d/10-margay.conflist"]).toBe("kept-edited");
    expect(await readFile(path, "utf8")).toBe(edited);
    const o = await installCni({ ...opts(), mtu: 1400, overwrite: true });
    expect(actions(o)["/etc/cni/net.d/10-margay.conflist"]).toBe("written");
    expect(await readFile(path, "utf8")).not.toBe(edited);
  });

  it("keeps a conflist it did not write (no manifest entry)", async () => {
    const { mkdir } = await import("node:fs/promises");
    await mkdir(conf, { recursive: true });
    await writeFile(join(conf, "10-margay.conflist"), "{}\n");
    const r = await installCni(opts());
    expect(actions(r)["/etc/cni/net.d/10-margay.conflist"]).toBe("kept-edited");
    expect(await readFile(join(conf, "10-margay.conflist"), "utf8")).toBe("{}\n");
    // and uninstall leaves it
    await uninstallCni({ confDir: conf });
    expect(await readFile(join(conf, "10-margay.conflist"), "utf8")).toBe("{}\n");
  });

  it("uninstall removes exactly what install wrote (and the plugins' code caches), nothing else", async () => {
    const { mkdir } = await import("node:fs/promises");
    await mkdir(bin, { recursive: true });
    await writeFile(join(bin, "portmap"), "other plugin");
    await installCni(opts());
    await writeFile(join(bin, ".margay.abc.v20.x64.v8cache"), "cache");
    await writeFile(join(conf, "99-other.conflist"), "{}");
    const r = await uninstallCni({ confDir: conf });
    expect(actions(r)).toEqual({
      "/opt/cni/bin/margay": "removed",
      "/opt/cni/bin/.margay.abc.v20.x64.v8cache": "removed",
      "/opt/cni/bin/margay-ipam": "removed",
      "/etc/cni/net.d/10-margay.conflist": "removed",
    });
    expect(await readdir(bin)).toEqual(["portmap"]);
    expect(await readdir(conf)).toEqual(["99-other.conflist"]);
    // a second uninstall has nothing to do
    expect((await uninstallCni({ confDir: conf })).files).toEqual([]);
  });

  it("uninstall keeps a file edited since install", async () => {
    await installCni(opts());
    await writeFile(join(bin, "margay"), "replaced by someone");
    const r = await uninstallCni({ confDir: conf });
    expect(actions(r)["/opt/cni/bin/margay"]).toBe("kept-edited");
    expect(await readFile(join(bin, "margay"), "utf8")).toBe("replaced by someone");
  });

  it("fails with typed errors and writes nothing on bad input", async () => {
    const e1 = await installCni({ ...opts(), sourceDir: join(root, "nope") }).catch((e) => e);
    expect(isInstallCniError(e1) && e1.code).toBe("source-missing");
    const e2 = await installCni({ ...opts(), mtu: 10 }).catch((e) => e);
    expect(isInstallCniError(e2) && e2.code).toBe("invalid-option");
    const e3 = await installCni({ ...opts(), chain: ["flannel" as never] }).catch((e) => e);
    expect(isInstallCniError(e3) && e3.details).toEqual({ option: "chain" });
    await expect(stat(bin)).rejects.toMatchObject({ code: "ENOENT" });
    await expect(stat(conf)).rejects.toMatchObject({ code: "ENOENT" });
  });
});

describe("margay-node install-cni / uninstall-cni (CLI)", () => {
  const run = async (argv: string[], env: Record<string, string> = {}) => {
    let out = "";
    let err = "";
    const code = await installCniMain(argv, {
      env,
      stdout: (s) => {
        out += s;
      },
      stderr: (s) => {
        err += s;
      },
      sourceDir: src,
    });
    return { code, out, err };
  };

  it("installs with flags, prints one line per file, uninstalls", async () => {
    const r = await run([
      "install-cni",
      "--cni-bin-dir",
      bin,
      "--cni-conf-dir",
      conf,
      "--chain",
      "",
      "--mtu",
      "1400",
    ]);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out.trim().split("\n")).toHaveLength(3);
    const list = JSON.parse(await readFile(join(conf, "10-margay.conflist"), "utf8"));
    expect(list.plugins).toHaveLength(1);
    const u = await run(["uninstall-cni", "--cni-conf-dir", conf, "-o", "json"]);
    expect(u.code).toBe(0);
    expect(JSON.parse(u.out).files.map((f: { action: string }) => f.action)).toEqual([
      "removed",
      "removed",
      "removed",
    ]);
  });

  it("reads Calico's env names CNI_BIN_DIR, CNI_NET_DIR, CNI_MTU", async () => {
    const r = await run(["install-cni"], { CNI_BIN_DIR: bin, CNI_NET_DIR: conf, CNI_MTU: "1300" });
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(await readFile(join(conf, "10-margay.conflist"), "utf8")).plugins[0].mtu).toBe(1300);
  });

  it("bad usage exits 2 with the reason on stderr, no stack", async () => {
    const a = await run(["install-cni", "--bogus"]);
    expect(a.code).toBe(2);
    expect(a.err).toMatch(/bogus/);
    const b = await run(["install-cni", "--cni-bin-dir", "relative/dir", "--cni-conf-dir", conf]);
    expect(b.code).toBe(2);
    expect(b.err).toMatch(/invalid-option: --cni-bin-dir: must be an absolute path/);
    expect(b.err).not.toMatch(/\n\s+at /);
    const c = await run(["install-cni", "--mtu", "abc", "--cni-bin-dir", bin, "--cni-conf-dir", conf]);
    expect(c.code).toBe(2);
    const h = await run(["install-cni", "--help"]);
    expect(h.code).toBe(0);
    expect(h.out).toMatch(/Examples:/);
  });
});
