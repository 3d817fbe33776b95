/**
 * Underlay address autodetection (Calico's `IP_AUTODETECTION_METHOD`), reading the host through
 * `ip -j -d addr show` and `ip -j route get` (argument arrays through a `CommandRunner`, so tests replay
 * recorded JSON). Every candidate is logged with why it was or was not chosen, and a method that cannot
 * decide (two interfaces match `interface=` or `cidr=`) is refused with an error naming both instead of a
 * guess.
 *
 * Methods:
 * - `first-found`: the first interface (kernel order) that is up, not skipped (see
 *   {@link DEFAULT_SKIPPED_INTERFACES}, the configured workload prefixes, and bridge / tunnel devices),
 *   and holds a global address of the family; its primary address.
 * - `skip-interface=RE,...`: as first-found, also skipping interfaces whose whole name matches a RE.
 * - `interface=RE,...`: the interface whose whole name matches the first RE that matches any interface
 *   with an address; two such interfaces are ambiguous. No default skips: the choice is explicit.
 * - `can-reach=DEST`: the source address the kernel would use towards DEST (`ip route get`).
 * - `cidr=CIDR,...`: the address inside the first CIDR that contains any; addresses on two interfaces
 *   are ambiguous. No default skips.
 *
 * @packageDocumentation
 */
import { lookup as dnsLookup } from "node:dns/promises";
import { cidrContains, type Logger, silentLogger, tryParseCidr, tryParseIp } from "@margay/api";
import type { CommandRunner } from "@margay/dataplane";
import type { NodeAddresses } from "../context.js";
import { AgentConfigError, AgentConfigErrorCode } from "./errors.js";
import type { AddressConfig, AgentConfig, AutodetectMethod } from "./types.js";

/** One address of a host interface. */
export interface HostAddress {
  readonly family: 4 | 6;
  readonly address: string;
  readonly prefixLength: number;
  /** `global`, `link`, `host`, ... */
  readonly scope: string;
}

/** A host interface as `ip -j -d addr show` describes it. */
export interface HostInterface {
  readonly index: number;
  readonly name: string;
  readonly mtu: number;
  /** Link kind (`veth`, `bridge`, `vxlan`, ...); undefined for a physical device. */
  readonly kind: string | undefined;
  /** Administratively up (`UP` flag). */
  readonly up: boolean;
  readonly addresses: readonly HostAddress[];
}

/**
 * Interfaces `first-found` and `skip-interface=` never pick (whole-name regexes): Calico's list, with
 * Margay's own devices. The configured workload interface prefixes are skipped too.
 */
export const DEFAULT_SKIPPED_INTERFACES: readonly string[] = Object.freeze([
  "lo",
  "docker.*",
  "br-.*",
  "cbr.*",
  "cni.*",
  "dummy.*",
  "virbr.*",
  "lxcbr.*",
  "veth.*",
  "cali.*",
  "mgy.*",
  "tunl.*",
  "flannel.*",
  "kube-ipvs.*",
  "kube-bridge",
  "vxlan.*",
  "vxlan-v6.*",
  "wireguard.*",
  "wg-v6.*",
  "nodelocaldns.*",
]);

/**
 * Link kinds `first-found` and `skip-interface=` never pick: bridges (a host bridge carries containers'
 * traffic; pick it with `interface=` when it is the underlay) and virtual devices that cannot be one.
 * Not veth: a host that is itself a container or a namespace has a veth as its uplink (workload veths
 * are skipped by name).
 */
export const SKIPPED_LINK_KINDS: readonly string[] = Object.freeze([
  "bridge",
  "vxlan",
  "ipip",
  "ip6tnl",
  "sit",
  "gre",
  "gretap",
  "ip6gre",
  "wireguard",
  "dummy",
  "ifb",
  "nlmon",
  "vrf",
]);

/** Options of {@link autodetectAddresses}. */
export interface AutodetectOptions {
  /** Runs `ip` (e.g. `createProcessRunner()` of `@margay/dataplane`). */
  readonly runner: CommandRunner;
  /** Each candidate and the choice are logged at info. Default silent. */
  readonly logger?: Logger | undefined;
  /** Look in this named network namespace (`ip -n NAME`) instead of the agent's own. */
  readonly netns?: string | undefined;
  /** Resolves a `can-reach=` host name. Default `dns.lookup`. */
  readonly lookup?: ((host: string, family: 4 | 6) => Promise<string>) | undefined;
  readonly signal?: AbortSignal | undefined;
}

const ipArgv = (netns: string | undefined, args: readonly string[]) => [
  "ip",
  ...(netns === undefined ? [] : ["-n", netns]),
  "-j",
  ...args,
];

