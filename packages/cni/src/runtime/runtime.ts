/**
 * The runtime side of CNI, like libcni: executes a configuration list as a chain for ADD, CHECK and DEL
 * (DEL in reverse), STATUS and GC for 1.1.0, with a result cache so DEL and CHECK receive the ADD result.
 *
 * @packageDocumentation
 */

import { formatCniArgs } from "../spec/cni-args.js";
import { validateNetConfList } from "../spec/config.js";
import { validateContainerId, validateInterfaceName } from "../spec/names.js";
import { convertResult, parseResult } from "../spec/result.js";
import type { CniResult, NetConf, NetConfList, PluginConf, ValidAttachment } from "../spec/types.js";
import { VALID_ATTACHMENTS_KEY } from "../spec/types.js";
import {
  negotiateListVersion,
  SUPPORTED_CNI_VERSIONS,
  type VersionInfo,
  versionAtLeast,
} from "../spec/version.js";
import { CniExecError, CniExecErrorCode } from "./exec-error.js";
import { type ExecOptions, type ExecParams, execPlugin, findPlugin, parseJsonOutput } from "./exec-plugin.js";
import { type CachedAttachment, createResultCache, type ResultCache } from "./result-cache.js";
import { type Logger, silentLogger } from "./logger.js";

/** Per-attachment parameters of ADD / CHECK / DEL (libcni's `RuntimeConf`). */
export interface RuntimeConf {
  /** `CNI_CONTAINERID`. */
  containerId: string;
  /** `CNI_NETNS`; may be empty for DEL when the namespace is gone. */
  netns: string;
  /** `CNI_IFNAME`. */
  ifname: string;
  /** `CNI_ARGS` pairs (e.g. the Kubernetes keys). */
  args?: Readonly<Record<string, string>> | undefined;
  /** Values for capabilities (e.g. `portMappings`), passed in `runtimeConfig` to plugins that declare them. */
  capabilityArgs?: Readonly<Record<string, unknown>> | undefined;
}

/** Options of {@link createCniRuntime}. */
export interface CniRuntimeOptions {
  /** Directories searched for plugins (`CNI_PATH`). Required. */
  path: readonly string[];
  /** Cache directory (results under `<dir>/results`). Default: `/var/lib/cni`. */
  cacheDir?: string | undefined;
  /** Per-exec timeout. Default: 60 000 ms. */
  timeoutMs?: number | undefined;
  /** Base environment for plugins. Default: a standard `PATH` only. */
  env?: Readonly<Record<string, string>> | undefined;
  /** Versions this runtime speaks. Default: {@link SUPPORTED_CNI_VERSIONS}. */
  supportedVersions?: readonly string[] | undefined;
  /** Command prefix plugins run under (see {@link ExecOptions.launcher}). Default: none. */
  launcher?: readonly string[] | undefined;
  /**
   * Structured logger (pino-compatible); records carry `component: "cni-runtime"`. Each plugin run
   * (`debug`, with what the plugin wrote to stderr), each failed plugin (`warn`), an unreadable cached
   * result on DEL and each stale attachment GC could not delete (`warn`) are logged. Default: silent.
   */
  logger?: Logger | undefined;
}

/** Per-call options. */
export interface CallOptions {
  /** Kills running plugins and rejects when aborted. */
  signal?: AbortSignal | undefined;
}

/** Options of {@link CniRuntime.gcNetworkList}. */
export interface GcNetworkListOptions extends CallOptions {
  /** Attachments still in use; every other cached attachment of the network is deleted. */
  validAttachments: readonly ValidAttachment[];
}

/**
 * @deprecated Use {@link GcNetworkListOptions}; `GcOptions` is also `@margay/ipam`'s name for the options
 * of an IPAM garbage collection, a different thing. Removed in the next minor release.
 */
export type GcOptions = GcNetworkListOptions;

/** What a container runtime does with CNI. */
export interface CniRuntime {
  /** The result cache in use. */
  readonly cache: ResultCache;
  /** ADD through the chain; caches and returns the final result (in 1.x shape, `cniVersion` as negotiated). */
  addNetworkList(list: NetConfList, rt: RuntimeConf, options?: CallOptions): Promise<CniResult>;
  /** CHECK through the chain with the cached result (skipped when `disableCheck`; needs ≥ 0.4.0). */
  checkNetworkList(list: NetConfList, rt: RuntimeConf, options?: CallOptions): Promise<void>;
  /** DEL through the chain in reverse, with the cached result when there is one; then forgets it. */
  delNetworkList(list: NetConfList, rt: RuntimeConf, options?: CallOptions): Promise<void>;
  /** STATUS of every plugin (1.1.0 lists only; older lists resolve without calling plugins). */
  statusNetworkList(list: NetConfList, options?: CallOptions): Promise<void>;
  /**
   * GC: DELs every cached attachment of the network not in `validAttachments`, then (1.1.0) sends GC
   * with `cni.dev/valid-attachments` to each plugin. Does nothing at all when the list sets
   * `disableGC`. Resolves with the errors of the stale DELs, which do not stop the collection.
   */
  gcNetworkList(list: NetConfList, options: GcNetworkListOptions): Promise<unknown[]>;
  /** The cached ADD result of an attachment, or undefined. */
  getCachedResult(
    networkName: string,
    rt: Pick<RuntimeConf, "containerId" | "ifname">,
  ): Promise<CniResult | undefined>;
  /** VERSION of a plugin. */
  versionInfo(pluginType: string, options?: CallOptions): Promise<VersionInfo>;
  /** The version this runtime will use for a list (1.1.0 `cniVersions` negotiation). */
  negotiatedVersion(list: NetConfList): string;
}

