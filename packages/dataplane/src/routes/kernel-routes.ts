import { canonicalIpOrThrow, cidrOrThrow } from "../net.js";
import { DataplaneError, DataplaneErrorCode } from "../errors.js";
import type { IpBatchSession } from "../kernel/ip-session.js";
import { type KernelCallOptions, ipBatch } from "../kernel/iproute.js";
import { type NetnsHandle, ipArgv } from "../kernel/netns.js";
import type { CommandRunner } from "../kernel/runner.js";
import { type NextHop, type ProgrammedRoute, routeKey, sortNextHops } from "./plan.js";

interface JsonHop {
  gateway?: string;
  dev?: string;
  flags?: string[];
}
interface JsonRoute extends JsonHop {
  dst: string;
  type?: string;
  nexthops?: JsonHop[];
}

/** Where our routes live: table and protocol number. */
export interface RouteTableSpec {
  /** Routing table id (254 = main). */
  readonly table: number;
  /** Route protocol number marking routes as ours. */
  readonly protocol: number;
}

function hopFromJson(h: JsonHop): NextHop {
  const onlink = (h.flags ?? []).includes("onlink");
  // Flat routes leave the device to the kernel; report it only where it is part of the route's meaning.
  const reportDev = onlink || h.gateway === undefined;
  return {
    ...(h.gateway === undefined ? {} : { via: canonicalIpOrThrow(h.gateway) }),
    ...(reportDev && h.dev !== undefined ? { dev: h.dev } : {}),
    onlink,
  };
}

/** Converts one `ip -json route` object into a {@link ProgrammedRoute}. */
export function routeFromJson(r: JsonRoute, family: 4 | 6): ProgrammedRoute {
  const dst = r.dst === "default" ? (family === 4 ? "0.0.0.0/0" : "::/0") : cidrOrThrow(r.dst).text;
  if (r.type === "blackhole") return { dst, type: "blackhole", nextHops: [] };
  const hops = r.nexthops !== undefined ? r.nexthops.map(hopFromJson) : [hopFromJson(r)];
  return { dst, type: "unicast", nextHops: sortNextHops(hops) };
}

const TABLE_NAMES: Readonly<Record<string, number>> = { main: 254, local: 255, default: 253 };

/** Reads every route carrying our protocol number in our table (both families, one `ip` process). */
export async function listOwnedRoutes(
  runner: CommandRunner,
  ns: NetnsHandle,
  spec: RouteTableSpec,
  options: KernelCallOptions = {},
): Promise<Map<string, ProgrammedRoute>> {
  return (await readOwnedState(runner, ns, spec, undefined, options)).routes;
}

/** Our routes and whether a device exists, read together. */
export interface OwnedState {
  /** Routes carrying our protocol number in our table. */
  readonly routes: Map<string, ProgrammedRoute>;
  /** Whether the device asked about exists (undefined if none was asked about). */
  readonly devicePresent: boolean | undefined;
}

/**
 * Reads our routes (both families) and, optionally, whether `device` exists, with one `ip -batch`
 * process: at start-up every process counts. `ip -json -batch` prints one JSON array per command, one
 * per line; a missing device makes its command fail and print nothing.
 */
export async function readOwnedState(
  runner: CommandRunner,
  ns: NetnsHandle,
  spec: RouteTableSpec,
  device: string | undefined,
  options: KernelCallOptions = {},
): Promise<OwnedState> {
  // `table all` is the one listing that covers IPv4 and IPv6 together; rows outside the main table carry
  // a `table` field, which filters them.
  const lines = [`route show table all proto ${spec.protocol}`];
  if (device !== undefined) lines.push(`link show dev ${device}`);
  const r = await runner.run(ipArgv(ns, ["-json", "-force", "-batch", "-"]), {
    stdin: `${lines.join("\n")}\n`,
    signal: options.signal,
    okCodes: [0, 1],
  });
  const arrays = r.stdout
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.startsWith("["));
  if (arrays.length === 0 || (r.code !== 0 && device === undefined)) {
    throw new DataplaneError(DataplaneErrorCode.CommandFailed, `cannot list routes: ${r.stderr.trim()}`, {
      retryable: true,
      details: { stderr: r.stderr },
    });
  }
  const out = new Map<string, ProgrammedRoute>();
  for (const row of JSON.parse(arrays[0]!) as (JsonRoute & { table?: string })[]) {
    const table = row.table === undefined ? 254 : (TABLE_NAMES[row.table] ?? Number(row.table));
    if (table !== spec.table) continue;
    const route = routeFromJson(row, row.dst.includes(":") ? 6 : 4);
    out.set(route.dst, route);
  }
  const devicePresent = device === undefined ? undefined : arrays.length > 1 && arrays[1] !== "[]";
  return { routes: out, devicePresent };
}

