/**
 * `node diags`: one redacted tarball with what a support engineer asks for first — the agent's logs
 * (journal or a log file), its resolved configuration (`margay-node config`), the node's NodeStatus, the
 * routes (`ip -j route`, both families) and the `inet margay` nftables table. A source that cannot be
 * read is recorded in `errors.txt` and the rest is still collected; every text is redacted before it is
 * written (private keys, passwords, tokens, URL credentials, and the literal contents of the etcd
 * password and key files the configurations name). The archive is written by the `tar` binary.
 *
 * @packageDocumentation
 */

import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import type { StoredObject } from "@margay/datastore";
import type { CommandContext } from "../context.js";
import { CtlError, CtlErrorCode, errorCode } from "../errors.js";
import { runHost, isNetnsName } from "../host.js";
import { yaml } from "../output.js";

/** What replaces a secret. */
export const REDACTED = "[REDACTED]";

const SECRET_KEY = `[A-Za-z0-9_.-]*(?:password|passwd|secret|token|apikey|api_key|api-key|privatekey|private_key|private-key|credentials?)[A-Za-z0-9_.-]*`;
// Keys naming a file (`etcdPasswordFile`, `ETCD_KEY_FILE`) hold a path, not a secret: kept.
const PATH_KEY = /(?:file|path)["']?$/i;

/**
 * Redacts secrets from a text: PEM private key blocks, `key: value` / `key=value` / `"key": "value"`
 * pairs whose key names a password, secret or token, credentials in URLs, and each literal in `secrets`
 * (contents of password and key files).
 */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text.replace(
    /-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----[\s\S]*?(?:-----END \1PRIVATE KEY-----|$)/g,
    `-----BEGIN $1PRIVATE KEY-----\n${REDACTED}\n-----END $1PRIVATE KEY-----`,
  );
  for (const s of [...secrets]
    .map((v) => v.trim())
    .filter((v) => v.length >= 4)
    .sort((a, b) => b.length - a.length))
    out = out.split(s).join(REDACTED);
  // "key": "value" (JSON), key: value (YAML), key=value (env, flags, logfmt).
  out = out.replace(
    new RegExp(String.raw`("?)(${SECRET_KEY})\1(\s*[:=]\s*)("(?:[^"\\]|\\.)*"|'[^']*'|[^\s,;}&]+)`, "gi"),
    (whole, q: string, key: string, sep: string, value: string) => {
      if (PATH_KEY.test(key)) return whole;
      const quoted = value.startsWith('"')
        ? `"${REDACTED}"`
        : value.startsWith("'")
          ? `'${REDACTED}'`
          : REDACTED;
      return `${q}${key}${q}${sep}${quoted}`;
    },
  );
  // --etcd-password secret (a flag followed by its value).
  out = out.replace(
    new RegExp(String.raw`(--${SECRET_KEY})(\s+)(?!-)(\S+)`, "gi"),
    (whole, flag: string, sp: string) => (PATH_KEY.test(flag) ? whole : `${flag}${sp}${REDACTED}`),
  );
  // scheme://user:password@host
  out = out.replace(/([a-z][a-z0-9+.-]*:\/\/[^\s/:@]+:)[^\s/@]+@/gi, `$1${REDACTED}@`);
  return out;
}

/** Values of keys naming a password or key file (`etcdPasswordFile`, `ETCD_KEY_FILE`) anywhere in `value`. */
export function secretFilePaths(value: unknown): string[] {
  const out: string[] = [];
  const walk = (v: unknown, key: string) => {
    if (typeof v === "string") {
      if (/(password|key)[_-]?file$/i.test(key) && v.length > 0) out.push(v);
    } else if (Array.isArray(v)) for (const x of v) walk(x, key);
    else if (typeof v === "object" && v !== null)
      for (const [k, x] of Object.entries(v)) {
        // { etcdKeyFile: { value: "/path", source: "env" } } keeps the key of the setting.
        walk(x, /^(value|effective|resolved)$/i.test(k) ? key : k);
      }
  };
  walk(value, "");
  return [...new Set(out)];
}

