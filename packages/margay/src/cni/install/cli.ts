/**
 * `margay-node install-cni` and `margay-node uninstall-cni`: flags → {@link installCni} /
 * {@link uninstallCni}, a report on stdout (one line per file, or JSON with `-o json`), errors on stderr
 * with their code. Exit codes: 0 done, 2 bad usage or option, 1 anything else.
 *
 * @packageDocumentation
 */
import { realpathSync } from "node:fs";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import {
  CHAINABLE_PLUGINS,
  type ChainablePlugin,
  INSTALL_CNI_DEFAULTS,
  type InstallCniReport,
  installCni,
  isInstallCniError,
  uninstallCni,
} from "./install.js";

/** Process state of {@link installCniMain}. */
export interface InstallCniIo {
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
  /** Environment: `CNI_BIN_DIR`, `CNI_NET_DIR`, `CNI_MTU` (Calico's install-cni names) are read. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Default `--source-dir`: the directory of the running bundle. */
  readonly sourceDir?: string | undefined;
}

const d = INSTALL_CNI_DEFAULTS;

const INSTALL_HELP = `Usage: margay-node install-cni [options]

Copies margay and margay-ipam into the CNI bin directory and writes ${d.confName}.
Idempotent; a configuration edited since it was written is kept unless --overwrite.

Options:
  --cni-bin-dir <dir>     CNI bin directory (env CNI_BIN_DIR; default ${d.binDir}), created if missing
  --cni-conf-dir <dir>    CNI configuration directory (env CNI_NET_DIR; default ${d.confDir})
  --conf-name <file>      configuration list file name (default ${d.confName})
  --network-name <name>   network name (default ${d.networkName})
  --mtu <n>               veth MTU written into the list (env CNI_MTU; default: the agent's)
  --chain <list>          plugins chained after margay, comma separated, of ${CHAINABLE_PLUGINS.join(", ")}
                          (default ${d.chain.join(",")}; "" for none)
  --agent-socket <path>   the agent's workload API socket (default ${d.agentSocket})
  --state-dir <dir>       the agent's state directory, for the DEL spool (default ${d.stateDir})
  --source-dir <dir>      where margay.cjs and margay-ipam.cjs are (default: next to margay-node)
  --overwrite             replace an edited or foreign configuration list
  -o, --output <fmt>      text (default) or json
  -h, --help              this help

Examples:
  margay-node install-cni
  margay-node install-cni --cni-bin-dir /usr/lib/cni --mtu 1450 --chain portmap,bandwidth,tuning
  margay-node uninstall-cni
`;

const UNINSTALL_HELP = `Usage: margay-node uninstall-cni [options]

Removes exactly what install-cni wrote (per its manifest) and nobody edited since.

Options:
  --cni-conf-dir <dir>    CNI configuration directory holding the manifest (env CNI_NET_DIR; default ${d.confDir})
  -o, --output <fmt>      text (default) or json
  -h, --help              this help
`;

function print(report: InstallCniReport, json: boolean, io: InstallCniIo) {
  if (json) io.stdout(`${JSON.stringify(report)}\n`);
  else for (const f of report.files) io.stdout(`${f.action.padEnd(12)} ${f.path}\n`);
}

function defaultSourceDir(): string {
  try {
    return dirname(realpathSync(process.argv[1] ?? "."));
  } catch {
    return process.cwd();
  }
}

/** Runs `install-cni` or `uninstall-cni` (`argv[0]`); resolves with the exit code. */
export async function installCniMain(argv: readonly string[], io: InstallCniIo): Promise<number> {
  const verb = argv[0];
  const install = verb === "install-cni";
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv.slice(1)],
      strict: true,
      allowPositionals: false,
      options: install
        ? {
            "cni-bin-dir": { type: "string" },
            "cni-conf-dir": { type: "string" },
            "conf-name": { type: "string" },
            "network-name": { type: "string" },
            mtu: { type: "string" },
            chain: { type: "string" },
            "agent-socket": { type: "string" },
            "state-dir": { type: "string" },
            "source-dir": { type: "string" },
            overwrite: { type: "boolean" },
            output: { type: "string", short: "o" },
            help: { type: "boolean", short: "h" },
          }
        : {
            "cni-conf-dir": { type: "string" },
            output: { type: "string", short: "o" },
            help: { type: "boolean", short: "h" },
          },
    }));
  } catch (e) {
    io.stderr(`margay-node ${verb}: ${(e as Error).message}\n${install ? INSTALL_HELP : UNINSTALL_HELP}`);
    return 2;
  }
  if (values.help === true) {
    io.stdout(install ? INSTALL_HELP : UNINSTALL_HELP);
    return 0;
  }
  const output = (values.output as string | undefined) ?? "text";
  if (output !== "text" && output !== "json") {
    io.stderr(`margay-node ${verb}: --output must be text or json, got ${JSON.stringify(output)}\n`);
    return 2;
  }
  const str = (k: string) => values[k] as string | undefined;
  const confDir = str("cni-conf-dir") ?? io.env.CNI_NET_DIR;
  try {
    if (!install) {
      print(await uninstallCni({ confDir }), output === "json", io);
      return 0;
    }
    const mtuText = str("mtu") ?? io.env.CNI_MTU;
    const mtu = mtuText === undefined || mtuText === "" ? undefined : Number(mtuText);
    const chainText = str("chain");
    const chain =
      chainText === undefined
        ? undefined
        : (chainText
            .split(",")
            .map((s) => s.trim())
            .filter((s) => s !== "") as ChainablePlugin[]);
    const report = await installCni({
      sourceDir: str("source-dir") ?? io.sourceDir ?? defaultSourceDir(),
      binDir: str("cni-bin-dir") ?? io.env.CNI_BIN_DIR,
      confDir,
      confName: str("conf-name"),
      networkName: str("network-name"),
      mtu,
      chain,
      agentSocket: str("agent-socket"),
      stateDir: str("state-dir"),
      overwrite: values.overwrite === true,
    });
    print(report, output === "json", io);
    return 0;
  } catch (e) {
    if (isInstallCniError(e)) {
      io.stderr(`margay-node ${verb}: ${e.code}: ${e.message}\n`);
      return e.code === "invalid-option" ? 2 : 1;
    }
    io.stderr(`margay-node ${verb}: internal: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}