function hostQueryError(message: string, argv: readonly string[], cause?: unknown): AgentConfigError {
  return new AgentConfigError(AgentConfigErrorCode.HostQuery, message, { field: "addresses", argv }, cause);
}

/** Parses `ip -j -d addr show` output. */
export function parseIpAddrJson(text: string): HostInterface[] {
  const raw: unknown = JSON.parse(text === "" ? "[]" : text);
  if (!Array.isArray(raw)) throw new Error("expected a JSON array");
  return raw.map((l: Record<string, unknown>) => {
    if (typeof l.ifname !== "string" || typeof l.ifindex !== "number")
      throw new Error("link without ifname/ifindex");
    const info = l.linkinfo as { info_kind?: unknown } | undefined;
    const flags = Array.isArray(l.flags) ? (l.flags as unknown[]) : [];
    const addrs = Array.isArray(l.addr_info) ? (l.addr_info as Record<string, unknown>[]) : [];
    return {
      index: l.ifindex,
      name: l.ifname,
      mtu: typeof l.mtu === "number" ? l.mtu : 1500,
      kind: typeof info?.info_kind === "string" ? info.info_kind : undefined,
      up: flags.includes("UP"),
      addresses: addrs
        .filter((a) => (a.family === "inet" || a.family === "inet6") && typeof a.local === "string")
        .map((a) => ({
          family: a.family === "inet" ? (4 as const) : (6 as const),
          address: tryParseIp(a.local as string)?.text ?? (a.local as string),
          prefixLength: typeof a.prefixlen === "number" ? a.prefixlen : a.family === "inet" ? 32 : 128,
          scope: typeof a.scope === "string" ? a.scope : "global",
        })),
    };
  });
}

/** Reads the host's interfaces and addresses. */
export async function readHostInterfaces(options: AutodetectOptions): Promise<HostInterface[]> {
  const argv = ipArgv(options.netns, ["-d", "addr", "show"]);
  let stdout: string;
  try {
    stdout = (await options.runner.run(argv, { signal: options.signal })).stdout;
  } catch (e) {
    throw hostQueryError(
      `cannot list the host's interfaces (${argv.join(" ")}): ${(e as Error).message}`,
      argv,
      e,
    );
  }
  try {
    return parseIpAddrJson(stdout);
  } catch (e) {
    throw hostQueryError(`unexpected output of ${argv.join(" ")}: ${(e as Error).message}`, argv, e);
  }
}

const whole = (patterns: readonly string[]) => patterns.map((p) => new RegExp(`^(?:${p})$`));

/** Why first-found / skip-interface= passes over an interface, or undefined if it does not. */
function skipReason(
  iface: HostInterface,
  family: 4 | 6,
  skip: readonly RegExp[],
  userSkip: readonly RegExp[],
): string | undefined {
  const byUser = userSkip.find((r) => r.test(iface.name));
  if (byUser !== undefined) return `skipped by skip-interface=${byUser.source.slice(4, -2)}`;
  const byName = skip.find((r) => r.test(iface.name));
  if (byName !== undefined) return `skipped by default (name matches ${byName.source.slice(4, -2)})`;
  if (iface.kind !== undefined && SKIPPED_LINK_KINDS.includes(iface.kind))
    return `skipped by default (${iface.kind} device)`;
  if (!iface.up) return "interface is down";
  if (usable(iface, family).length === 0) return `no global IPv${family} address`;
  return undefined;
}

const usable = (iface: HostInterface, family: 4 | 6) =>
  iface.addresses.filter((a) => a.family === family && a.scope === "global");

const withPrefix = (a: HostAddress) => `${a.address}/${a.prefixLength}`;

/** The interface's first global address of the family, for the candidate log line. */
const first = (iface: HostInterface, family: 4 | 6) => {
  const a = usable(iface, family)[0];
  return a === undefined ? undefined : withPrefix(a);
};

function inside(net: NonNullable<ReturnType<typeof tryParseCidr>>, a: HostAddress): boolean {
  const ip = tryParseIp(a.address);
  return ip !== undefined && cidrContains(net, ip);
}

interface Choice {
  readonly address: string;
  readonly iface: HostInterface | undefined;
}

function ambiguous(
  family: 4 | 6,
  method: string,
  matches: readonly { iface: HostInterface; address: HostAddress }[],
): AgentConfigError {
  const list = matches.map((m) => `${m.iface.name} (${withPrefix(m.address)})`).join(" and ");
  return new AgentConfigError(
    AgentConfigErrorCode.AmbiguousAddress,
    `IPv${family} autodetection ${method} matches addresses on several interfaces: ${list}; narrow the method or set ${family === 4 ? "IP" : "IP6"} explicitly`,
    {
      field: family === 4 ? "ipAutodetectionMethod" : "ip6AutodetectionMethod",
      value: method,
      candidates: matches.map((m) => ({ interface: m.iface.name, address: withPrefix(m.address) })),
    },
  );
}