function hopArgs(h: NextHop): string {
  return `${h.via === undefined ? "" : ` via ${h.via}`}${h.dev === undefined ? "" : ` dev ${h.dev}`}${h.onlink ? " onlink" : ""}`;
}

/** The `ip -batch` line that installs (or replaces) `r`. */
export function renderRouteReplace(r: ProgrammedRoute, spec: RouteTableSpec): string {
  const tail = ` proto ${spec.protocol} table ${spec.table}`;
  if (r.type === "blackhole") return `route replace blackhole ${r.dst}${tail}`;
  if (r.nextHops.length === 1) {
    const h = r.nextHops[0]!;
    const scope = h.via === undefined ? " scope link" : "";
    return `route replace ${r.dst}${hopArgs(h)}${scope}${tail}`;
  }
  return `route replace ${r.dst}${tail}${r.nextHops.map((h) => ` nexthop${hopArgs(h)}`).join("")}`;
}

/** The `ip -batch` line that deletes our route to `dst` (the protocol restricts it to ours). */
export function renderRouteDelete(dst: string, spec: RouteTableSpec): string {
  return `route del ${dst} proto ${spec.protocol} table ${spec.table}`;
}

/** Batch lines turning `current` into `desired`: replaces for new/changed routes, deletes for extras. */
export function diffRoutes(
  current: ReadonlyMap<string, ProgrammedRoute>,
  desired: ReadonlyMap<string, ProgrammedRoute>,
  spec: RouteTableSpec,
): { lines: string[]; added: number; removed: number } {
  const lines: string[] = [];
  let added = 0;
  let removed = 0;
  for (const dst of current.keys()) {
    if (!desired.has(dst)) {
      lines.push(renderRouteDelete(dst, spec));
      removed++;
    }
  }
  for (const [dst, r] of desired) {
    const cur = current.get(dst);
    if (cur === undefined || routeKey(cur) !== routeKey(r)) {
      // A blackhole cannot be replaced by a unicast route in place (different type): delete it first.
      if (cur !== undefined && cur.type !== r.type) lines.push(renderRouteDelete(dst, spec));
      lines.push(renderRouteReplace(r, spec));
      added++;
    }
  }
  return { lines, added, removed };
}

/** Like {@link diffRoutes}, but looks only at `dsts` (the keys a batch touched). */
export function diffRouteKeys(
  current: ReadonlyMap<string, ProgrammedRoute>,
  desired: ReadonlyMap<string, ProgrammedRoute>,
  dsts: Iterable<string>,
  spec: RouteTableSpec,
): { lines: string[]; added: number; removed: number } {
  const pick = (m: ReadonlyMap<string, ProgrammedRoute>, keys: Set<string>) => {
    const out = new Map<string, ProgrammedRoute>();
    for (const k of keys) {
      const v = m.get(k);
      if (v !== undefined) out.set(k, v);
    }
    return out;
  };
  const keys = new Set(dsts);
  return diffRoutes(pick(current, keys), pick(desired, keys), spec);
}

/** Applies `lines` through `session` (a long-lived `ip -batch`) if given, else with one `ip -batch` process. */
export async function applyRouteLines(
  runner: CommandRunner,
  ns: NetnsHandle,
  lines: readonly string[],
  options: KernelCallOptions = {},
  session?: IpBatchSession | undefined,
): Promise<void> {
  if (session !== undefined) await session.run(lines, options);
  else await ipBatch(runner, ns, lines, options);
}
