/**
 * Malformed invocations and the error code the specification (and libcni's skeleton) prescribes for
 * each. The kit feeds them to the first plugin of a chain; a plugin's own tests can add more.
 *
 * @packageDocumentation
 */

import { randomBytes } from "node:crypto";
import { DEFAULT_PLUGIN_ENV } from "../runtime/exec-plugin.js";
import { parseErrorObject } from "../spec/errors.js";
import type { NetConf } from "../spec/types.js";
import { randomContainerId } from "./netns.js";
import { type RawExecOptions, type RawExecResult, rawExec } from "./raw-exec.js";

/** A valid ADD invocation that a case then breaks. */
export interface Invocation {
  /** Exact environment. */
  env: Record<string, string>;
  /** Stdin. */
  stdin: string | Uint8Array;
}

/** Parameters of {@link validAddInvocation}. */
export interface ValidAddOptions {
  /** CNI_NETNS: path of the container's network namespace. */
  netns: string;
  /** CNI_PATH directories. */
  path: readonly string[];
  /** CNI_IFNAME. Default `"eth0"`. */
  ifname?: string | undefined;
  /** CNI_CONTAINERID. Default: a fresh {@link randomContainerId}. */
  containerId?: string | undefined;
  /** Environment the CNI_ variables are added to. Default {@link DEFAULT_PLUGIN_ENV}. */
  env?: Readonly<Record<string, string>> | undefined;
}

/** The valid ADD invocation of `conf` that {@link runBadInput} cases derive their malformed ones from. */
export function validAddInvocation(conf: NetConf, o: ValidAddOptions): Invocation {
  return {
    env: {
      ...(o.env ?? DEFAULT_PLUGIN_ENV),
      CNI_COMMAND: "ADD",
      CNI_CONTAINERID: o.containerId ?? randomContainerId(),
      CNI_NETNS: o.netns,
      CNI_IFNAME: o.ifname ?? "eth0",
      CNI_PATH: o.path.join(":"),
    },
    stdin: JSON.stringify(conf),
  };
}

/** One malformed input. */
export interface BadInputCase {
  /** Short name. */
  name: string;
  /** Derives the malformed invocation from a valid ADD (`conf` is its parsed stdin). */
  build(valid: Invocation, conf: NetConf): Invocation;
  /**
   * The CNI error code expected, or `"any"` where the spec prescribes none (the plugin must still exit
   * non-zero with an error object).
   */
  expectCode: number | "any";
  /**
   * `"should"` for cases where a widespread, deliberate deviation exists; a miss is reported but does not
   * fail the scenario. Default: `"must"`.
   */
  severity?: "must" | "should";
}

function withEnv(v: Invocation, patch: Record<string, string | undefined>): Invocation {
  const env = { ...v.env };
  for (const [k, val] of Object.entries(patch)) {
    if (val === undefined) delete env[k];
    else env[k] = val;
  }
  return { env, stdin: v.stdin };
}

function withConf(v: Invocation, conf: NetConf, patch: (c: Record<string, unknown>) => void): Invocation {
  const c = structuredClone(conf) as Record<string, unknown>;
  patch(c);
  return { env: v.env, stdin: JSON.stringify(c) };
}

/**
 * Cases every plugin built on libcni's skeleton (or ours) must reject with the given code: missing and
 * malformed parameters (4), undecodable stdin (6), unsupported version (1), invalid network name (7),
 * and a namespace path that does not exist (any code).
 */
