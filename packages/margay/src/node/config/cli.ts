/**
 * The `margay-node` command line, built with commander from `AGENT_CONFIG_SCHEMA` (every flag with its
 * environment variable and default in `--help`). `main.ts` only calls {@link runCli} with the process;
 * tests call it with fakes.
 *
 * Verbs: `margay-node [run]` (default) runs the agent until SIGTERM / SIGINT; `margay-node config` prints
 * the resolved configuration as JSON (sensitive values redacted) with the source of every setting;
 * `margay-node version` prints the version. Exit codes: {@link EXIT_CODES}.
 *
 * @packageDocumentation
 */
import type { AgentConfiguration, Logger } from "@margay/api";
import type { Datastore } from "@margay/datastore";
import { Command, CommanderError } from "commander";
import pkg from "../../../package.json" with { type: "json" };
import { superviseDaemon } from "../../daemon/supervise.js";
import { applyAgentConfiguration } from "./agent-configuration.js";
import { type AgentConfigError, isAgentConfigError } from "./errors.js";
import {
  addSchemaOptions,
  type ConfigSources,
  type ConfigWarning,
  originOf,
  redactConfig,
  resolveBootstrapConfig,
} from "./resolve.js";
import { AGENT_CONFIG_SCHEMA, SETTING_NAMES } from "./schema.js";
import type { AgentConfig } from "./types.js";

/** The version `margay-node version` prints (the package's). */
export const MARGAY_NODE_VERSION: string = pkg.version;

/** Exit codes of `margay-node` (documented in docs/node-config.md). */
export const EXIT_CODES = Object.freeze({
  /** Stopped by SIGTERM / SIGINT after a clean shutdown, or a command that completed. */
  ok: 0,
  /** The agent failed while running, or an unexpected error. */
  failure: 1,
  /** Bad command line: unknown flag or command, missing flag value. */
  usage: 2,
  /** Bad configuration: a malformed or conflicting setting, an invalid AgentConfiguration. */
  config: 3,
  /** The agent could not start (datastore unreachable, no address found, port in use, ...). */
  startup: 4,
  /** A second SIGTERM / SIGINT during shutdown: exited at once (128 + SIGTERM). */
  forced: 143,
} as const);

/** A running agent, as `runNodeAgent` (../agent.ts) returns it. */
export interface RunningAgentHandle {
  /** Resolves once the agent is ready (first dataplane sync done); rejects if it cannot start. */
  readonly ready: Promise<void>;
  /** Stops the agent (graceful: routes and rules stay). */
  stop(signal?: string): Promise<void>;
  /** Resolves (or rejects) when the agent ended on its own, if the agent reports that. */
  readonly done?: Promise<void> | undefined;
}

/** What the CLI hands the agent besides its configuration. */
export interface CliAgentDeps {
  readonly logger: Logger;
  /** Source of every setting (for status and logs). */
  readonly sources: ConfigSources;
  /** Flags and environment variables that had no effect. */
  readonly warnings: readonly ConfigWarning[];
}

/** What {@link runCli} needs from the process. */
export interface CliIo {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** Host name (default `os.hostname()`). */
  readonly hostname?: string | undefined;
  /** Subscribes to SIGTERM / SIGINT; returns an unsubscribe function. */
  readonly onSignal: (listener: (signal: "SIGTERM" | "SIGINT") => void) => () => void;
  /** Builds the agent's logger (default pino JSON on stdout at `config.logLevel`). */
  readonly createLogger?: ((config: AgentConfig) => Logger) | undefined;
  /** Starts the agent (default `runNodeAgent` of ../agent.ts, loaded on first use). */
  readonly runAgent?: ((config: AgentConfig, deps: CliAgentDeps) => Promise<RunningAgentHandle>) | undefined;
}

