/**
 * Renders `docs/node-config.md`, the configuration reference of `margay-node`, from `AGENT_CONFIG_SCHEMA`
 * and `AGENT_CONFIGURATION_FIELDS`. A test compares the committed page with this output; regenerate with
 * `npm run docs:node-config`.
 *
 * @packageDocumentation
 */
import { AGENT_CONFIGURATION_FIELDS } from "./agent-configuration.js";
import { DEFAULT_SKIPPED_INTERFACES, SKIPPED_LINK_KINDS } from "./autodetect.js";
import { EXIT_CODES } from "./cli.js";
import { AGENT_CONFIG_SCHEMA, SETTING_GROUPS, SETTING_NAMES, type SettingDef } from "./schema.js";

const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");
const code = (s: string) => (s === "" ? "" : `\`${s.replace(/`/g, "")}\``);

const EXIT_MEANING: Readonly<Record<keyof typeof EXIT_CODES, string>> = {
  ok: "stopped by SIGTERM / SIGINT after a clean shutdown (routes and rules left in place), or a command that completed",
  failure: "the agent failed while running, or an unexpected error",
  usage: "bad command line: unknown flag or command, a flag without its value",
  config:
    "bad configuration: a malformed or conflicting setting, an invalid or unsupported AgentConfiguration field",
  startup: "the agent could not start: datastore unreachable, no underlay address, a port in use, ...",
  forced: "a second SIGTERM / SIGINT during shutdown: exited at once",
};

