import { describe, expect, it } from "vitest";
import { isDataplaneError } from "../errors.js";
import { createIpBatchSession } from "./ip-session.js";
import { namedNetns } from "./netns.js";
import type { CommandRunner, RunningCommand } from "./runner.js";

/**
 * A stand-in for `ip -force -batch -` that behaves as iproute2 does on a pipe: it numbers every line it
 * reads, and for a failing one writes the error, then `Command failed -:<n>`, to stderr. Lines starting
 * with `bad` fail, as does any unknown object (the session's end marker).
 */
function fakeIp() {
  const starts: string[][] = [];
  const written: string[] = [];
  let kill: () => void = () => undefined;
  const runner: CommandRunner = {
    async run() {
      throw new Error("the session must not spawn one-shot processes");
    },
    start(argv) {
      starts.push([...argv]);
      let n = 0;
      let partial = "";
      const errs: ((s: string) => void)[] = [];
      const exits: ((c: number | null) => void)[] = [];
      const proc: RunningCommand = {
        write(text) {
          written.push(text);
          partial += text;
          const lines = partial.split("\n");
          partial = lines.pop()!;
          for (const line of lines) {
            n++;
            const err = line.startsWith("bad")
              ? "RTNETLINK answers: No such device\n"
              : line.startsWith("route")
                ? ""
                : `Object "${line}" is unknown, try "ip help".\n`;
            // Error output arrives in order, in chunks that do not follow line ends.
            if (err !== "") {
              const out = `${err}Command failed -:${n}\n`;
              const cut = Math.floor(out.length / 2);
              const emit = (chunk: string) => () => {
                for (const l of errs) l(chunk);
              };
              setImmediate(emit(out.slice(0, cut)));
              setImmediate(emit(out.slice(cut)));
            }
          }
        },
        onStderr: (l) => errs.push(l),
        onExit: (l) => exits.push(l),
        hold: () => undefined,
        kill: () =>
          setImmediate(() => {
            for (const l of exits) l(null);
          }),
      };
      kill = () => proc.kill();
      return proc;
    },
  };
  return { runner, starts, written, crash: () => kill() };
}

describe("ip batch session (one long-lived ip process)", () => {
  it("feeds batch after batch to one process and resolves each at its marker", async () => {
    const f = fakeIp();
    const s = createIpBatchSession(f.runner, namedNetns("x"))!;
    await s.run(["route replace 10.0.0.0/24 dev a", "route del 10.0.1.0/24"]);
    await Promise.all([
      s.run(["route replace 10.0.2.0/24 dev a"]),
      s.run(["route replace 10.0.3.0/24 dev a"]),
    ]);
    expect(f.starts).toEqual([["ip", "-n", "x", "-force", "-batch", "-"]]);
    expect(
      f.written
        .join("")
        .split("\n")
        .filter((l) => l.startsWith("route")),
    ).toHaveLength(4);
    s.close();
  });

  it("reports the failing lines of the batch that had them, and only those", async () => {
    const f = fakeIp();
    const s = createIpBatchSession(f.runner, namedNetns("x"))!;
    await s.run(["route replace 10.0.0.0/24 dev a"]);
    const err = await s
      .run(["route replace 10.0.1.0/24 dev a", "bad route", "route replace 10.0.2.0/24 dev a"])
      .catch((e: unknown) => e);
    expect(isDataplaneError(err, "command-failed")).toBe(true);
    expect((err as { retryable: boolean }).retryable).toBe(true);
    expect((err as { details: { failed: unknown } }).details.failed).toEqual([
      { line: "bad route", error: "RTNETLINK answers: No such device" },
    ]);
    await expect(s.run(["route replace 10.0.3.0/24 dev a"])).resolves.toBeUndefined();
    s.close();
  });

  it("rejects the batch in flight when the process dies, and starts a new one for the next", async () => {
    const f = fakeIp();
    const s = createIpBatchSession(f.runner, namedNetns("x"))!;
    await s.run(["route replace 10.0.0.0/24 dev a"]);
    const inFlight = s.run(["route replace 10.0.1.0/24 dev a"]);
    f.crash();
    expect(isDataplaneError(await inFlight.catch((e: unknown) => e), "command-failed")).toBe(true);
    await s.run(["route replace 10.0.2.0/24 dev a"]);
    expect(f.starts).toHaveLength(2);
    s.close();
  });

  it("refuses a line holding a newline (it would shift every line number)", async () => {
    const s = createIpBatchSession(fakeIp().runner, namedNetns("x"))!;
    const err = await s.run(["route del 10.0.0.0/24\nroute flush all"]).catch((e: unknown) => e);
    expect(isDataplaneError(err, "invalid-options")).toBe(true);
  });

  it("is not offered by a runner that cannot keep processes", () => {
    expect(
      createIpBatchSession({ run: async () => ({ code: 0, stdout: "", stderr: "" }) }, namedNetns("x")),
    ).toBe(undefined);
  });
});
