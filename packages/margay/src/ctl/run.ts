/**
 * Runs margayctl's command tree over a {@link CtlIo} and turns the outcome into one line on stderr and a
 * documented exit code (see `errors.ts`).
 *
 * @packageDocumentation
 */

import { CommanderError } from "commander";
import type { CommandContext } from "./context.js";
import { ExitCode, toCtlError } from "./errors.js";
import type { CtlIo } from "./io.js";
import { createProgram } from "./program.js";
import { startProgress } from "./progress.js";

/** Runs margayctl with `argv` (without node and script) over `io`; returns the exit code. */
export async function runCtl(argv: readonly string[], rawIo: CtlIo): Promise<number> {
  let ctx: CommandContext | undefined;
  // On a terminal, a command still running after a moment shows a progress line (erased before output).
  const label =
    argv
      .filter((a) => !a.startsWith("-"))
      .slice(0, 2)
      .join(" ") || "margayctl";
  const progress = startProgress(rawIo, label);
  const io = progress.io;
  const program = createProgram({ io, onContext: (c) => (ctx = c) });
  try {
    await program.parseAsync([...argv], { from: "user" });
    return ExitCode.Ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (
        e.code === "commander.helpDisplayed" ||
        e.code === "commander.version" ||
        e.code === "commander.help"
      )
        return ExitCode.Ok;
      return ExitCode.Usage; // commander has printed the message
    }
    const err = toCtlError(e);
    io.err(`${io.style.red("error:")} ${err.message.split("\n")[0]}\n`);
    return err.exitCode;
  } finally {
    await (ctx as CommandContext | undefined)?.close().catch(() => undefined);
    progress.stop();
  }
}
