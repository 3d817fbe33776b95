/**
 * Entry of the `margayctl` executable: the real process as a {@link CtlIo}, then `runCtl`.
 *
 * @packageDocumentation
 */

import pc from "picocolors";
import type { CtlIo } from "./io.js";
import { runCtl } from "./run.js";

function readStdin(): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    process.stdin.on("data", (c: Buffer) => chunks.push(c));
    process.stdin.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    process.stdin.on("error", reject);
  });
}

// A library's deprecation notice (gRPC setting the TLS server name to an IP: DEP0123) is not the
// operator's business, and would break the one-line-per-error promise on stderr.
process.noDeprecation = true;

const tty = process.stdout.isTTY === true;
const colors = pc.createColors(tty && pc.isColorSupported);
const io: CtlIo = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  readStdin,
  env: process.env,
  isTTY: tty,
  style: { bold: colors.bold, red: colors.red, green: colors.green, yellow: colors.yellow, dim: colors.dim },
  cwd: process.cwd(),
};

// A reader that goes away (`margayctl get pools | head -1`) ends the command quietly, as `git log | head`
// does: the rest of the output has nowhere to go. Any other stream error stays an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code !== "EPIPE") throw e;
    process.exit(process.exitCode ?? 0);
  });
}

void runCtl(process.argv.slice(2), io).then((code) => {
  process.exitCode = code;
});