/** Options of `node diags`. */
export interface DiagsOptions {
  output?: string | undefined;
  logFile?: string | undefined;
  journalUnit?: string | undefined;
  agentBin?: string | undefined;
  netns?: string | undefined;
  force?: boolean | undefined;
}

interface Collected {
  file: string;
  source: string;
  ok: boolean;
  error?: string;
}

/** `node diags [NODE] [-o FILE] [--log-file PATH | --journal-unit UNIT] [--agent-bin BIN] [--netns NAME]`. */
export async function nodeDiags(
  ctx: CommandContext,
  node: string | undefined,
  opts: DiagsOptions,
): Promise<void> {
  const nodeName = node ?? hostname();
  if (opts.netns !== undefined && !isNetnsName(opts.netns))
    throw new CtlError(
      CtlErrorCode.Usage,
      `--netns: a network namespace name, got ${JSON.stringify(opts.netns)}`,
    );
  if (opts.logFile !== undefined && opts.journalUnit !== undefined)
    throw new CtlError(CtlErrorCode.Usage, "--log-file and --journal-unit: give one of them");
  if (opts.journalUnit !== undefined && !/^[A-Za-z0-9@_.:\\-]+$/.test(opts.journalUnit))
    throw new CtlError(
      CtlErrorCode.Usage,
      `--journal-unit: a systemd unit name, got ${JSON.stringify(opts.journalUnit)}`,
    );
  const logFile = opts.logFile === undefined ? undefined : resolve(ctx.io.cwd, opts.logFile);
  if (logFile !== undefined) {
    const st = await stat(logFile).catch(() => undefined);
    if (st === undefined || !st.isFile())
      throw new CtlError(CtlErrorCode.Usage, `--log-file: ${opts.logFile}: no such file`, { file: logFile });
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const output = resolve(ctx.io.cwd, opts.output ?? `margay-diags-${nodeName}-${stamp}.tar.gz`);
  if (!/\.(tar\.gz|tgz)$/.test(output))
    throw new CtlError(
      CtlErrorCode.Usage,
      `-o: the archive name ends in .tar.gz or .tgz, got ${JSON.stringify(opts.output)}`,
    );
  const dirStat = await stat(dirname(output)).catch(() => undefined);
  if (dirStat === undefined || !dirStat.isDirectory())
    throw new CtlError(CtlErrorCode.Usage, `-o: ${dirname(output)}: no such directory`, { file: output });
  if (!opts.force && (await stat(output).catch(() => undefined)) !== undefined)
    throw new CtlError(CtlErrorCode.Usage, `-o: ${output} exists (use --force to overwrite)`, {
      file: output,
    });

  const work = await mkdtemp(join(tmpdir(), "margay-diags-"));
  const root = join(work, "margay-diags");
  try {
    await mkdir(root);
    const texts = new Map<string, string>();
    const collected: Collected[] = [];
    const note = (file: string, source: string, text: string | undefined, error?: string) => {
      if (text !== undefined) texts.set(file, text);
      collected.push({ file, source, ok: error === undefined, ...(error === undefined ? {} : { error }) });
    };
    const host = async (file: string, argv: string[], netns?: string) => {
      const r = await runHost(argv, { netns, env: ctx.io.env });
      const src = (netns === undefined ? argv : ["ip", "netns", "exec", netns, ...argv]).join(" ");
      if (r.code === 0) note(file, src, r.stdout);
      else note(file, src, r.stdout || undefined, `exit ${r.code ?? "signal"}: ${firstLine(r.stderr)}`);
    };

    // Logs.
    if (logFile !== undefined) note("agent.log", logFile, await readFile(logFile, "utf8"));
    else
      await host("agent.log", [
        "journalctl",
        "--no-pager",
        "-o",
        "short-iso",
        "-n",
        "20000",
        "-u",
        opts.journalUnit ?? "margay-node",
      ]);

    // The agent's resolved configuration.
    const bin = opts.agentBin ?? "margay-node";
    const agentArgv = /\.(c|m)?js$/.test(bin)
      ? [process.execPath, resolve(ctx.io.cwd, bin), "config"]
      : [bin, "config"];
    await host("config.json", agentArgv);

    // NodeStatus, from the datastore.
    try {
      const { datastore } = await ctx.session();
      const list = (await datastore.list<StoredObject & { spec?: { node?: string } }>("NodeStatus")).items;
      const s = list.find((x) => (x.spec?.node ?? x.metadata.name) === nodeName);
      if (s === undefined)
        note("nodestatus.yaml", `NodeStatus of ${nodeName}`, undefined, `no NodeStatus for node ${nodeName}`);
      else note("nodestatus.yaml", `NodeStatus of ${nodeName}`, yaml(s));
    } catch (e) {
      note(
        "nodestatus.yaml",
        `NodeStatus of ${nodeName}`,
        undefined,
        `${errorCode(e) ?? "error"}: ${firstLine(String((e as Error).message ?? e))}`,
      );
    }

    await host("routes-ipv4.json", ["ip", "-j", "-4", "route", "show", "table", "all"], opts.netns);
    await host("routes-ipv6.json", ["ip", "-j", "-6", "route", "show", "table", "all"], opts.netns);
    await host("nftables.txt", ["nft", "list", "table", "inet", "margay"], opts.netns);

    // Literal secrets: the contents of every password / key file the configurations name.
    const paths = new Set<string>();
    const cfgText = texts.get("config.json");
    if (cfgText !== undefined) {
      try {
        for (const p of secretFilePaths(JSON.parse(cfgText))) paths.add(p);
      } catch {
        // Not JSON: the regular expressions still apply.
      }
    }
    const ds = ctx.config().datastore as unknown;
    for (const p of secretFilePaths(ds)) paths.add(p);
    for (const [k, v] of Object.entries(ctx.io.env))
      if (/(PASSWORD|KEY)_FILE$/.test(k) && v !== undefined && v.length > 0) paths.add(v);
    const secrets: string[] = [];
    for (const p of paths) {
      const v = await readFile(p, "utf8").catch(() => undefined);
      if (v === undefined) continue;
      secrets.push(v.trim());
      // A PEM key's body lines, in case a log printed them without the armour.
      for (const line of v.split("\n"))
        if (/^[A-Za-z0-9+/=]{40,}$/.test(line.trim())) secrets.push(line.trim());
    }

    for (const [file, text] of texts) await writeFile(join(root, file), redact(text, secrets));
    const failed = collected.filter((c) => !c.ok);
    await writeFile(
      join(root, "manifest.json"),
      `${JSON.stringify({ node: nodeName, createdAt: new Date().toISOString(), netns: opts.netns ?? null, files: collected }, null, 2)}\n`,
    );
    if (failed.length > 0)
      await writeFile(
        join(root, "errors.txt"),
        redact(failed.map((c) => `${c.file}: ${c.source}: ${c.error}\n`).join(""), secrets),
      );
    const partial = `${output}.partial-${process.pid}`;
    const tar = await runHost(["tar", "-czf", partial, "-C", work, "margay-diags"]);
    if (tar.code !== 0) {
      await rm(partial, { force: true });
      throw new CtlError(CtlErrorCode.Io, `tar: ${firstLine(tar.stderr)}`, { file: output });
    }
    await rename(partial, output);
    ctx.io.out(`${output}\n`);
    for (const c of failed) ctx.io.err(`warning: ${c.file} not collected: ${c.error}\n`);
    if (failed.length > 0)
      ctx.io.err(
        `${basename(output)}: ${collected.length - failed.length} of ${collected.length} sources collected (see errors.txt)\n`,
      );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function firstLine(s: string): string {
  return (s.trim().split("\n")[0] ?? "").slice(0, 300) || "no output";
}
