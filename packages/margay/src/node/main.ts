/**
 * Entry of the `margay-node` executable (bundled as `dist/bin/margay-node.cjs`): hands the process to
 * `runCli` (./config/cli.ts) and exits with its code. Everything else lives in importable modules.
 *
 * @packageDocumentation
 */
import { hostname } from "node:os";
import { runCli } from "./config/cli.js";

const signals = ["SIGTERM", "SIGINT"] as const;

// `margay-node --help | head`: a closed pipe is the reader's choice, not a crash.
for (const stream of [process.stdout, process.stderr])
  stream.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw e;
  });

const argv = process.argv.slice(2);
// install-cni / uninstall-cni (issue 14): their own small CLI, loaded only for them.
const cli =
  argv[0] === "install-cni" || argv[0] === "uninstall-cni"
    ? import("../cni/install/cli.js").then((m) =>
        m.installCniMain(argv, {
          env: process.env,
          stdout: (s) => process.stdout.write(s),
          stderr: (s) => process.stderr.write(s),
        }),
      )
    : runCli(argv, {
        env: process.env,
        stdout: (s) => process.stdout.write(s),
        stderr: (s) => process.stderr.write(s),
        hostname: hostname(),
        onSignal(listener) {
          const handlers = signals.map((s) => [s, () => listener(s)] as const);
          for (const [s, h] of handlers) process.on(s, h);
          return () => {
            for (const [s, h] of handlers) process.off(s, h);
          };
        },
      });
cli.then(
  (code) => {
    process.exitCode = code;
    if (code === 143) process.exit(code);
    // Leave once stdout has drained (pino writes asynchronously); a handle left open must not keep a
    // stopped agent alive, hence the unref'd deadline.
    setTimeout(() => process.exit(code), 2000).unref();
  },
  (e: unknown) => {
    process.stderr.write(`margay-node: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
