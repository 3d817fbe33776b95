/**
 * `host-local` IPAM delegation, as Calico's plugin allows it: `"ipam": {"type": "host-local", "subnet":
 * "usePodCidr"}` (or `ranges` whose subnets may be `usePodCidr` / `usePodCidrIPv6`, or explicit ranges).
 * The plugin substitutes the node's pod CIDRs (which the agent reports in its status: the Node's
 * `margay.io/pod-cidrs` annotation, written from Kubernetes' `podCIDRs`), runs the `host-local` binary found
 * on `CNI_PATH` (an argument array through `@margay/cni`'s exec, never a shell) with the runtime's
 * parameters, and hands its addresses to the agent as `externalIps`: the agent plumbs and writes the
 * endpoint, and its own IPAM takes no part.
 *
 * Versions: Debian's host-local (1.1.1) speaks up to 1.0.0, so a 1.1.0 configuration is delegated at the
 * highest version host-local names in its VERSION answer (1.0.0 results have the 1.1.0 shape). GC: a
 * host-local that speaks 1.1.0 gets the GC itself; an older one has no GC, so the plugin lists its
 * reservations (`<dataDir>/<network>/<ip>`, holding `<containerId>\r\n<ifname>`) and DELs, through
 * host-local, every one whose attachment is not valid and that is older than the agent's GC grace.
 *
 * Its builtins (`child_process`, `fs/promises`) are loaded on first use by the bundle (build-bundle.ts).
 *
 * @packageDocumentation
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import {
  type CmdArgs,
  CniError,
  CniErrorCode,
  type CniResult,
  type ExecParams,
  VALID_ATTACHMENTS_KEY,
  compareVersions,
  execPlugin,
  findPlugin,
  ipFamily,
  isCniError,
  isCniExecError,
  parseJsonOutput,
  parseResult,
} from "@margay/cni";

/** The IPAM type this module handles. */
export const HOST_LOCAL = "host-local";
/** Calico's placeholders for the node's pod CIDR, per family. */
export const USE_POD_CIDR = "usePodCidr";
export const USE_POD_CIDR_IPV6 = "usePodCidrIPv6";
/** host-local's default state directory. */
export const HOST_LOCAL_DEFAULT_DATA_DIR = "/var/lib/cni/networks";

/**
 * Stand-ins for a pod CIDR nobody can tell (the agent is down at DEL): host-local validates the ranges of
 * every verb but releases by attachment, never by range, so any well-formed subnet of the family will do.
 */
const STAND_IN: Readonly<Record<4 | 6, string>> = { 4: "169.254.0.0/16", 6: "fe80::/64" };

/** Which families a host-local section asks the node's pod CIDR for. */
export function podCidrFamilies(ipam: Readonly<Record<string, unknown>>): Set<4 | 6> {
  const out = new Set<4 | 6>();
  const see = (v: unknown) => {
    if (v === USE_POD_CIDR) out.add(4);
    if (v === USE_POD_CIDR_IPV6) out.add(6);
  };
  see(ipam.subnet);
  if (Array.isArray(ipam.ranges))
    for (const set of ipam.ranges)
      if (Array.isArray(set))
        for (const r of set) if (typeof r === "object" && r !== null) see((r as { subnet?: unknown }).subnet);
  return out;
}

/**
 * The host-local section with `usePodCidr` / `usePodCidrIPv6` replaced by the node's pod CIDR of that
 * family. Without one: code 11 (try again later: Kubernetes assigns pod CIDRs after the node registers),
 * unless `standIn` (DEL) allows a stand-in.
 */