export const SPEC_BAD_INPUTS: readonly BadInputCase[] = Object.freeze([
  {
    // libcni's skeleton prints an "about" text and exits 0 when run by hand without CNI_COMMAND.
    name: "CNI_COMMAND missing",
    expectCode: 4,
    severity: "should",
    build: (v) => withEnv(v, { CNI_COMMAND: undefined }),
  },
  { name: "CNI_COMMAND unknown", expectCode: 4, build: (v) => withEnv(v, { CNI_COMMAND: "FROB" }) },
  {
    name: "CNI_CONTAINERID missing",
    expectCode: 4,
    build: (v) => withEnv(v, { CNI_CONTAINERID: undefined }),
  },
  { name: "CNI_NETNS missing", expectCode: 4, build: (v) => withEnv(v, { CNI_NETNS: undefined }) },
  { name: "CNI_IFNAME missing", expectCode: 4, build: (v) => withEnv(v, { CNI_IFNAME: undefined }) },
  {
    name: "CNI_IFNAME 16 bytes",
    expectCode: 4,
    build: (v) => withEnv(v, { CNI_IFNAME: "abcdefghijklmnop" }),
  },
  { name: "CNI_IFNAME with /", expectCode: 4, build: (v) => withEnv(v, { CNI_IFNAME: "et/h0" }) },
  { name: "CNI_IFNAME is ..", expectCode: 4, build: (v) => withEnv(v, { CNI_IFNAME: ".." }) },
  {
    name: "CNI_CONTAINERID bad chars",
    expectCode: 4,
    build: (v) => withEnv(v, { CNI_CONTAINERID: "-bad;id" }),
  },
  { name: "stdin empty", expectCode: 6, build: (v) => ({ env: v.env, stdin: "" }) },
  {
    name: "stdin truncated JSON",
    expectCode: 6,
    build: (v) => ({ env: v.env, stdin: String(v.stdin).slice(0, 20) }),
  },
  { name: "stdin not JSON", expectCode: 6, build: (v) => ({ env: v.env, stdin: "cniVersion=1.0.0" }) },
  {
    name: "cniVersion unknown",
    expectCode: 1,
    build: (v, c) => withConf(v, c, (x) => (x.cniVersion = "99.0.0")),
  },
  { name: "name missing", expectCode: 7, build: (v, c) => withConf(v, c, (x) => delete x.name) },
  { name: "name invalid", expectCode: 7, build: (v, c) => withConf(v, c, (x) => (x.name = "bad name!")) },
  {
    name: "CNI_NETNS does not exist",
    expectCode: "any",
    build: (v) => withEnv(v, { CNI_NETNS: `/var/run/netns/mgcni-absent-${randomBytes(4).toString("hex")}` }),
  },
]);

/** Outcome of one bad input. */
export interface BadInputOutcome {
  /** Case name. */
  name: string;
  /** Whether the plugin behaved as expected. */
  ok: boolean;
  /** What was observed. */
  observed: string;
  /** The raw execution. */
  exec: RawExecResult;
}

/**
 * Runs one case against `bin` and judges: non-zero exit, stdout exactly one error object (no stack
 * trace, no extra text) whose code is the expected one.
 */
export async function runBadInput(
  bin: string,
  c: BadInputCase,
  valid: Invocation,
  conf: NetConf,
  options: RawExecOptions = {},
): Promise<BadInputOutcome> {
  const inv = c.build(valid, conf);
  const exec = await rawExec(bin, inv.env, inv.stdin, options);
  let obj: ReturnType<typeof parseErrorObject>;
  try {
    obj = parseErrorObject(JSON.parse(exec.stdout));
  } catch {
    obj = undefined;
  }
  const want = c.expectCode === "any" ? "an error" : `code ${c.expectCode}`;
  let ok = true;
  let observed: string;
  if (exec.exitCode === 0) {
    ok = false;
    observed = `exit 0 (wanted ${want})`;
  } else if (obj === undefined) {
    ok = false;
    observed = `exit ${exec.exitCode}, stdout is not an error object: ${JSON.stringify(exec.stdout.slice(0, 120))}`;
  } else {
    observed = `exit ${exec.exitCode}, code ${obj.code}: ${obj.msg}`;
    if (c.expectCode !== "any" && obj.code !== c.expectCode) {
      ok = false;
      observed += ` (wanted ${want})`;
    }
  }
  return { name: c.name, ok, observed, exec };
}

function mutate(patch: (c: Record<string, unknown>) => void): BadInputCase["build"] {
  return (v, c) => withConf(v, c, patch);
}

/**
 * {@link SPEC_BAD_INPUTS} plus the cases a plugin built on `@margay/cni`'s skeleton (or one as strict)
 * rejects with a precise code: wrong types of well-known fields (7, with the JSON path), non-object
 * stdin (6), oversize stdin (5), malformed paths and `CNI_ARGS` (4). libcni-based plugins answer several
 * of these differently (e.g. 6 for a wrong type), which the spec allows.
 */
