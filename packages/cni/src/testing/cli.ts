/**
 * `cni-conformance`: runs any CNI plugin chain through the conformance kit and prints the report.
 *
 * ```
 * cni-conformance --config net.conflist --path /opt/cni/bin [--host-local-data-dir DIR | --inspect CMD]
 *                 [--scenarios add-check-del,gc] [--concurrency 4] [--timeout-ms 60000]
 *                 [--no-isolate-host] [--json]
 * ```
 * Exit status: 0 when no scenario fails, 1 when one does, 2 on a usage error. Needs root.
 *
 * @packageDocumentation
 */

import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { netConfToList, validateNetConf, validateNetConfList } from "../spec/config.js";
import type { NetConfList } from "../spec/types.js";
import { findPlugin } from "../runtime/exec-plugin.js";
import { commandAllocations, hostLocalAllocations, margayIpamAllocations } from "./allocations.js";
import { ALL_SCENARIOS, formatReport, type ScenarioId } from "./report.js";
import { runConformance } from "./run-conformance.js";

const USAGE = `usage: cni-conformance --config FILE --path DIR[:DIR...] [options]
  --config FILE               network configuration list (.conflist) or single config (.conf)
  --path DIRS                 CNI_PATH: colon-separated plugin directories
  --host-local-data-dir DIR   the ipam is host-local with this dataDir: check no address stays allocated
  --inspect CMD               check addresses with an inspector: "margay-ipam" (built in: runs the chain's
                              margay-ipam from --path with its configuration), or a command (split on
                              spaces, or a JSON array of arguments; no shell) printing the addresses the
                              IPAM holds (a JSON array, {"allocations": [...]}, or one per line)
                              Without an inspector only interfaces are checked, and the report says so.
  --scenarios LIST            comma-separated subset of: ${ALL_SCENARIOS.join(", ")}
  --concurrency N             parallel ADDs in concurrent-adds (default 4)
  --timeout-ms N              per-exec timeout (default 60000)
  --no-isolate-host           run plugins in the real host namespace (default: a namespace the kit creates)
  --json                      print the report as JSON
`;

/** `--inspect` as an argument list: a JSON array of strings, or words split on whitespace. */
function inspectArgv(text: string): string[] {
  const t = text.trim();
  if (t.startsWith("[")) {
    const v = JSON.parse(t) as unknown;
    if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === "string" && x !== ""))
      throw new Error("a JSON form must be a non-empty array of non-empty strings");
    return v as string[];
  }
  const words = t.split(/\s+/).filter((w) => w !== "");
  if (words.length === 0) throw new Error("empty command");
  return words;
}

async function main(argv: string[]): Promise<number> {
  let values: ReturnType<typeof parse>["values"];
  function parse(a: string[]) {
    return parseArgs({
      args: a,
      options: {
        config: { type: "string" },
        path: { type: "string" },
        "host-local-data-dir": { type: "string" },
        inspect: { type: "string" },
        scenarios: { type: "string" },
        concurrency: { type: "string" },
        "timeout-ms": { type: "string" },
        "no-isolate-host": { type: "boolean" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    });
  }
  try {
    values = parse(argv).values;
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.config === undefined || values.path === undefined) {
    process.stderr.write(USAGE);
    return 2;
  }
  const raw = JSON.parse(await readFile(values.config, "utf8")) as Record<string, unknown>;
  const config: NetConfList = Array.isArray(raw.plugins)
    ? validateNetConfList(raw)
    : netConfToList(validateNetConf(raw));
  const scenarios = values.scenarios?.split(",").map((s) => s.trim()) as ScenarioId[] | undefined;
  const unknown = scenarios?.filter((s) => !ALL_SCENARIOS.includes(s));
  if (unknown && unknown.length > 0) {
    process.stderr.write(`unknown scenarios: ${unknown.join(", ")}\n${USAGE}`);
    return 2;
  }
  const dataDir = values["host-local-data-dir"];
  if (dataDir !== undefined && values.inspect !== undefined) {
    process.stderr.write(`--host-local-data-dir and --inspect exclude each other\n${USAGE}`);
    return 2;
  }
  const path = values.path.split(":").filter(Boolean);
  let allocations: (() => Promise<string[]>) | undefined;
  if (dataDir !== undefined) allocations = hostLocalAllocations(dataDir, config.name);
  else if (values.inspect === "margay-ipam") {
    const plugin = config.plugins.find(
      (p) => p.type === "margay-ipam" || (p.ipam as { type?: unknown } | undefined)?.type === "margay-ipam",
    );
    if (plugin === undefined) {
      process.stderr.write("--inspect margay-ipam: no plugin of the chain uses margay-ipam\n");
      return 2;
    }
    const conf = { cniVersion: config.cniVersion, name: config.name, ...plugin };
    allocations = margayIpamAllocations(await findPlugin("margay-ipam", path), conf);
  } else if (values.inspect !== undefined) {
    let argv: string[];
    try {
      argv = inspectArgv(values.inspect);
    } catch (e) {
      process.stderr.write(`--inspect: ${(e as Error).message}\n${USAGE}`);
      return 2;
    }
    allocations = commandAllocations(argv);
  }
  const report = await runConformance({
    config,
    path,
    allocations,
    scenarios,
    concurrency: values.concurrency === undefined ? undefined : Number(values.concurrency),
    timeoutMs: values["timeout-ms"] === undefined ? undefined : Number(values["timeout-ms"]),
    isolateHost: values["no-isolate-host"] !== true,
  });
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return report.summary.fail > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`cni-conformance: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 2;
  },
);