export function substitutePodCidrs(
  ipam: Readonly<Record<string, unknown>>,
  podCidrs: readonly string[],
  standIn = false,
): Record<string, unknown> {
  const of = (family: 4 | 6): string => {
    const found = podCidrs.find((c) => ipFamily(c.slice(0, c.indexOf("/"))) === family);
    if (found !== undefined) return found;
    if (standIn) return STAND_IN[family];
    throw new CniError(
      CniErrorCode.TryAgainLater,
      `$.ipam: ${family === 4 ? USE_POD_CIDR : USE_POD_CIDR_IPV6}: this node has no IPv${family} pod CIDR (yet)`,
      {
        details: `the agent reports pod CIDRs [${podCidrs.join(", ")}] (Node annotation margay.io/pod-cidrs, from Kubernetes' spec.podCIDRs)`,
      },
    );
  };
  const sub = (v: unknown) => (v === USE_POD_CIDR ? of(4) : v === USE_POD_CIDR_IPV6 ? of(6) : v);
  const out: Record<string, unknown> = { ...ipam };
  if (ipam.subnet !== undefined) out.subnet = sub(ipam.subnet);
  if (Array.isArray(ipam.ranges))
    out.ranges = ipam.ranges.map((set) =>
      Array.isArray(set)
        ? set.map((r) =>
            typeof r === "object" && r !== null
              ? { ...(r as Record<string, unknown>), subnet: sub((r as { subnet?: unknown }).subnet) }
              : r,
          )
        : set,
    );
  return out;
}

/** What the plugin needs of the agent for delegation (its status). */
export interface NodeIpamFacts {
  readonly podCidrs: readonly string[];
  readonly gcGracePeriodMs: number;
}

/** A delegate's failure as the plugin's CNI error (host-local's own code and message kept). */
function delegateError(e: unknown, verb: string): CniError {
  if (isCniError(e))
    return new CniError(e.cniCode, `host-local ${verb}: ${e.message}`, {
      ...(e.details === undefined ? {} : { details: e.details }),
    });
  if (isCniExecError(e)) {
    const code = e.code === "plugin-not-found" ? CniErrorCode.InvalidNetworkConfig : CniErrorCode.Internal;
    return new CniError(code, `host-local ${verb}: ${e.message}`, {
      details: e.code === "plugin-not-found" ? "install it in a CNI_PATH directory" : e.code,
    });
  }
  return new CniError(CniErrorCode.Internal, `host-local ${verb}: ${(e as Error).message ?? String(e)}`);
}

/** A host-local delegate for one invocation. */
export interface HostLocalDelegate {
  add(args: CmdArgs, facts: NodeIpamFacts): Promise<CniResult>;
  del(args: CmdArgs, facts: NodeIpamFacts | undefined): Promise<void>;
  check(args: CmdArgs, facts: NodeIpamFacts): Promise<void>;
  /** Releases host-local reservations of attachments not in `valid`; returns the released addresses. */
  gc(
    gcArgs: { config: Record<string, unknown>; path: readonly string[]; signal: AbortSignal },
    valid: readonly { containerID: string; ifname: string }[],
    facts: NodeIpamFacts,
  ): Promise<string[]>;
}

/** Options of {@link createHostLocalDelegate}. */
export interface HostLocalDelegateOptions {
  /** Base environment of host-local (its `PATH`). Default: `@margay/cni`'s. */
  readonly env?: Readonly<Record<string, string>> | undefined;
  readonly timeoutMs?: number | undefined;
  readonly now?: (() => number) | undefined;
}