const EXAMPLES = `
Examples:
  # one host, memory datastore, address autodetected
  margay-node
  # a cluster on etcd, VXLAN between hosts, address on the interface named eth1
  DATASTORE_TYPE=etcd ETCD_ENDPOINTS=https://10.0.0.1:2379 ETCD_CA_CERT_FILE=/etc/margay/ca.crt \\
    MARGAY_NETWORKING_BACKEND=vxlan IP_AUTODETECTION_METHOD=interface=eth1 margay-node
  # what would the agent run with, and where does each value come from?
  margay-node config --ip 10.0.0.5/24

Also: margay-node install-cni | uninstall-cni [--help]: install or remove the CNI plugin and its
network configuration on this host (main.ts dispatches them before this parser).

Precedence: flags > environment > AgentConfiguration node.<name> > AgentConfiguration default > built-in.
Exit codes: 0 stopped cleanly, 1 failure while running, 2 usage, 3 configuration, 4 startup failed,
143 second signal during shutdown. Reference: docs/node-config.md.
`;

function describeError(e: AgentConfigError): string {
  return `margay-node: ${e.message} (${e.code})\n`;
}

/** Loads `runNodeAgent` lazily so `--help`, `version` and `config` do not load the agent's libraries. */
async function defaultRunAgent(config: AgentConfig, deps: CliAgentDeps): Promise<RunningAgentHandle> {
  const { runNodeAgent } = await import("../agent.js");
  return runNodeAgent(config, deps);
}

async function defaultLogger(config: AgentConfig): Promise<Logger> {
  const { default: pino } = await import("pino");
  // pino.destination (sonic-boom on fd 1): no transport, no worker thread, so the bundle is one file.
  return pino(
    { level: config.logLevel, base: { node: config.nodeName }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: 1, sync: false }),
  ) as unknown as Logger;
}

/** A JSON view of the resolved configuration: redacted config, every setting's source and origin. */
export function describeConfig(
  config: AgentConfig,
  sources: ConfigSources,
  warnings: readonly ConfigWarning[],
): Record<string, unknown> {
  return {
    config: redactConfig(config),
    sources: Object.fromEntries(
      SETTING_NAMES.map((n) => [
        n,
        { source: sources[n], origin: originOf(n, sources[n]), env: AGENT_CONFIG_SCHEMA[n].env },
      ]),
    ),
    warnings,
  };
}

/** What the command line asked for. */
export interface CliPlan {
  verb?: "run" | "config" | "version";
  flags?: Record<string, unknown>;
  /** `config --resources`. */
  resources?: boolean;
}

/**
 * Builds the commander program. Actions record what to do in `plan`; {@link runCli} performs it, so the
 * program itself never exits the process.
 */
export function buildProgram(out: { write: (s: string) => void; err: (s: string) => void }): {
  program: Command;
  plan: CliPlan;
} {
  const plan: CliPlan = {};
  const program = new Command("margay-node")
    .description(
      "Margay's per-host agent: datastore sync, policy and routes into the dataplane, BGP, workload API.",
    )
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ writeOut: out.write, writeErr: out.err })
    .showHelpAfterError("(run margay-node --help for the flags)")
    .addHelpText("after", EXAMPLES);
  addSchemaOptions(program).action(() => {
    plan.verb = "run";
    plan.flags = program.opts();
  });
  const withRoot = (cmd: Command) => ({ ...program.opts(), ...cmd.opts() });
  const run: Command = addSchemaOptions(
    program.command("run").description("run the agent until SIGTERM or SIGINT (the default command)"),
  ).action(() => {
    plan.verb = "run";
    plan.flags = withRoot(run);
  });
  const config: Command = addSchemaOptions(
    program
      .command("config")
      .description(
        "print the resolved configuration as JSON (sensitive values redacted) with the source of every setting",
      )
      .option(
        "--resources",
        "also read the AgentConfiguration resources (default, node.<name>) from the datastore and fold them in",
      ),
  ).action(() => {
    plan.verb = "config";
    const { resources, ...flags } = withRoot(config);
    plan.flags = flags;
    plan.resources = resources === true;
  });
  program
    .command("version")
    .description("print the version")
    .action(() => {
      plan.verb = "version";
    });
  for (const c of program.commands)
    c.exitOverride().configureOutput({ writeOut: out.write, writeErr: out.err });
  return { program, plan };
}

