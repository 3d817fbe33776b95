/**
 * The `margay-kube-controllers` command line (commander). Configuration comes from the environment only,
 * as Calico kube-controllers' does (see config.ts); `main.ts` calls {@link runKubeControllersCli} with
 * the process, tests call it with fakes.
 *
 * Verbs: `margay-kube-controllers [run]` runs until SIGTERM / SIGINT; `config` prints the resolved
 * configuration as JSON; `version` prints the version. Exit codes: {@link KUBE_CONTROLLERS_EXIT_CODES}.
 *
 * @packageDocumentation
 */
import type { Logger } from "@margay/api";
import { Command, CommanderError } from "commander";
import pkg from "../../package.json" with { type: "json" };
import {
  CONTROLLERS_ENV_HELP,
  type ControllersEnv,
  isControllersConfigError,
  type KubeControllersConfig,
  resolveControllersConfig,
} from "./config.js";
import { superviseDaemon } from "../daemon/supervise.js";
import type { KubeControllersDeps, RunningKubeControllers } from "./run.js";

/** Exit codes of `margay-kube-controllers` (as margay-node's). */
export const KUBE_CONTROLLERS_EXIT_CODES = Object.freeze({
  /** Stopped by SIGTERM / SIGINT, or a command that completed. */
  ok: 0,
  /** Failed while running (the Lease was lost: restart as a candidate), or an unexpected error. */
  failure: 1,
  /** Bad command line. */
  usage: 2,
  /** Bad configuration. */
  config: 3,
  /** Could not start (datastore or API server unreachable, port in use, unreadable kubeconfig). */
  startup: 4,
  /** A second signal during shutdown. */
  forced: 143,
} as const);

/** What {@link runKubeControllersCli} needs from the process. */
export interface KubeControllersCliIo {
  readonly env: ControllersEnv;
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly hostname?: string | undefined;
  /** Subscribes to SIGTERM / SIGINT; returns an unsubscribe function. */
  readonly onSignal: (listener: (signal: "SIGTERM" | "SIGINT") => void) => () => void;
  /** Builds the logger (default pino JSON on stdout at `config.logLevel`). */
  readonly createLogger?: ((config: KubeControllersConfig) => Logger) | undefined;
  /** Starts the controllers (default `runKubeControllers` of run.ts, loaded on first use). */
  readonly run?:
    | ((config: KubeControllersConfig, deps: KubeControllersDeps) => RunningKubeControllers)
    | undefined;
}

const NAME = "margay-kube-controllers";

function envHelp(): string {
  const width = Math.max(...CONTROLLERS_ENV_HELP.map(([n]) => Math.min(n.length, 40)));
  const lines = CONTROLLERS_ENV_HELP.map(([n, d]) =>
    n.length > width ? `  ${n}\n  ${" ".repeat(width)}  ${d}` : `  ${n.padEnd(width)}  ${d}`,
  );
  return `
Environment (Calico kube-controllers' names where they exist):
${lines.join("\n")}

Examples:
  # in a pod (in-cluster credentials), two replicas sharing the Lease kube-system/margay-kube-controllers
  ETCD_ENDPOINTS=https://10.0.0.1:2379 ETCD_CA_CERT_FILE=/etc/margay/ca.crt POD_NAME=$HOSTNAME ${NAME}
  # outside the cluster, only the pod and policy controllers, no leader election
  KUBECONFIG=$HOME/.kube/config ETCD_ENDPOINTS=http://127.0.0.1:2379 \\
    ENABLED_CONTROLLERS=workloadendpoint,policy MARGAY_LEADER_ELECTION=off ${NAME}
  # what would it run with?
  ETCD_ENDPOINTS=http://127.0.0.1:2379 KUBECONFIG=/etc/kubernetes/admin.conf ${NAME} config

Exit codes: 0 stopped cleanly, 1 failure while running (including a lost Lease), 2 usage, 3 configuration,
4 startup failed, 143 second signal during shutdown.
`;
}

async function defaultLogger(config: KubeControllersConfig): Promise<Logger> {
  const { default: pino } = await import("pino");
  // pino.destination (sonic-boom on fd 1): no transport, no worker thread, so the bundle is one file.
  return pino(
    {
      level: config.logLevel,
      base: { identity: config.leaderElection.identity },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    pino.destination({ dest: 1, sync: false }),
  ) as unknown as Logger;
}

async function defaultRun(config: KubeControllersConfig, deps: KubeControllersDeps) {
  const { runKubeControllers } = await import("./run.js");
  return runKubeControllers(config, deps);
}

/** Runs `margay-kube-controllers` with `argv` (without node and the script); resolves with the exit code. */
export async function runKubeControllersCli(
  argv: readonly string[],
  io: KubeControllersCliIo,
): Promise<number> {
  let verb: "run" | "config" | "version" | undefined;
  const program = new Command(NAME)
    .description(
      "Margay's Kubernetes controllers: namespaces, service accounts and pods → profiles and endpoint labels; NetworkPolicy, (Baseline)AdminNetworkPolicy → policies; node deletion and IPAM garbage collection. Leader-elected by a Lease.",
    )
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError(`(run ${NAME} --help)`)
    .addHelpText("after", envHelp())
    .action(() => {
      verb = "run";
    });
  program
    .command("run")
    .description("run the controllers until SIGTERM or SIGINT (the default command)")
    .action(() => {
      verb = "run";
    });
  program
    .command("config")
    .description("print the configuration resolved from the environment as JSON")
    .action(() => {
      verb = "config";
    });
  program
    .command("version")
    .description("print the version")
    .action(() => {
      verb = "version";
    });
  for (const c of program.commands)
    c.exitOverride().configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  try {
    await program.parseAsync([...argv], { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError)
      return e.code === "commander.helpDisplayed" || e.exitCode === 0
        ? KUBE_CONTROLLERS_EXIT_CODES.ok
        : KUBE_CONTROLLERS_EXIT_CODES.usage;
    throw e;
  }
  if (verb === "version") {
    io.stdout(`${NAME} ${pkg.version}\n`);
    return KUBE_CONTROLLERS_EXIT_CODES.ok;
  }
  let config: KubeControllersConfig;
  try {
    config = resolveControllersConfig(io.env, { hostname: io.hostname });
  } catch (e) {
    if (!isControllersConfigError(e)) throw e;
    io.stderr(`${NAME}: ${e.message} (${e.code})\n`);
    return KUBE_CONTROLLERS_EXIT_CODES.config;
  }
  if (verb === "config") {
    io.stdout(`${JSON.stringify(config, null, 2)}\n`);
    return KUBE_CONTROLLERS_EXIT_CODES.ok;
  }
  return runUntilSignal(config, io);
}

async function runUntilSignal(config: KubeControllersConfig, io: KubeControllersCliIo): Promise<number> {
  const logger = io.createLogger ? io.createLogger(config) : await defaultLogger(config);
  logger.info({ version: pkg.version, controllers: config.enabledControllers }, `${NAME} starting`);
  return superviseDaemon({
    name: NAME,
    logger,
    onSignal: io.onSignal,
    stderr: io.stderr,
    codes: KUBE_CONTROLLERS_EXIT_CODES,
    start: () => (io.run ?? defaultRun)(config, { logger }),
    stopAfterFailure: true,
  });
}