/** The delegate. `ipam` is the validated host-local section of the plugin configuration. */
export function createHostLocalDelegate(
  ipam: Readonly<Record<string, unknown>>,
  options: HostLocalDelegateOptions = {},
): HostLocalDelegate {
  const now = options.now ?? Date.now;
  const execOptions = (signal: AbortSignal) => ({
    signal,
    timeoutMs: options.timeoutMs ?? 30_000,
    ...(options.env === undefined ? {} : { env: options.env }),
  });

  async function versionsOf(bin: string, path: readonly string[], signal: AbortSignal): Promise<string[]> {
    const out = await execPlugin(
      bin,
      { command: "VERSION", path },
      JSON.stringify({ cniVersion: "0.3.1" }),
      execOptions(signal),
    );
    const v = parseJsonOutput(out, { plugin: HOST_LOCAL, command: "VERSION" }).supportedVersions;
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
  }

  /**
   * Runs host-local with the invocation's stdin, the pod CIDRs substituted, at the configuration's
   * version, or (when host-local refuses it with code 1) at the highest version it names below it.
   */
  async function run(
    params: ExecParams,
    base: Record<string, unknown>,
    facts: NodeIpamFacts | undefined,
    signal: AbortSignal,
  ): Promise<Record<string, unknown> | undefined> {
    const conf = { ...base, ipam: substitutePodCidrs(ipam, facts?.podCidrs ?? [], params.command === "DEL") };
    const bin = await findPlugin(HOST_LOCAL, params.path);
    const exec = async (cniVersion: unknown) => {
      const out = await execPlugin(bin, params, JSON.stringify({ ...conf, cniVersion }), execOptions(signal));
      return out.stdout.trim() === ""
        ? undefined
        : parseJsonOutput(out, { plugin: HOST_LOCAL, command: params.command });
    };
    try {
      return await exec(base.cniVersion);
    } catch (e) {
      if (!(isCniError(e) && e.cniCode === CniErrorCode.IncompatibleVersion)) throw e;
      const want = String(base.cniVersion);
      const lower = (await versionsOf(bin, params.path, signal))
        .filter((v) => compareVersions(v, want) < 0)
        .sort(compareVersions)
        .pop();
      if (lower === undefined) throw e;
      return exec(lower);
    }
  }

  const paramsOf = (args: CmdArgs, command: "ADD" | "DEL" | "CHECK"): ExecParams => ({
    command,
    containerId: args.containerId,
    ifname: args.ifname,
    path: args.path,
    ...(args.netns === "" ? {} : { netns: args.netns }),
    ...(args.args === "" ? {} : { args: args.args }),
  });
  const stdinOf = (args: CmdArgs) => JSON.parse(args.stdin.toString("utf8")) as Record<string, unknown>;

  return {
    async add(args, facts) {
      try {
        const raw = await run(paramsOf(args, "ADD"), stdinOf(args), facts, args.signal);
        return parseResult(raw, "$(host-local result)");
      } catch (e) {
        throw delegateError(e, "ADD");
      }
    },

    async del(args, facts) {
      try {
        await run(paramsOf(args, "DEL"), stdinOf(args), facts, args.signal);
      } catch (e) {
        throw delegateError(e, "DEL");
      }
    },

    async check(args, facts) {
      try {
        await run(paramsOf(args, "CHECK"), stdinOf(args), facts, args.signal);
      } catch (e) {
        throw delegateError(e, "CHECK");
      }
    },

    async gc(gcArgs, valid, facts) {
      const { config, path, signal } = gcArgs;
      try {
        const bin = await findPlugin(HOST_LOCAL, path);
        const versions = await versionsOf(bin, path, signal);
        if (versions.includes("1.1.0")) {
          const conf = {
            ...config,
            cniVersion: "1.1.0",
            ipam: substitutePodCidrs(ipam, facts.podCidrs, true),
          };
          await execPlugin(bin, { command: "GC", path }, JSON.stringify(conf), execOptions(signal));
          return [];
        }
        // No GC in this host-local: list its reservations and DEL the stale ones through it, at the
        // highest version it speaks.
        const delVersion = versions.sort(compareVersions).pop() ?? "0.3.1";
        const dataDir = typeof ipam.dataDir === "string" ? ipam.dataDir : HOST_LOCAL_DEFAULT_DATA_DIR;
        const dir = join(dataDir, String(config.name));
        let names: string[];
        try {
          names = await readdir(dir);
        } catch (e) {
          if ((e as { code?: unknown }).code === "ENOENT") return [];
          throw e;
        }
        const live = new Set(valid.map((a) => `${a.containerID}\n${a.ifname}`));
        const released: string[] = [];
        for (const name of names) {
          if (ipFamily(name) === 0) continue; // lock, last_reserved_ip.N
          const file = join(dir, name);
          let text: string;
          let mtimeMs: number;
          try {
            [text, mtimeMs] = await Promise.all([readFile(file, "utf8"), stat(file).then((s) => s.mtimeMs)]);
          } catch {
            continue; // released meanwhile
          }
          const [containerId, ifname] = text.split(/\r?\n/).map((s) => s.trim());
          if (!containerId || !ifname || live.has(`${containerId}\n${ifname}`)) continue;
          if (now() - mtimeMs < facts.gcGracePeriodMs) continue; // an ADD may be in flight
          const { [VALID_ATTACHMENTS_KEY]: _valid, ...rest } = config;
          const conf = {
            ...rest,
            cniVersion: delVersion,
            ipam: substitutePodCidrs(ipam, facts.podCidrs, true),
          };
          await execPlugin(
            bin,
            { command: "DEL", containerId, ifname, path },
            JSON.stringify(conf),
            execOptions(signal),
          );
          released.push(name);
        }
        return released;
      } catch (e) {
        throw delegateError(e, "GC");
      }
    },
  };
}
