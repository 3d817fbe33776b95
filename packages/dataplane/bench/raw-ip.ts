/**
 * The fair raw baseline's `ip`: one long-lived `ip -n <ns> -force -batch -` process, started before the
 * clock, fed each batch over stdin. A line `ip` cannot parse ends each batch: with `-force` it reports
 * `Command failed -:<line>` on stderr (unbuffered), which tells that every line before it has run.
 */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

export interface RawIpSession {
  run(lines: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

export function startRawIp(netns: string): RawIpSession {
  const p = spawn("ip", ["-n", netns, "-force", "-batch", "-"], { stdio: ["pipe", "ignore", "pipe"] });
  let lineNo = 0;
  let waiting: { marker: number; errors: string[]; resolve(): void; reject(e: Error): void } | undefined;
  let lastText = "";
  createInterface({ input: p.stderr }).on("line", (l) => {
    const m = /^Command failed -:(\d+)$/.exec(l);
    if (!m) {
      lastText = l;
      return;
    }
    if (!waiting) return;
    if (Number(m[1]) !== waiting.marker) {
      waiting.errors.push(`${l}: ${lastText}`);
      return;
    }
    const w = waiting;
    waiting = undefined;
    if (w.errors.length > 0) w.reject(new Error(`raw ip batch: ${w.errors.length} failed: ${w.errors[0]}`));
    else w.resolve();
  });
  const exited = new Promise<void>((r) => p.once("exit", () => r()));
  return {
    run: (lines) =>
      new Promise<void>((resolve, reject) => {
        lineNo += lines.length + 1;
        waiting = { marker: lineNo, errors: [], resolve, reject };
        p.stdin.write(`${lines.join("\n")}\nmargay-raw-batch-end\n`);
      }),
    close: async () => {
      p.stdin.end();
      await exited;
    },
  };
}
