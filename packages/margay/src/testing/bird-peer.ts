/**
 * A BIRD 2 daemon in its own namespace, playing a top-of-rack router: eBGP to chosen lab hosts, learns
 * their routes, announces static prefixes of its own.
 *
 * @packageDocumentation
 */
import { type ChildProcess, spawn } from "node:child_process";
import { openSync, closeSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ClusterLabError } from "./errors.js";
import { nsArgv, runCommand, terminate, waitFor } from "./process.js";

/** One BGP neighbour of a {@link BirdPeer}: a lab host. */
export interface BirdNeighbor {
  /** Protocol name in BIRD (letters, digits, `_`). */
  readonly name: string;
  /** The host's underlay IPv4 address (no prefix). */
  readonly address: string;
  /** The host's AS. */
  readonly asNumber: number;
  /** The host is not on the peer's subnet (eBGP multihop). */
  readonly multihop?: boolean | undefined;
}

/** One route BIRD holds, as `birdc show route` prints it (best route per prefix). */
export interface BirdRoute {
  readonly prefix: string;
  /** `via` address, if any (blackhole/unreachable routes have none). */
  readonly nextHop: string | undefined;
  /** The protocol that brought it (`h1`, `announced`, ...). */
  readonly protocol: string;
  /** The line after the prefix, e.g. `unicast [h1 10:00:00.000] * (100) [AS64512i]`. */
  readonly summary: string;
}

/** A running BIRD peer. */
export interface BirdPeer {
  readonly name: string;
  /** Its namespace. */
  readonly ns: string;
  /** Its underlay address (no prefix). */
  readonly address: string;
  readonly asNumber: number;
  /** Runs `birdc` with `args` against this daemon. */
  birdc(args: readonly string[]): Promise<string>;
  /** Best route per prefix in `master4`. */
  routes(): Promise<Map<string, BirdRoute>>;
  /** Every path in `master4` (several per prefix when several peers send it). */
  paths(): Promise<BirdRoute[]>;
  /** BGP state per neighbour protocol name (`Established`, `Active`, ...). */
  sessions(): Promise<Record<string, string>>;
  /** Announces `prefix` (a static blackhole route BIRD exports with next hop self). */
  announce(prefix: string): Promise<void>;
  /** Stops announcing `prefix`. */
  withdraw(prefix: string): Promise<void>;
  /** Replaces the neighbour list (reconfigures BIRD without restarting it). */
  setNeighbors(neighbors: readonly BirdNeighbor[]): Promise<void>;
  /** Stops BIRD. */
  close(): Promise<void>;
}

/** What {@link startBirdPeer} needs (the lab has made the namespace and its address). */
export interface StartBirdPeerOptions {
  readonly name: string;
  readonly ns: string;
  readonly address: string;
  readonly asNumber: number;
  readonly neighbors: readonly BirdNeighbor[];
  readonly announce?: readonly string[] | undefined;
  /** Directory for its config, control socket and log. */
  readonly dir: string;
  readonly birdBinary?: string | undefined;
  readonly birdcBinary?: string | undefined;
}

const PROTO_NAME = /^[A-Za-z][A-Za-z0-9_]{0,30}$/;

/** BIRD's configuration for a peer (exported for tests of the text itself). */
export function birdConfig(o: {
  address: string;
  asNumber: number;
  neighbors: readonly BirdNeighbor[];
  announce: readonly string[];
}): string {
  const lines = [
    `router id ${o.address};`,
    "protocol device { scan time 5; }",
    "protocol direct { ipv4; }",
    "protocol static announced {",
    "  ipv4;",
    ...o.announce.map((p) => `  route ${p} blackhole;`),
    "}",
    "template bgp lab_host {",
    `  local ${o.address} as ${o.asNumber};`,
    "  hold time 9;",
    "  connect retry time 2;",
    "  error wait time 1, 4;",
    '  ipv4 { import all; export where proto = "announced"; next hop self; };',
    "}",
  ];
  for (const n of o.neighbors) {
    if (!PROTO_NAME.test(n.name)) throw new ClusterLabError("bad-input", `bad BIRD protocol name ${n.name}`);
    lines.push(
      `protocol bgp ${n.name} from lab_host { neighbor ${n.address} as ${n.asNumber};${n.multihop ? " multihop 4;" : ""} }`,
    );
  }
  return `${lines.join("\n")}\n`;
}

