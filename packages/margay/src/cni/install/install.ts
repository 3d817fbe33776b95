/**
 * install-cni / uninstall-cni (Calico's install-cni container, as a command): copies the `margay` and
 * `margay-ipam` executables into the CNI bin directory and writes the network configuration list
 * `10-margay.conflist` into the CNI configuration directory.
 *
 * - Idempotent: a file already as wanted is not rewritten; a second run reports `unchanged`.
 * - A configuration someone edited (or wrote) is kept unless `overwrite`: the manifest records the hash
 *   of what install wrote, so "ours and untouched" is told apart from "edited".
 * - `uninstall` removes exactly what install wrote and nobody changed since (and the V8 code caches the
 *   installed plugins write next to themselves), then the manifest; anything edited stays, reported.
 *
 * The manifest is `<confDir>/.margay-install.manifest` (JSON; the extension is not one a runtime loads
 * as a network configuration).
 *
 * @packageDocumentation
 */
import { createHash } from "node:crypto";
import { chmod, mkdir, readdir, readFile, rename, rm, unlink, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";

/** Defaults of {@link installCni}. */
export const INSTALL_CNI_DEFAULTS = Object.freeze({
  binDir: "/opt/cni/bin",
  confDir: "/etc/cni/net.d",
  confName: "10-margay.conflist",
  networkName: "margay",
  cniVersion: "1.0.0",
  chain: Object.freeze(["portmap", "bandwidth"] as const),
  agentSocket: "/var/run/margay/agent.sock",
  stateDir: "/var/lib/margay",
});

/** Plugins install-cni can chain after `margay` (Debian's containernetworking-plugins ship them). */
export const CHAINABLE_PLUGINS = ["portmap", "bandwidth", "tuning"] as const;
/** One of {@link CHAINABLE_PLUGINS}. */
export type ChainablePlugin = (typeof CHAINABLE_PLUGINS)[number];

/** The executables installed: file name in the source directory → name in the CNI bin directory. */
export const INSTALLED_PLUGINS: Readonly<Record<string, string>> = Object.freeze({
  "margay.cjs": "margay",
  "margay-ipam.cjs": "margay-ipam",
});

const MANIFEST = ".margay-install.manifest";

/** Options of {@link installCni}. */
export interface InstallCniOptions {
  /** Where `margay.cjs` and `margay-ipam.cjs` are (the package's `dist/bin`). */
  readonly sourceDir: string;
  /** CNI bin directory. Default `/opt/cni/bin` (created when missing). */
  readonly binDir?: string | undefined;
  /** CNI configuration directory. Default `/etc/cni/net.d` (created when missing). */
  readonly confDir?: string | undefined;
  /** File name of the list. Default `10-margay.conflist`. */
  readonly confName?: string | undefined;
  /** Network name. Default `margay`. */
  readonly networkName?: string | undefined;
  /** Veth MTU written into the list; default none (the agent's). */
  readonly mtu?: number | undefined;
  /** Plugins chained after `margay`, in order. Default `portmap`, `bandwidth`. */
  readonly chain?: readonly ChainablePlugin[] | undefined;
  /** The agent's workload API socket. Default `/var/run/margay/agent.sock`. */
  readonly agentSocket?: string | undefined;
  /** The agent's state directory (DEL spool). Default `/var/lib/margay`. */
  readonly stateDir?: string | undefined;
  /** Replace a configuration that was edited since install wrote it, or that install did not write. */
  readonly overwrite?: boolean | undefined;
}

/** What happened to one file. */
export interface InstallFileReport {
  readonly path: string;
  readonly action: "written" | "unchanged" | "kept-edited" | "removed" | "absent";
}

/** Result of {@link installCni} and {@link uninstallCni}. */
export interface InstallCniReport {
  readonly files: readonly InstallFileReport[];
  /** The manifest path. */
  readonly manifest: string;
}

/** Error codes of install-cni. */
export const InstallCniErrorCode = {
  /** A source executable is missing (build the package first). */
  SourceMissing: "source-missing",
  /** An option is invalid (`details.option`). */
  InvalidOption: "invalid-option",
  /** A file could not be read or written (`details.path`). */
  IoFailed: "io-failed",
} as const;
/** Union of {@link InstallCniErrorCode}. */
export type InstallCniErrorCode = (typeof InstallCniErrorCode)[keyof typeof InstallCniErrorCode];

/** The one error of install-cni. */
export class InstallCniError extends Error {
  readonly code: InstallCniErrorCode;
  readonly retryable = false;
  readonly details: Readonly<Record<string, unknown>>;
  constructor(
    code: InstallCniErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "InstallCniError";
    this.code = code;
    this.details = Object.freeze({ ...details });
  }
}

/** True when `e` is an {@link InstallCniError} (by name and code, so two bundled copies agree). */
export function isInstallCniError(e: unknown): e is InstallCniError {
  return (
    typeof e === "object" &&
    e !== null &&
    (e as { name?: unknown }).name === "InstallCniError" &&
    Object.values(InstallCniErrorCode).includes((e as { code?: never }).code as never)
  );
}

interface Manifest {
  readonly version: 1;
  /** Absolute path → sha256 of what install wrote. */
  readonly files: Record<string, string>;
}

const sha256 = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

async function readOrUndefined(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (e) {
    if ((e as { code?: unknown }).code === "ENOENT") return undefined;
    throw new InstallCniError(
      InstallCniErrorCode.IoFailed,
      `cannot read ${path}: ${(e as Error).message}`,
      { path },
      e,
    );
  }
}

async function readManifest(confDir: string): Promise<Manifest> {
  const text = await readOrUndefined(join(confDir, MANIFEST));
  if (text === undefined) return { version: 1, files: {} };
  try {
    const m = JSON.parse(text.toString("utf8")) as Manifest;
    if (m.version === 1 && typeof m.files === "object" && m.files !== null) return m;
  } catch {
    // fall through
  }
  throw new InstallCniError(
    InstallCniErrorCode.IoFailed,
    `${join(confDir, MANIFEST)} is not an install-cni manifest: remove it or fix it`,
    { path: join(confDir, MANIFEST) },
  );
}

/** Writes `content` atomically (temp file + rename) with `mode`. */
async function writeAtomic(path: string, content: Buffer | string, mode: number): Promise<void> {
  const tmp = join(path, "..", `.${basename(path)}.tmp-${process.pid}`);
  try {
    await writeFile(tmp, content, { mode });
    await chmod(tmp, mode);
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw new InstallCniError(
      InstallCniErrorCode.IoFailed,
      `cannot write ${path}: ${(e as Error).message}`,
      { path },
      e,
    );
  }
}

function validate(o: InstallCniOptions) {
  const bad = (option: string, why: string) =>
    new InstallCniError(InstallCniErrorCode.InvalidOption, `--${option}: ${why}`, { option });
  for (const [k, v] of [
    ["cni-bin-dir", o.binDir],
    ["cni-conf-dir", o.confDir],
    ["agent-socket", o.agentSocket],
    ["state-dir", o.stateDir],
    ["source-dir", o.sourceDir],
  ] as const) {
    if (v !== undefined && !v.startsWith("/"))
      throw bad(k, `must be an absolute path, got ${JSON.stringify(v)}`);
  }
  if (o.mtu !== undefined && (!Number.isInteger(o.mtu) || o.mtu < 576 || o.mtu > 65535))
    throw bad("mtu", `must be an integer between 576 and 65535, got ${o.mtu}`);
  if (o.networkName !== undefined && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(o.networkName))
    throw bad("network-name", `must match [a-zA-Z0-9][a-zA-Z0-9_.-]*, got ${JSON.stringify(o.networkName)}`);
  if (o.confName !== undefined && !/^[A-Za-z0-9_.-]+\.conflist$/.test(o.confName))
    throw bad("conf-name", `must be a file name ending in .conflist, got ${JSON.stringify(o.confName)}`);
  for (const p of o.chain ?? [])
    if (!(CHAINABLE_PLUGINS as readonly string[]).includes(p))
      throw bad("chain", `unknown plugin ${JSON.stringify(p)} (one of ${CHAINABLE_PLUGINS.join(", ")})`);
}

/** The configuration list install-cni writes (pure). */
export function margayConfList(
  o: Omit<InstallCniOptions, "sourceDir" | "binDir" | "confDir" | "overwrite">,
): object {
  const d = INSTALL_CNI_DEFAULTS;
  const chained: Record<ChainablePlugin, object> = {
    portmap: { type: "portmap", snat: true, capabilities: { portMappings: true } },
    bandwidth: { type: "bandwidth", capabilities: { bandwidth: true } },
    tuning: { type: "tuning" },
  };
  return {
    cniVersion: d.cniVersion,
    name: o.networkName ?? d.networkName,
    plugins: [
      {
        type: "margay",
        agent_socket: o.agentSocket ?? d.agentSocket,
        state_dir: o.stateDir ?? d.stateDir,
        ...(o.mtu === undefined ? {} : { mtu: o.mtu }),
        ipam: { type: "margay" },
        capabilities: { ips: true, mac: true },
      },
      ...(o.chain ?? d.chain).map((p) => chained[p]),
    ],
  };
}

/** Installs the plugins and the configuration list; see the module comment. */
export async function installCni(o: InstallCniOptions): Promise<InstallCniReport> {
  validate(o);
  const d = INSTALL_CNI_DEFAULTS;
  const binDir = o.binDir ?? d.binDir;
  const confDir = o.confDir ?? d.confDir;
  const sources: [string, Buffer][] = [];
  for (const [src, name] of Object.entries(INSTALLED_PLUGINS)) {
    const content = await readOrUndefined(join(o.sourceDir, src));
    if (content === undefined)
      throw new InstallCniError(
        InstallCniErrorCode.SourceMissing,
        `${join(o.sourceDir, src)} not found: build @margay/margay (npm run build) or pass --source-dir`,
        { path: join(o.sourceDir, src) },
      );
    sources.push([join(binDir, name), content]);
  }
  for (const dir of [binDir, confDir]) {
    try {
      await mkdir(dir, { recursive: true, mode: 0o755 });
    } catch (e) {
      throw new InstallCniError(
        InstallCniErrorCode.IoFailed,
        `cannot create ${dir}: ${(e as Error).message}`,
        { path: dir },
        e,
      );
    }
  }
  const manifest = await readManifest(confDir);
  const files: Record<string, string> = { ...manifest.files };
  const report: InstallFileReport[] = [];
  // Nothing is written before every input is known good (sources read, options valid).
  for (const [path, content] of sources) {
    const have = await readOrUndefined(path);
    if (have?.equals(content)) report.push({ path, action: "unchanged" });
    else {
      await writeAtomic(path, content, 0o755);
      report.push({ path, action: "written" });
    }
    files[path] = sha256(content);
  }
  const confPath = join(confDir, o.confName ?? d.confName);
  const conf = `${JSON.stringify(margayConfList(o), null, 2)}\n`;
  const have = await readOrUndefined(confPath);
  if (have !== undefined && have.toString("utf8") === conf) {
    report.push({ path: confPath, action: "unchanged" });
    files[confPath] = sha256(conf);
  } else if (have !== undefined && files[confPath] !== sha256(have) && o.overwrite !== true) {
    // Someone else's file, or ours edited since: keep it (and keep not owning it).
    report.push({ path: confPath, action: "kept-edited" });
  } else {
    await writeAtomic(confPath, conf, 0o644);
    report.push({ path: confPath, action: "written" });
    files[confPath] = sha256(conf);
  }
  const manifestPath = join(confDir, MANIFEST);
  await writeAtomic(manifestPath, `${JSON.stringify({ version: 1, files }, null, 2)}\n`, 0o600);
  return { files: report, manifest: manifestPath };
}

/** Options of {@link uninstallCni}. */
export interface UninstallCniOptions {
  /** CNI configuration directory holding the manifest. Default `/etc/cni/net.d`. */
  readonly confDir?: string | undefined;
}

/** Removes exactly what install wrote and nobody changed since; see the module comment. */
export async function uninstallCni(o: UninstallCniOptions = {}): Promise<InstallCniReport> {
  const confDir = o.confDir ?? INSTALL_CNI_DEFAULTS.confDir;
  if (!confDir.startsWith("/"))
    throw new InstallCniError(InstallCniErrorCode.InvalidOption, `--cni-conf-dir: must be an absolute path`, {
      option: "cni-conf-dir",
    });
  const manifestPath = join(confDir, MANIFEST);
  const manifest = await readManifest(confDir);
  const report: InstallFileReport[] = [];
  for (const [path, hash] of Object.entries(manifest.files)) {
    const have = await readOrUndefined(path);
    if (have === undefined) report.push({ path, action: "absent" });
    else if (sha256(have) !== hash) {
      report.push({ path, action: "kept-edited" });
    } else {
      await rm(path, { force: true });
      report.push({ path, action: "removed" });
      if (Object.values(INSTALLED_PLUGINS).includes(basename(path))) {
        // The code caches the plugin wrote next to itself (`.<name>.<build>.<node>.<arch>.v8cache`).
        const dir = join(path, "..");
        const names = await readdir(dir).catch(() => [] as string[]);
        for (const n of names)
          if (n.startsWith(`.${basename(path)}.`) && n.endsWith(".v8cache")) {
            await rm(join(dir, n), { force: true });
            report.push({ path: join(dir, n), action: "removed" });
          }
      }
    }
  }
  await rm(manifestPath, { force: true });
  return { files: report, manifest: manifestPath };
}
