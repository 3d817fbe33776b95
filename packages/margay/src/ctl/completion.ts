/**
 * Shell completion scripts generated from the command tree (commands, subcommands, their flags, and
 * resource type names after the verbs that take one), so they never drift from the parser.
 *
 * @packageDocumentation
 */

import type { Command } from "commander";
import { allKindNames } from "./kinds.js";

/** Verbs whose first argument is a resource type. */
const TYPE_VERBS = ["get", "delete", "patch", "label"];

interface Node {
  path: string;
  subcommands: string[];
  flags: string[];
}

function walk(cmd: Command, prefix: string, out: Node[]): void {
  const subs = cmd.commands.filter((c) => c.name() !== "help");
  const flags = cmd.options.flatMap((o) => [o.short, o.long].filter((f): f is string => f !== undefined));
  out.push({ path: prefix, subcommands: subs.map((c) => c.name()), flags: [...flags, "--help"] });
  for (const c of subs) walk(c, prefix === "" ? c.name() : `${prefix} ${c.name()}`, out);
}

function nodes(program: Command): Node[] {
  const out: Node[] = [];
  walk(program, "", out);
  return out;
}

/** The bash completion script (`source <(margayctl completion bash)`). */
export function bashCompletion(program: Command): string {
  const globals = nodes(program)[0]!.flags;
  const cases = nodes(program)
    .map((n) => {
      const words = [...n.subcommands, ...n.flags, ...(n.path === "" ? [] : globals)];
      return `    "${n.path}") words="${[...new Set(words)].join(" ")}" ;;`;
    })
    .join("\n");
  return `# bash completion for margayctl (generated; source <(margayctl completion bash))
_margayctl() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" nargs=0 i w words
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    [[ "$w" == -* ]] && continue
    case "\${path:+$path }$w" in
${nodes(program)
  .filter((n) => n.path !== "")
  .map((n) => `      "${n.path}") path="${n.path}" ;;`)
  .join("\n")}
      *) nargs=$((nargs + 1)) ;;
    esac
  done
  case "$path" in
${cases}
    *) words="" ;;
  esac
  if [[ "$cur" != -* && $nargs -eq 0 && " ${TYPE_VERBS.join(" ")} " == *" $path "* ]]; then
    words="${allKindNames().join(" ")}"
  fi
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _margayctl margayctl
`;
}

/** The zsh completion script (`source <(margayctl completion zsh)`), via bashcompinit. */
export function zshCompletion(program: Command): string {
  return `#compdef margayctl
# zsh completion for margayctl (generated; source <(margayctl completion zsh))
autoload -U +X bashcompinit && bashcompinit
${bashCompletion(program)}`;
}
