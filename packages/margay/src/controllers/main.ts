/**
 * Entry of the `margay-kube-controllers` executable (bundled as `dist/bin/margay-kube-controllers.cjs`):
 * hands the process to `runKubeControllersCli` (./cli.ts) and exits with its code.
 *
 * @packageDocumentation
 */
import { hostname } from "node:os";
import { runKubeControllersCli } from "./cli.js";

const signals = ["SIGTERM", "SIGINT"] as const;

// `margay-kube-controllers --help | head`: a closed pipe is the reader's choice, not a crash.
for (const stream of [process.stdout, process.stderr])
  stream.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw e;
  });

runKubeControllersCli(process.argv.slice(2), {
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
}).then(
  (code) => {
    process.exitCode = code;
    if (code === 143) process.exit(code);
    // Leave once stdout has drained (pino writes asynchronously); a handle left open must not keep a
    // stopped process alive, hence the unref'd deadline.
    setTimeout(() => process.exit(code), 2000).unref();
  },
  (e: unknown) => {
    process.stderr.write(
      `margay-kube-controllers: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
    );
    process.exit(1);
  },
);