function noAddress(family: 4 | 6, method: string, why: string): AgentConfigError {
  return new AgentConfigError(
    AgentConfigErrorCode.NoAddress,
    `IPv${family} autodetection ${method} found no address: ${why}`,
    { field: family === 4 ? "ipAutodetectionMethod" : "ip6AutodetectionMethod", value: method },
  );
}

function methodText(m: AutodetectMethod): string {
  switch (m.kind) {
    case "first-found":
      return "first-found";
    case "interface":
    case "skip-interface":
      return `${m.kind}=${m.patterns.join(",")}`;
    case "can-reach":
      return `can-reach=${m.destination}`;
    case "cidr":
      return `cidr=${m.cidrs.join(",")}`;
  }
}

async function detect(
  family: 4 | 6,
  method: AutodetectMethod,
  ifaces: readonly HostInterface[],
  config: AgentConfig,
  options: AutodetectOptions,
  log: Logger,
): Promise<Choice> {
  const text = methodText(method);
  const candidate = (iface: HostInterface, chosen: boolean, reason: string, address?: string) =>
    log.info(
      { family, method: text, interface: iface.name, kind: iface.kind ?? "device", address, chosen, reason },
      "address candidate",
    );
  switch (method.kind) {
    case "first-found":
    case "skip-interface": {
      const skip = whole([...DEFAULT_SKIPPED_INTERFACES, ...config.interfacePrefixes.map((p) => `${p}.*`)]);
      const userSkip = method.kind === "skip-interface" ? whole(method.patterns) : [];
      let chosen: Choice | undefined;
      for (const iface of ifaces) {
        if (chosen !== undefined) {
          candidate(iface, false, "a previous interface was chosen", first(iface, family));
          continue;
        }
        const why = skipReason(iface, family, skip, userSkip);
        if (why !== undefined) {
          const a = usable(iface, family)[0];
          candidate(iface, false, why, a === undefined ? undefined : withPrefix(a));
          continue;
        }
        const a = usable(iface, family)[0]!;
        candidate(iface, true, "first usable interface", withPrefix(a));
        chosen = { address: withPrefix(a), iface };
      }
      if (chosen === undefined)
        throw noAddress(
          family,
          text,
          "every interface is skipped, down or without a global address (see the candidate log lines)",
        );
      return chosen;
    }
    case "interface": {
      const patterns = whole(method.patterns);
      for (const f of ifaces)
        if (!patterns.some((re) => re.test(f.name)))
          candidate(
            f,
            false,
            `name matches none of interface=${method.patterns.join(",")}`,
            first(f, family),
          );
      for (const [i, re] of patterns.entries()) {
        const matches = ifaces
          .filter((f) => re.test(f.name))
          .flatMap((f) => {
            const a = usable(f, family)[0];
            if (a === undefined)
              candidate(
                f,
                false,
                `matches interface=${method.patterns[i]} but has no global IPv${family} address`,
              );
            return a === undefined ? [] : [{ iface: f, address: a }];
          });
        if (matches.length > 1) {
          for (const m of matches)
            candidate(m.iface, false, "ambiguous: several interfaces match", withPrefix(m.address));
          throw ambiguous(family, text, matches);
        }
        const m = matches[0];
        if (m !== undefined) {
          candidate(m.iface, true, `matches interface=${method.patterns[i]}`, withPrefix(m.address));
          return { address: withPrefix(m.address), iface: m.iface };
        }
      }
      throw noAddress(
        family,
        text,
        `no interface matching ${method.patterns.join(" or ")} holds a global IPv${family} address`,
      );
    }
    case "cidr": {
      const nets = method.cidrs.map((c) => tryParseCidr(c)!);
      for (const f of ifaces)
        if (!usable(f, family).some((a) => nets.some((n) => inside(n, a))))
          candidate(
            f,
            false,
            `no global IPv${family} address inside ${method.cidrs.join(",")}`,
            first(f, family),
          );
      for (const c of method.cidrs) {
        const net = tryParseCidr(c)!;
        const matches = ifaces.flatMap((f) => {
          const a = usable(f, family).find((x) => inside(net, x));
          return a === undefined ? [] : [{ iface: f, address: a }];
        });
        if (matches.length > 1) {
          for (const m of matches)
            candidate(
              m.iface,
              false,
              `ambiguous: several interfaces hold an address in ${c}`,
              withPrefix(m.address),
            );
          throw ambiguous(family, text, matches);
        }
        const m = matches[0];
        if (m !== undefined) {
          candidate(m.iface, true, `address inside ${c}`, withPrefix(m.address));
          return { address: withPrefix(m.address), iface: m.iface };
        }
      }
      throw noAddress(
        family,
        text,
        `no interface holds a global IPv${family} address inside ${method.cidrs.join(" or ")}`,
      );
    }
    case "can-reach": {
      let dest = method.destination;
      if (tryParseIp(dest) === undefined) {
        try {
          dest = await (options.lookup ?? defaultLookup)(dest, family);
        } catch (e) {
          throw noAddress(family, text, `cannot resolve ${method.destination}: ${(e as Error).message}`);
        }
      }
      const argv = ipArgv(options.netns, ["route", "get", dest]);
      let routes: { dev?: unknown; prefsrc?: unknown }[];
      try {
        const r = await options.runner.run(argv, { signal: options.signal });
        routes = JSON.parse(r.stdout) as typeof routes;
      } catch (e) {
        throw noAddress(
          family,
          text,
          `the kernel has no route to ${dest} (${argv.join(" ")}: ${(e as Error).message.trim()})`,
        );
      }
      const route = Array.isArray(routes) ? routes[0] : undefined;
      const iface = ifaces.find((f) => f.name === route?.dev);
      if (route === undefined || iface === undefined)
        throw noAddress(family, text, `ip route get ${dest} names no known interface`);
      const src = typeof route.prefsrc === "string" ? tryParseIp(route.prefsrc)?.text : undefined;
      // The source address may live on another interface than the one the route leaves by (an address
      // held by a dummy or loopback device): report the interface that holds it.
      const holder =
        src === undefined
          ? iface
          : (ifaces.find((f) => f.addresses.some((x) => x.family === family && x.address === src)) ?? iface);
      const a =
        src === undefined
          ? usable(iface, family)[0]
          : holder.addresses.find((x) => x.family === family && x.address === src);
      if (a === undefined)
        throw noAddress(
          family,
          text,
          `the route to ${dest} leaves by ${iface.name}, which holds no IPv${family} address`,
        );
      candidate(holder, true, `source of the route to ${dest} (via ${iface.name})`, withPrefix(a));
      return { address: withPrefix(a), iface: holder };
    }
  }
}

