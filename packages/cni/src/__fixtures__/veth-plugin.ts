/**
 * `mgtest-veth`: a small but real CNI plugin for the toolkit's own tests, built on `pluginMain`. It
 * allocates an IPv4 address from `subnet` (one file per address under `dataDir/<network>`, created with
 * O_EXCL so concurrent ADDs never share one), creates a veth pair with one end moved into CNI_NETNS and
 * addressed, and undoes everything on failure, DEL and GC.
 *
 * Config keys: `subnet` (IPv4 CIDR, prefix 16-30), `dataDir` (absolute path), `failAfterAlloc` (test
 * hook: fail with code 101 after allocating, to prove cleanup), `unavailable` (STATUS answers 50).
 */

import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, open, readdir, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { type CmdArgs, CniError, CniErrorCode, type CniResult, pluginMain } from "../index.js";

const run = promisify(execFile);

interface Conf {
  network: string;
  base: number;
  prefix: number;
  dir: string;
  failAfterAlloc: boolean;
}

function confOf(c: Record<string, unknown>): Conf {
  const subnet = c.subnet;
  const m = typeof subnet === "string" ? /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(subnet) : null;
  if (m === null || m.slice(1, 5).some((o) => Number(o) > 255) || Number(m[5]) < 16 || Number(m[5]) > 30) {
    throw new CniError(
      CniErrorCode.InvalidNetworkConfig,
      "$.subnet: must be an IPv4 CIDR with prefix 16-30",
      { details: String(subnet) },
    );
  }
  if (typeof c.dataDir !== "string" || !c.dataDir.startsWith("/")) {
    throw new CniError(CniErrorCode.InvalidNetworkConfig, "$.dataDir: must be an absolute path");
  }
  const prefix = Number(m[5]);
  const ip = m.slice(1, 5).reduce((a, o) => a * 256 + Number(o), 0);
  const base = ip - (ip % 2 ** (32 - prefix));
  return {
    network: String(c.name),
    base,
    prefix,
    dir: join(c.dataDir, String(c.name)),
    failAfterAlloc: c.failAfterAlloc === true,
  };
}

const ipStr = (n: number) => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join(".");
const owner = (a: { containerId: string; ifname: string }) => `${a.containerId}\n${a.ifname}`;
const hostVeth = (a: { containerId: string; ifname: string }) =>
  `mgt${createHash("sha256").update(owner(a)).digest("hex").slice(0, 8)}`;

async function findOwned(conf: Conf, who: string): Promise<string[]> {
  let files: string[];
  try {
    files = await readdir(conf.dir);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const f of files) {
    if ((await readFile(join(conf.dir, f), "utf8").catch(() => "")) === who) out.push(f);
  }
  return out;
}

async function allocate(conf: Conf, who: string): Promise<string> {
  await mkdir(conf.dir, { recursive: true });
  const existing = await findOwned(conf, who);
  if (existing.length > 0) return existing[0]!;
  const size = 2 ** (32 - conf.prefix);
  for (let i = 2; i < size - 1; i++) {
    const ip = ipStr(conf.base + i);
    try {
      const fh = await open(join(conf.dir, ip), "wx");
      await fh.writeFile(who);
      await fh.close();
      return ip;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
  }
  throw new CniError(110, "no free address", { details: `subnet ${ipStr(conf.base)}/${conf.prefix}` });
}

async function release(conf: Conf, who: string): Promise<void> {
  for (const f of await findOwned(conf, who)) await rm(join(conf.dir, f), { force: true });
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

async function removeLinks(a: CmdArgs): Promise<void> {
  if (a.netns !== "" && (await exists(a.netns))) {
    await run("nsenter", [`--net=${a.netns}`, "ip", "link", "del", a.ifname]).catch(() => undefined);
  }
  await run("ip", ["link", "del", hostVeth(a)]).catch(() => undefined);
}

await pluginMain(
  {
    async add(a) {
      const conf = confOf(a.config);
      const who = owner(a);
      const ip = await allocate(conf, who);
      try {
        if (conf.failAfterAlloc) throw new CniError(101, "failing after allocation, as configured");
        const host = hostVeth(a);
        await run("ip", ["link", "add", host, "type", "veth", "peer", "name", a.ifname, "netns", a.netns]);
        await run("ip", ["link", "set", host, "up"]);
        const ns = [`--net=${a.netns}`];
        await run("nsenter", [...ns, "ip", "addr", "add", `${ip}/${conf.prefix}`, "dev", a.ifname]);
        await run("nsenter", [...ns, "ip", "link", "set", a.ifname, "up"]);
        const { stdout } = await run("nsenter", [...ns, "ip", "-j", "link", "show", a.ifname]);
        const mac = (JSON.parse(stdout) as Array<{ address: string }>)[0]!.address;
        const result: CniResult = {
          cniVersion: a.cniVersion,
          interfaces: [{ name: host }, { name: a.ifname, mac, sandbox: a.netns }],
          ips: [{ address: `${ip}/${conf.prefix}`, interface: 1 }],
        };
        return result;
      } catch (e) {
        await removeLinks(a);
        await release(conf, who);
        throw e;
      }
    },
    async del(a) {
      const conf = confOf(a.config);
      await removeLinks(a);
      await release(conf, owner(a));
    },
    async check(a) {
      const conf = confOf(a.config);
      const owned = await findOwned(conf, owner(a));
      if (owned.length === 0)
        throw new CniError(CniErrorCode.UnknownContainer, "no allocation for this attachment");
      const { stdout } = await run("nsenter", [
        `--net=${a.netns}`,
        "ip",
        "-j",
        "addr",
        "show",
        "dev",
        a.ifname,
      ]);
      const addrs = (JSON.parse(stdout) as Array<{ addr_info: Array<{ local: string }> }>).flatMap((l) =>
        l.addr_info.map((x) => x.local),
      );
      if (!addrs.includes(owned[0]!))
        throw new CniError(120, "address missing from the interface", { details: owned[0] });
    },
    status(a) {
      if (a.config.unavailable === true)
        throw new CniError(CniErrorCode.PluginNotAvailable, "configured unavailable");
    },
    async gc(a) {
      const conf = confOf(a.config);
      const keep = new Set(
        a.validAttachments.map((v) => owner({ containerId: v.containerID, ifname: v.ifname })),
      );
      let files: string[] = [];
      try {
        files = await readdir(conf.dir);
      } catch {
        return;
      }
      for (const f of files) {
        const who = await readFile(join(conf.dir, f), "utf8").catch(() => "");
        if (who === "" || keep.has(who)) continue;
        const [containerId = "", ifname = ""] = who.split("\n");
        await run("ip", ["link", "del", hostVeth({ containerId, ifname })]).catch(() => undefined);
        await rm(join(conf.dir, f), { force: true });
      }
    },
  },
  { about: "mgtest-veth (margay cni test fixture)", maxStdinBytes: 64 * 1024 },
);