/** Runs `margay-node` with `argv` (without node and the script); resolves with the exit code. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const { program, plan } = buildProgram({ write: io.stdout, err: io.stderr });
  try {
    await program.parseAsync([...argv], { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.exitCode === 0
        ? EXIT_CODES.ok
        : EXIT_CODES.usage;
    }
    throw e;
  }
  if (plan.verb === "version") {
    io.stdout(`margay-node ${MARGAY_NODE_VERSION}\n`);
    return EXIT_CODES.ok;
  }
  let resolved: ReturnType<typeof resolveBootstrapConfig>;
  try {
    resolved = resolveBootstrapConfig({ flags: plan.flags ?? {}, env: io.env, hostname: io.hostname });
  } catch (e) {
    if (isAgentConfigError(e)) {
      io.stderr(describeError(e));
      return e.code === "unknown-flag" ? EXIT_CODES.usage : EXIT_CODES.config;
    }
    throw e;
  }
  const { config, sources, warnings } = resolved;
  if (plan.verb === "config") {
    if (plan.resources !== true) {
      io.stdout(`${JSON.stringify(describeConfig(config, sources, warnings), null, 2)}\n`);
      return EXIT_CODES.ok;
    }
    return printWithResources(config, sources, warnings, io);
  }
  return runAgent(config, sources, warnings, io);
}

/** `config --resources`: the configuration with the datastore's AgentConfiguration resources folded in. */
async function printWithResources(
  config: AgentConfig,
  sources: ConfigSources,
  warnings: readonly ConfigWarning[],
  io: CliIo,
): Promise<number> {
  let session: { datastore: Datastore; close(): Promise<void> };
  try {
    // margayctl's session: the memory snapshot under its lock file, or etcd with the configured TLS.
    const { openSession } = await import("../../ctl/session.js");
    session = await openSession(config.datastore);
  } catch (e) {
    io.stderr(`margay-node: cannot open the datastore: ${(e as Error).message}\n`);
    return EXIT_CODES.startup;
  }
  try {
    const { isDatastoreError } = await import("@margay/datastore");
    const read = (name: string) =>
      session.datastore.get<AgentConfiguration>({ kind: "AgentConfiguration", name }).catch((e: unknown) => {
        if (isDatastoreError(e) && e.code === "not-found") return undefined;
        throw e;
      });
    const [global, node] = await Promise.all([read("default"), read(`node.${config.nodeName}`)]);
    const applied = applyAgentConfiguration(config, sources, { global, node });
    io.stdout(
      `${JSON.stringify(describeConfig(applied.config, applied.sources, [...warnings, ...applied.warnings]), null, 2)}\n`,
    );
    return EXIT_CODES.ok;
  } catch (e) {
    io.stderr(`margay-node: ${(e as Error).message}${isAgentConfigError(e) ? ` (${e.code})` : ""}\n`);
    return isAgentConfigError(e) ? EXIT_CODES.config : EXIT_CODES.startup;
  } finally {
    await session.close().catch(() => {});
  }
}

async function runAgent(
  config: AgentConfig,
  sources: ConfigSources,
  warnings: readonly ConfigWarning[],
  io: CliIo,
): Promise<number> {
  const logger = io.createLogger ? io.createLogger(config) : await defaultLogger(config);
  // The agent logs `warnings` (with those of the AgentConfiguration resources) once its logger is set.
  logger.info({ version: MARGAY_NODE_VERSION, sources }, "margay-node starting");
  return superviseDaemon({
    name: "margay-node",
    logger,
    onSignal: io.onSignal,
    stderr: io.stderr,
    codes: EXIT_CODES,
    start: () => (io.runAgent ?? defaultRunAgent)(config, { logger, sources, warnings }),
    startFailureCode: (e) => (isAgentConfigError(e) ? EXIT_CODES.config : EXIT_CODES.startup),
  });
}