/** The reference page, Markdown. */
export function renderConfigReference(): string {
  const out: string[] = [];
  out.push(
    "# margay-node configuration reference",
    "",
    "<!-- Generated from AGENT_CONFIG_SCHEMA (packages/margay/src/node/config/schema.ts) by",
    "     `npm run docs:node-config`. Do not edit by hand: a test compares this page with the schema. -->",
    "",
    "`margay-node` is Margay's per-host agent. Every setting below is declared once, in",
    "`AGENT_CONFIG_SCHEMA`; this page, `margay-node --help` and the environment parser are generated from it.",
    "",
    "## Precedence",
    "",
    "Highest first; the first source that sets a value wins:",
    "",
    "1. command-line flags (`margay-node --vxlan-port 4790`);",
    "2. environment variables (`MARGAY_VXLAN_PORT=4790`); an empty variable counts as unset, as in Calico;",
    "3. the `AgentConfiguration` resource `node.<node name>`;",
    "4. the `AgentConfiguration` resource `default`;",
    "5. the built-in default.",
    "",
    "Only the settings with an *AgentConfiguration field* below can come from 3 and 4. Flags, variables and",
    "resources are all checked: a malformed value, an unknown flag or two settings that cannot go together",
    "stop the agent with an error naming the setting, where its value came from and the value",
    "(exit code 3). `margay-node config` prints the resolved configuration and the source of every value.",
    "A `MARGAY_*` variable that is not a setting is reported as a warning at start.",
    "",
  );
  for (const group of SETTING_GROUPS) {
    const names = SETTING_NAMES.filter((n) => AGENT_CONFIG_SCHEMA[n].group === group);
    if (names.length === 0) continue;
    out.push(`## ${group}`, "");
    out.push("| Environment | Flag | AgentConfiguration field | Type | Default | Description |");
    out.push("| --- | --- | --- | --- | --- | --- |");
    for (const n of names) {
      const d: SettingDef<unknown> = AGENT_CONFIG_SCHEMA[n];
      out.push(
        `| ${code(d.env)} | ${code(`--${d.flag}`)} | ${d.resource ? code(d.resource.field) : ""} | ${cell(d.type)} | ${cell(
          d.defaultText === "unset" || d.defaultText.includes(" ") ? d.defaultText : code(d.defaultText),
        )} | ${cell(d.description)}${d.sensitive ? " Redacted by `margay-node config`." : ""} |`,
      );
    }
    out.push("");
  }
  out.push(
    "## Address autodetection",
    "",
    "With `IP` (or `IP6`) `autodetect`, `IP_AUTODETECTION_METHOD` (`IP6_AUTODETECTION_METHOD`) chooses the",
    "address. Every candidate interface is logged (`address candidate`) with why it was or was not chosen.",
    "Regular expressions match whole interface names.",
    "",
    "| Method | Chooses |",
    "| --- | --- |",
    "| `first-found` | the primary global address of the first interface (kernel order) that is up and not skipped |",
    "| `skip-interface=RE[,RE]` | as `first-found`, also skipping interfaces matching a RE |",
    "| `interface=RE[,RE]` | the interface matching the first RE that matches an interface with an address; no default skips. Two interfaces matching the same RE: refused (ambiguous) |",
    "| `can-reach=DEST` | the source address of the kernel's route to DEST (`ip route get`); DEST may be a host name |",
    "| `cidr=CIDR[,CIDR]` | the address inside the first CIDR that contains one; no default skips. Addresses on two interfaces: refused (ambiguous) |",
    "",
    `\`first-found\` and \`skip-interface=\` skip interfaces named ${DEFAULT_SKIPPED_INTERFACES.map(code).join(", ")},`,
    "those named with a workload interface prefix (`MARGAY_INTERFACE_PREFIX`), and devices of kind",
    `${SKIPPED_LINK_KINDS.map(code).join(", ")} (a bridge that is the underlay is chosen with \`interface=\`).`,
    "veth devices are not skipped by kind: a host that is itself a container or a namespace has one as its",
    "uplink.",
    "",
    "An explicit `IP=10.0.0.5/24` is looked up on the host's interfaces: a bare address takes the prefix",
    "length of the interface that holds it; an address no interface holds is used with a warning.",
    "",
    "## MTU",
    "",
    "`MARGAY_MTU` (or `vxlanMTU` in an AgentConfiguration) sets the MTU of workload veths and tunnel devices.",
    "Unset, it is the MTU of the underlay interface (1500 when unknown) minus the largest encapsulation",
    "overhead in use: VXLAN 50 bytes, IPIP 20 bytes.",
    "",
    "## AgentConfiguration fields",
    "",
    "Every field of the `AgentConfiguration` resource is honoured, ignored with a warning, or rejected:",
    "",
    "| Field | margay-node |",
    "| --- | --- |",
  );
  for (const [field, rule] of Object.entries(AGENT_CONFIGURATION_FIELDS)) {
    const what =
      rule.rule === "honoured"
        ? `honoured: sets ${code(AGENT_CONFIG_SCHEMA[rule.setting].env)}`
        : rule.rule === "ignored"
          ? `ignored, with a warning when set to a value that would matter: ${rule.reason}`
          : `rejected (the agent does not start) unless left at what margay-node does: ${rule.reason}`;
    out.push(`| ${code(field)} | ${cell(what)} |`);
  }
  out.push("", "## Exit codes", "", "| Code | Meaning |", "| --- | --- |");
  for (const [k, v] of Object.entries(EXIT_CODES))
    out.push(`| ${v} | ${cell(EXIT_MEANING[k as keyof typeof EXIT_CODES])} |`);
  out.push(
    "",
    "## Commands",
    "",
    "- `margay-node [run] [flags]`: runs the agent until SIGTERM or SIGINT (the default command).",
    "- `margay-node config [flags]`: prints the resolved configuration as JSON, sensitive values redacted,",
    "  with the source (`flag`, `env`, `default`) of every setting. With `--resources` it also reads the",
    "  `AgentConfiguration` resources from the datastore and folds them in (sources `node-resource`,",
    "  `global-resource`), as the agent does at start.",
    "- `margay-node version`: prints the version.",
    "- `margay-node install-cni` / `margay-node uninstall-cni`: install or remove the `margay` CNI plugin",
    "  and its network configuration on this host (their own `--help`).",
    "- `margay-node --help`: every flag with its environment variable and default.",
    "",
  );
  return out.join("\n");
}
