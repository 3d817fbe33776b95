/**
 * Test helpers for margayctl: spawn the BUILT binary (`dist/bin/margayctl.cjs`), normalise what varies
 * between runs (uids, timestamps, temporary paths), and compare transcripts with goldens under
 * `testdata/` (`MARGAYCTL_UPDATE_GOLDENS=1` rewrites them). Not part of the package's API.
 *
 * @packageDocumentation
 */

import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The built executable. */
export const MARGAYCTL_BIN = fileURLToPath(new URL("../../dist/bin/margayctl.cjs", import.meta.url));

/** Where goldens live. */
export const TESTDATA = fileURLToPath(new URL("./testdata/", import.meta.url));

/** True when goldens are to be rewritten instead of compared. */
export const UPDATE_GOLDENS = process.env.MARGAYCTL_UPDATE_GOLDENS === "1";

/** Throws a clear error when the binary has not been built. */
export function requireBuiltBinary(): string {
  if (!existsSync(MARGAYCTL_BIN))
    throw new Error(
      `${MARGAYCTL_BIN} is missing: build it first with \`npx lerna run build --scope @margay/margay\` ` +
        "(or `npx tsx packages/margay/src/ctl/build-bundle.ts`)",
    );
  return MARGAYCTL_BIN;
}

/** The outcome of one run. */
export interface CtlRun {
  args: readonly string[];
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built margayctl with `args`; `env` replaces the datastore variables of the test process. */
export function runMargayctl(
  args: readonly string[],
  options: { env?: Record<string, string>; stdin?: string; cwd?: string; timeoutMs?: number } = {},
): Promise<CtlRun> {
  const bin = requireBuiltBinary();
  const env: Record<string, string> = {};
  // Only what a shell would pass plus the test's settings: no ETCD_* or DATASTORE_TYPE leaking in.
  for (const k of ["PATH", "HOME", "LANG", "TMPDIR"])
    if (process.env[k] !== undefined) env[k] = process.env[k]!;
  // An empty config file: a /etc/margay/margayctl.cfg on the test machine must not change the outcome.
  Object.assign(env, { NO_COLOR: "1", MARGAYCTL_CONFIG: "/dev/null" }, options.env ?? {});
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      env,
      cwd: options.cwd ?? process.cwd(),
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ args, code, stdout, stderr });
    });
    child.stdin.end(options.stdin ?? "");
  });
}

/** Replaces what differs between runs: uids, RFC 3339 times, the given paths. */
export function normalise(text: string, paths: Record<string, string> = {}): string {
  let out = text
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, "<uid>")
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, "<time>");
  for (const [path, name] of Object.entries(paths).sort(([a], [b]) => b.length - a.length))
    out = out.split(path).join(name);
  return out;
}

/** One transcript entry, as goldens hold it. */
export function transcript(run: CtlRun, paths: Record<string, string> = {}): string {
  const parts = [`$ margayctl ${run.args.join(" ")}`, `[exit ${run.code}]`];
  if (run.stdout !== "") parts.push("--- stdout", run.stdout.replace(/\n$/, ""));
  if (run.stderr !== "") parts.push("--- stderr", run.stderr.replace(/\n$/, ""));
  return normalise(`${parts.join("\n")}\n`, paths);
}

/** Compares `actual` with the golden `name` (or rewrites it with MARGAYCTL_UPDATE_GOLDENS=1). */
export function golden(name: string, actual: string): { expected: string; actual: string } {
  const file = join(TESTDATA, name);
  if (UPDATE_GOLDENS || !existsSync(file)) {
    if (!UPDATE_GOLDENS)
      throw new Error(`golden ${file} is missing: run with MARGAYCTL_UPDATE_GOLDENS=1 to create it`);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, actual);
  }
  return { expected: readFileSync(file, "utf8"), actual };
}