async function defaultLookup(host: string, family: 4 | 6): Promise<string> {
  return (await dnsLookup(host, { family })).address;
}

/** An explicit `IP` / `IP6`: found on an interface (its prefix fills a bare address), else a warning. */
function explicit(family: 4 | 6, given: string, ifaces: readonly HostInterface[], log: Logger): Choice {
  const [addr, len] = given.split("/");
  const ip = tryParseIp(addr!)!;
  for (const iface of ifaces) {
    const a = iface.addresses.find((x) => x.family === family && x.address === ip.text);
    if (a === undefined) continue;
    const address = len === undefined ? withPrefix(a) : `${ip.text}/${len}`;
    if (len !== undefined && Number(len) !== a.prefixLength)
      log.warn(
        { family, address: given, interface: iface.name, interfacePrefixLength: a.prefixLength },
        "configured address prefix differs from the interface's",
      );
    log.info(
      { family, address, interface: iface.name, chosen: true, reason: "configured" },
      "address candidate",
    );
    return { address, iface };
  }
  const address = len === undefined ? `${ip.text}/${family === 4 ? 32 : 128}` : given;
  log.warn(
    { family, address, reason: "no interface holds this address" },
    "configured address not found on any interface",
  );
  return { address, iface: undefined };
}

/**
 * Chooses this node's underlay addresses from `config.ipv4` / `config.ipv6` (explicit, autodetected or
 * none) and reports the interface holding the IPv4 (else IPv6) address with its MTU.
 *
 * @throws {@link AgentConfigError} `no-address`, `ambiguous-address` or `host-query-failed`.
 */
export async function autodetectAddresses(
  config: AgentConfig,
  options: AutodetectOptions,
): Promise<NodeAddresses> {
  // The caller names the component (the agent hands `logger.child({ component: "autodetect" })`).
  const log = options.logger ?? silentLogger;
  const ifaces = await readHostInterfaces(options);
  const one = async (family: 4 | 6, c: AddressConfig): Promise<Choice | undefined> => {
    if (c.mode === "none") return undefined;
    if (c.mode === "autodetect") return detect(family, c.method, ifaces, config, options, log);
    return explicit(family, c.mode.address, ifaces, log);
  };
  const v4 = await one(4, config.ipv4);
  const v6 = await one(6, config.ipv6);
  const iface = v4?.iface ?? v6?.iface;
  const out: NodeAddresses = {
    ipv4: v4?.address,
    ipv6: v6?.address,
    interface: iface?.name,
    interfaceMtu: iface?.mtu,
  };
  log.info({ ...out }, "node addresses chosen");
  return out;
}