export const STRICT_BAD_INPUTS: readonly BadInputCase[] = Object.freeze([
  ...SPEC_BAD_INPUTS.map((c) => ({ ...c, severity: "must" as const })),
  { name: "CNI_COMMAND lowercase", expectCode: 4, build: (v) => withEnv(v, { CNI_COMMAND: "add" }) },
  { name: "CNI_CONTAINERID empty", expectCode: 4, build: (v) => withEnv(v, { CNI_CONTAINERID: "" }) },
  { name: "CNI_IFNAME empty", expectCode: 4, build: (v) => withEnv(v, { CNI_IFNAME: "" }) },
  { name: "CNI_IFNAME with space", expectCode: 4, build: (v) => withEnv(v, { CNI_IFNAME: "eth 0" }) },
  { name: "CNI_IFNAME with colon", expectCode: 4, build: (v) => withEnv(v, { CNI_IFNAME: "eth0:1" }) },
  {
    name: "CNI_IFNAME 8 two-byte chars",
    expectCode: 4,
    build: (v) => withEnv(v, { CNI_IFNAME: "éééééééé" }),
  },
  { name: "CNI_NETNS relative", expectCode: 4, build: (v) => withEnv(v, { CNI_NETNS: "var/run/netns/x" }) },
  {
    name: "CNI_NETNS with ..",
    expectCode: 4,
    build: (v) => withEnv(v, { CNI_NETNS: "/var/run/netns/../netns/x" }),
  },
  { name: "CNI_ARGS pair without =", expectCode: 4, build: (v) => withEnv(v, { CNI_ARGS: "K8S_POD_NAME" }) },
  {
    name: "CNI_ARGS IgnoreUnknown not a boolean",
    expectCode: 4,
    build: (v) => withEnv(v, { CNI_ARGS: "IgnoreUnknown=perhaps" }),
  },
  { name: "stdin JSON array", expectCode: 6, build: (v) => ({ env: v.env, stdin: "[]" }) },
  { name: "stdin JSON string", expectCode: 6, build: (v) => ({ env: v.env, stdin: '"cniVersion"' }) },
  {
    name: "stdin binary garbage",
    expectCode: 6,
    build: (v) => ({ env: v.env, stdin: Buffer.from([0xff, 0xfe, 0x00, 0x7b]) }),
  },
  {
    name: "stdin 2 MiB",
    expectCode: 5,
    build: (v, c) => ({
      env: v.env,
      stdin: JSON.stringify({ ...c, args: { pad: "x".repeat(2 * 1024 * 1024) } }),
    }),
  },
  { name: "cniVersion 0.2.0", expectCode: 1, build: mutate((x) => (x.cniVersion = "0.2.0")) },
  { name: "cniVersion a number", expectCode: 7, build: mutate((x) => (x.cniVersion = 1)) },
  { name: "cniVersion missing", expectCode: 7, build: mutate((x) => delete x.cniVersion) },
  { name: "cniVersion malformed", expectCode: 7, build: mutate((x) => (x.cniVersion = "1.0")) },
  { name: "name a number", expectCode: 7, build: mutate((x) => (x.name = 42)) },
  { name: "type missing", expectCode: 7, build: mutate((x) => delete x.type) },
  { name: "type empty", expectCode: 7, build: mutate((x) => (x.type = "")) },
  { name: "ipam a string", expectCode: 7, build: mutate((x) => (x.ipam = "host-local")) },
  {
    name: "ipam without type",
    expectCode: 7,
    build: mutate((x) => (x.ipam = { ...((x.ipam as object) ?? {}), type: undefined })),
  },
  {
    name: "dns nameserver not an IP",
    expectCode: 7,
    build: mutate((x) => (x.dns = { nameservers: ["dns.example"] })),
  },
  {
    name: "capabilities value not boolean",
    expectCode: 7,
    build: mutate((x) => (x.capabilities = { portMappings: "yes" })),
  },
  { name: "args an array", expectCode: 7, build: mutate((x) => (x.args = [])) },
  { name: "runtimeConfig a number", expectCode: 7, build: mutate((x) => (x.runtimeConfig = 1)) },
  { name: "prevResult not an object", expectCode: 7, build: mutate((x) => (x.prevResult = "none")) },
  {
    name: "prevResult with a bad address",
    expectCode: 7,
    build: mutate((x) => (x.prevResult = { cniVersion: x.cniVersion, ips: [{ address: "10.0.0.300/24" }] })),
  },
]);