/**
 * Builds the configuration one plugin of a list receives: the list's `name` and `cniVersion`,
 * `runtimeConfig` with the capability values the plugin declares, and `prevResult` when given.
 */
export function pluginConfigFor(
  list: NetConfList,
  plugin: PluginConf,
  cniVersion: string,
  capabilityArgs: Readonly<Record<string, unknown>> | undefined,
  prevResult: Record<string, unknown> | undefined,
): NetConf {
  const conf: NetConf = { ...plugin, cniVersion, name: list.name } as NetConf;
  if (plugin.capabilities !== undefined && capabilityArgs !== undefined) {
    const rc: Record<string, unknown> = {};
    for (const [cap, enabled] of Object.entries(plugin.capabilities)) {
      if (enabled && capabilityArgs[cap] !== undefined) rc[cap] = capabilityArgs[cap];
    }
    if (Object.keys(rc).length > 0) conf.runtimeConfig = rc;
  }
  if (prevResult !== undefined) conf.prevResult = prevResult;
  return conf;
}

/** Creates a runtime over plugins found on `options.path`. */
export function createCniRuntime(options: CniRuntimeOptions): CniRuntime {
  const cache = createResultCache({ dir: options.cacheDir });
  const supported = options.supportedVersions ?? SUPPORTED_CNI_VERSIONS;
  const execOpts = (signal: AbortSignal | undefined): ExecOptions => ({
    timeoutMs: options.timeoutMs,
    env: options.env,
    launcher: options.launcher,
    signal,
  });

  const params = (command: string, rt: RuntimeConf | undefined): ExecParams => {
    const p: ExecParams = { command, path: options.path };
    if (rt !== undefined) {
      p.containerId = rt.containerId;
      p.ifname = rt.ifname;
      if (rt.netns !== "") p.netns = rt.netns;
      if (rt.args !== undefined && Object.keys(rt.args).length > 0) p.args = formatCniArgs(rt.args);
    }
    return p;
  };

  const log = (options.logger ?? silentLogger).child({ component: "cni-runtime" });

  const run = async (plugin: PluginConf, p: ExecParams, conf: NetConf, signal: AbortSignal | undefined) => {
    const at = { plugin: plugin.type, command: p.command, containerId: p.containerId, ifname: p.ifname };
    try {
      const bin = await findPlugin(plugin.type, options.path);
      const out = await execPlugin(bin, p, JSON.stringify(conf), execOpts(signal));
      log.debug(out.stderr === "" ? at : { ...at, stderr: out.stderr }, "cni plugin ran");
      return out;
    } catch (e) {
      const { code, message } = e as { code?: unknown; message?: unknown };
      log.warn({ ...at, code, error: message }, "cni plugin failed");
      throw e;
    }
  };

  const checkRt = (rt: RuntimeConf) => {
    validateContainerId(rt.containerId);
    validateInterfaceName(rt.ifname);
  };

  const runtime: CniRuntime = {
    cache,
    negotiatedVersion: (list) => negotiateListVersion(list, supported),

    async addNetworkList(list, rt, o = {}) {
      validateNetConfList(list);
      checkRt(rt);
      const version = runtime.negotiatedVersion(list);
      let prev: Record<string, unknown> | undefined;
      for (const plugin of list.plugins) {
        const conf = pluginConfigFor(list, plugin, version, rt.capabilityArgs, prev);
        const out = await run(plugin, params("ADD", rt), conf, o.signal);
        const raw = parseJsonOutput(out, { plugin: plugin.type, command: "ADD" });
        parseResult(raw, `$(${plugin.type} result)`);
        prev = raw;
      }
      const raw = prev ?? { cniVersion: version };
      const entry: CachedAttachment = {
        kind: "cniCacheV1",
        networkName: list.name,
        containerId: rt.containerId,
        ifname: rt.ifname,
        cniArgs: rt.args === undefined ? undefined : { ...rt.args },
        capabilityArgs: rt.capabilityArgs === undefined ? undefined : { ...rt.capabilityArgs },
        config: list,
        result: raw,
        netns: rt.netns,
      };
      await cache.put(entry);
      return parseResult(raw);
    },

    async checkNetworkList(list, rt, o = {}) {
      validateNetConfList(list);
      checkRt(rt);
      const version = runtime.negotiatedVersion(list);
      if (!versionAtLeast(version, "0.4.0")) {
        throw new CniExecError(
          CniExecErrorCode.InvalidRequest,
          `CHECK is not supported by version ${version}`,
        );
      }
      if (list.disableCheck === true) return;
      const cached = await cache.get({
        networkName: list.name,
        containerId: rt.containerId,
        ifname: rt.ifname,
      });
      if (cached === undefined) {
        throw new CniExecError(
          CniExecErrorCode.InvalidRequest,
          "no cached result for this attachment; cannot CHECK",
          {
            containerId: rt.containerId,
            ifname: rt.ifname,
          },
        );
      }
      const prev = convertResult(parseResult(cached.result), version) as unknown as Record<string, unknown>;
      for (const plugin of list.plugins) {
        await run(
          plugin,
          params("CHECK", rt),
          pluginConfigFor(list, plugin, version, rt.capabilityArgs, prev),
          o.signal,
        );
      }
    },

    async delNetworkList(list, rt, o = {}) {
      validateNetConfList(list);
      checkRt(rt);
      const version = runtime.negotiatedVersion(list);
      const key = { networkName: list.name, containerId: rt.containerId, ifname: rt.ifname };
      const cached = await cache.get(key);
      let prev: Record<string, unknown> | undefined;
      if (cached !== undefined && versionAtLeast(version, "0.4.0")) {
        try {
          prev = convertResult(parseResult(cached.result), version) as unknown as Record<string, unknown>;
        } catch (e) {
          prev = undefined; // a stale or foreign cache entry must not block DEL
          log.warn({ ...key, error: (e as Error).message }, "cni cached result unreadable; DEL without it");
        }
      }
      for (const plugin of [...list.plugins].reverse()) {
        await run(
          plugin,
          params("DEL", rt),
          pluginConfigFor(list, plugin, version, rt.capabilityArgs, prev),
          o.signal,
        );
      }
      await cache.delete(key);
    },

    async statusNetworkList(list, o = {}) {
      validateNetConfList(list);
      const version = runtime.negotiatedVersion(list);
      if (!versionAtLeast(version, "1.1.0")) return;
      for (const plugin of list.plugins) {
        await run(
          plugin,
          params("STATUS", undefined),
          pluginConfigFor(list, plugin, version, undefined, undefined),
          o.signal,
        );
      }
    },

    async gcNetworkList(list, o) {
      validateNetConfList(list);
      // As libcni: `disableGC` turns off the whole collection, the stale DELs included (the spec's
      // reason for it is configuration shared by several runtimes, whose attachments look stale here).
      if (list.disableGC === true) return [];
      const version = runtime.negotiatedVersion(list);
      const valid = new Set(o.validAttachments.map((a) => `${a.containerID}\0${a.ifname}`));
      const errors: unknown[] = [];
      for (const entry of await cache.list(list.name)) {
        if (valid.has(`${entry.containerId}\0${entry.ifname}`)) continue;
        try {
          const rt: RuntimeConf = {
            containerId: entry.containerId,
            ifname: entry.ifname,
            netns: "",
            args: entry.cniArgs,
            capabilityArgs: entry.capabilityArgs,
          };
          await runtime.delNetworkList(list, rt, o);
        } catch (e) {
          log.warn(
            {
              network: list.name,
              containerId: entry.containerId,
              ifname: entry.ifname,
              error: (e as Error).message,
            },
            "cni gc could not delete a stale attachment",
          );
          errors.push(e);
        }
      }
      if (!versionAtLeast(version, "1.1.0")) return errors;
      for (const plugin of list.plugins) {
        const conf = pluginConfigFor(list, plugin, version, undefined, undefined);
        conf[VALID_ATTACHMENTS_KEY] = o.validAttachments.map((a) => ({
          containerID: a.containerID,
          ifname: a.ifname,
        }));
        await run(plugin, params("GC", undefined), conf, o.signal);
      }
      return errors;
    },

    async getCachedResult(networkName, rt) {
      const e = await cache.get({ networkName, containerId: rt.containerId, ifname: rt.ifname });
      return e === undefined ? undefined : parseResult(e.result);
    },

    async versionInfo(pluginType, o = {}) {
      const bin = await findPlugin(pluginType, options.path);
      const out = await execPlugin(
        bin,
        { command: "VERSION", path: options.path },
        JSON.stringify({ cniVersion: "1.1.0" }),
        execOpts(o.signal),
      );
      const v = parseJsonOutput(out, { plugin: pluginType, command: "VERSION" });
      if (typeof v.cniVersion !== "string" || !Array.isArray(v.supportedVersions)) {
        throw new CniExecError(
          CniExecErrorCode.InvalidOutput,
          "VERSION output lacks cniVersion/supportedVersions",
          { plugin: pluginType },
        );
      }
      return {
        cniVersion: v.cniVersion,
        supportedVersions: v.supportedVersions.filter((x): x is string => typeof x === "string"),
      };
    },
  };
  return runtime;
}