/** Parses `birdc show route` into every path it lists, in its order (the best path of a prefix first). */
export function parseBirdPaths(text: string): BirdRoute[] {
  const out: BirdRoute[] = [];
  let current: { prefix: string; summary: string; protocol: string; nextHop: string | undefined } | undefined;
  let prefix = "";
  const flush = () => {
    if (current !== undefined) out.push({ ...current });
    current = undefined;
  };
  for (const line of text.split("\n")) {
    if (line.startsWith("BIRD ") || line.startsWith("Table ") || line.trim() === "") continue;
    const head = /^(\S+\/\d+)\s+(.*)$/.exec(line);
    const alt = /^\s+((?:unicast|unreachable|blackhole|prohibit)\s+\[.*)$/.exec(line);
    if (head !== null || alt !== null) {
      flush();
      if (head !== null) prefix = head[1]!;
      const summary = head !== null ? head[2]! : alt![1]!;
      current = { prefix, summary, protocol: /\[(\S+)/.exec(summary)?.[1] ?? "", nextHop: undefined };
      continue;
    }
    const via = /^\s+via\s+(\S+)/.exec(line);
    if (via !== null && current !== undefined && current.nextHop === undefined) current.nextHop = via[1];
  }
  flush();
  return out;
}

/** Parses `birdc show route` into the best path per prefix. */
export function parseBirdShowRoute(text: string): Map<string, BirdRoute> {
  const out = new Map<string, BirdRoute>();
  for (const r of parseBirdPaths(text)) if (!out.has(r.prefix)) out.set(r.prefix, r);
  return out;
}

/** Starts BIRD in `o.ns` and waits until its control socket answers. */
export async function startBirdPeer(o: StartBirdPeerOptions): Promise<BirdPeer> {
  const bird = o.birdBinary ?? "/usr/sbin/bird";
  const birdcBin = o.birdcBinary ?? "/usr/sbin/birdc";
  const conf = join(o.dir, `bird-${o.name}.conf`);
  const sock = join(o.dir, `bird-${o.name}.ctl`);
  const log = join(o.dir, `bird-${o.name}.log`);
  let neighbors = [...o.neighbors];
  const announced = new Set(o.announce ?? []);
  const write = () =>
    writeFile(
      conf,
      birdConfig({ address: o.address, asNumber: o.asNumber, neighbors, announce: [...announced] }),
    );
  await write();
  const birdc = (args: readonly string[]) =>
    runCommand([birdcBin, "-s", sock, ...args], { timeoutMs: 10_000 });
  const fd = openSync(log, "a");
  const argv = nsArgv(o.ns, [bird, "-f", "-c", conf, "-s", sock, "-P", join(o.dir, `bird-${o.name}.pid`)]);
  let child: ChildProcess;
  try {
    child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", fd, fd], env: {} });
  } finally {
    closeSync(fd);
  }
  try {
    await waitFor(
      `BIRD ${o.name} to answer on its control socket`,
      async () => {
        if (child.exitCode !== null)
          throw new ClusterLabError("command-failed", `BIRD ${o.name} exited (${child.exitCode})`);
        return (await birdc(["show", "status"])).includes("Daemon is up");
      },
      { timeoutMs: 15_000 },
    );
  } catch (e) {
    await terminate(child, "SIGKILL");
    throw e;
  }
  const reconfigure = async () => {
    await write();
    const out = await birdc(["configure"]);
    if (!/Reconfigured|Reconfiguration in progress|Reconfiguration confirmed/.test(out))
      throw new ClusterLabError("command-failed", `BIRD ${o.name} refused its new config: ${out.trim()}`);
  };
  return {
    name: o.name,
    ns: o.ns,
    address: o.address,
    asNumber: o.asNumber,
    birdc,
    async routes() {
      return parseBirdShowRoute(await birdc(["show", "route", "table", "master4"]));
    },
    async paths() {
      return parseBirdPaths(await birdc(["show", "route", "table", "master4"]));
    },
    async sessions() {
      const out: Record<string, string> = {};
      for (const n of neighbors) {
        const text = await birdc(["show", "protocols", "all", n.name]);
        out[n.name] = /BGP state:\s+(\S+)/.exec(text)?.[1] ?? "unknown";
      }
      return out;
    },
    async announce(prefix) {
      announced.add(prefix);
      await reconfigure();
    },
    async withdraw(prefix) {
      announced.delete(prefix);
      await reconfigure();
    },
    async setNeighbors(next) {
      neighbors = [...next];
      await reconfigure();
    },
    async close() {
      await terminate(child, "SIGTERM", 3_000);
    },
  };
}
