/**
 * Generates docs/margayctl.md, the command reference, from the commander definitions (so the reference
 * cannot drift from the parser; `docs.test.ts` fails when the committed file differs). Regenerate with
 * `npx tsx packages/margay/src/ctl/docs.ts --write`.
 *
 * @packageDocumentation
 */

import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { DEFAULT_CONFIG_FILE } from "./config.js";
import { ExitCode } from "./errors.js";
import type { CtlIo } from "./io.js";
import { kindNames } from "./kinds.js";
import { PLAIN } from "./output.js";
import { createProgram, examplesOf } from "./program.js";

/** Where the reference lives in the repository. */
export const DOCS_PATH = fileURLToPath(new URL("../../../../docs/margayctl.md", import.meta.url));

const NULL_IO: CtlIo = {
  out: () => undefined,
  err: () => undefined,
  readStdin: async () => "",
  env: {},
  isTTY: false,
  style: PLAIN,
  cwd: "/",
};

function fullName(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c !== null; c = c.parent) names.unshift(c.name());
  return names.join(" ");
}

function section(cmd: Command, out: string[]): void {
  const help = cmd.createHelp();
  const name = fullName(cmd);
  const subs = cmd.commands.filter((c) => c.name() !== "help");
  out.push(`## ${name}`, "");
  out.push(cmd.description().replace(/\n/g, " "), "");
  out.push("```", help.commandUsage(cmd), "```", "");
  const args = help.visibleArguments(cmd);
  if (args.length > 0) {
    out.push("| argument | description |", "| --- | --- |");
    for (const a of args)
      out.push(`| \`${help.argumentTerm(a)}\` | ${help.argumentDescription(a).replace(/\|/g, "\\|")} |`);
    out.push("");
  }
  const options = help.visibleOptions(cmd).filter((o) => o.long !== "--help");
  if (options.length > 0 && cmd.parent !== null) {
    out.push("| option | description |", "| --- | --- |");
    for (const o of options)
      out.push(`| \`${help.optionTerm(o)}\` | ${help.optionDescription(o).replace(/\|/g, "\\|")} |`);
    out.push("");
  }
  if (subs.length > 0) {
    out.push("| command | what it does |", "| --- | --- |");
    for (const s of subs)
      out.push(
        `| [\`${fullName(s)}\`](#${fullName(s).replace(/ /g, "-")}) | ${s.summary() || s.description().split("\n")[0]} |`,
      );
    out.push("");
  }
  const ex = examplesOf(cmd);
  if (ex.length > 0) out.push("Examples:", "", "```sh", ...ex, "```", "");
  for (const s of subs) section(s, out);
}

/** The reference, as Markdown. */
export function generateDocs(): string {
  const program = createProgram({ io: NULL_IO });
  const help = program.createHelp();
  const out: string[] = [
    "# margayctl command reference",
    "",
    "<!-- GENERATED from packages/margay/src/ctl/program.ts by packages/margay/src/ctl/docs.ts; do not edit.",
    "     Regenerate: npx tsx packages/margay/src/ctl/docs.ts --write -->",
    "",
    "`margayctl` is Margay's operator CLI, with calicoctl's habits: verb-noun commands, `-f` file,",
    "directory or `-`, `-o yaml|json|wide|name|custom-columns=…`, Calico `projectcalico.org/v3` manifests",
    "accepted (converted), plus `policy explain` and `policy matrix`.",
    "",
    "## Configuration",
    "",
    "Each datastore setting is taken from the first of: a flag, an environment variable, the config file",
    `(\`${DEFAULT_CONFIG_FILE}\`, or \`--config\` / \`MARGAYCTL_CONFIG\`), the default (etcd at`,
    "`http://127.0.0.1:2379`). Secrets are never inline: TLS material and the etcd password are file paths.",
    "",
    "```yaml",
    "apiVersion: margay.io/v1          # projectcalico.org/v3 CalicoAPIConfig files are read too",
    "kind: MargayctlConfig",
    "spec:",
    "  datastoreType: etcdv3           # etcdv3 | etcd | memory",
    "  etcdEndpoints: https://10.0.0.1:2379,https://10.0.0.2:2379",
    "  etcdCACertFile: /etc/margay/pki/ca.crt",
    "  etcdCertFile: /etc/margay/pki/client.crt",
    "  etcdKeyFile: /etc/margay/pki/client.key",
    "  # etcdUsername, etcdPasswordFile, etcdPrefix; for memory: snapshotPath",
    "```",
    "",
    "| option | description |",
    "| --- | --- |",
    ...help
      .visibleOptions(program)
      .filter((o) => o.long !== "--help")
      .map((o) => `| \`${help.optionTerm(o)}\` | ${help.optionDescription(o).replace(/\|/g, "\\|")} |`),
    "",
    "A memory datastore is opened under its lock file (`<snapshot>.lock`, the one margay-ipam and the agent",
    "take), so margayctl can run beside them on one host.",
    "",
    "Colours are used only when standard output is a terminal (and `NO_COLOR` is unset).",
    "",
    `Resource types: ${kindNames()
      .map((k) => `\`${k}\``)
      .join(", ")}; plurals and short names (\`pool\`, \`wep\`, \`netpol\`, \`gnp\`, \`hep\`...) work too.`,
    "",
    "## Exit codes",
    "",
    "| code | meaning |",
    "| --- | --- |",
    `| ${ExitCode.Ok} | success |`,
    `| ${ExitCode.Error} | the command failed: datastore unreachable or refused, write conflict, unreadable file |`,
    `| ${ExitCode.Usage} | bad usage or bad input (unknown flag, invalid manifest, bad selector); nothing was written |`,
    `| ${ExitCode.NotFound} | not found / already exists (get, replace, delete, patch, label of a missing object; create of an existing one; node status of a node that never reported); nothing was written |`,
    `| ${ExitCode.Partial} | partial: a batch larger than one transaction (${100} objects) failed after part of it was written; the written objects are listed |`,
    "",
    'Errors are one line on standard error: `error: <file>: document N, line L: invalid <Kind> "<name>": <field path>: <why>`.',
    "",
  ];
  section(program, out);
  return `${out.join("\n").replace(/\n+$/, "")}\n`;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (process.argv.includes("--write")) {
    writeFileSync(DOCS_PATH, generateDocs());
    console.log(DOCS_PATH);
  } else process.stdout.write(generateDocs());
}
