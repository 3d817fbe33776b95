/**
 * `version`: the client's version and the cluster's, read from the agents' NodeStatus reports (so it
 * works from any machine). A difference of major or minor version is a warning on stderr, never a
 * refusal: an operator must be able to run an older or newer client against a cluster mid-upgrade.
 *
 * @packageDocumentation
 */

import type { StoredObject } from "@margay/datastore";
import type { CommandContext } from "../context.js";
import { toCtlError } from "../errors.js";
import { json } from "../output.js";

/** major.minor of a version string, or undefined. */
function minor(v: string): string | undefined {
  return /^v?(\d+)\.(\d+)/.exec(v)?.slice(1, 3).join(".");
}

/** `version [-o json]`. */
export async function version(
  ctx: CommandContext,
  client: string,
  opts: { output?: string | undefined },
): Promise<void> {
  let cluster: { versions: Record<string, string[]>; error?: string } = { versions: {} };
  try {
    const { datastore } = await ctx.session();
    const statuses = (
      await datastore.list<StoredObject & { status?: { agent?: { version?: unknown } } }>("NodeStatus")
    ).items;
    for (const s of statuses) {
      const v = s.status?.agent?.version;
      if (typeof v !== "string") continue;
      (cluster.versions[v] ??= []).push(s.metadata.name);
    }
  } catch (e) {
    cluster = { versions: {}, error: toCtlError(e).message };
  }
  const versions = Object.keys(cluster.versions).sort();
  if (opts.output === "json") {
    ctx.io.out(
      json({ client, cluster: cluster.versions, ...(cluster.error ? { error: cluster.error } : {}) }),
    );
  } else {
    ctx.io.out(`Client Version:    ${client}\n`);
    if (cluster.error !== undefined) ctx.io.out(`Cluster Version:   unknown (${cluster.error})\n`);
    else if (versions.length === 0)
      ctx.io.out("Cluster Version:   unknown (no node has reported its status)\n");
    else
      ctx.io.out(
        `Cluster Version:   ${versions.map((v) => `${v} (${cluster.versions[v]!.length} node${cluster.versions[v]!.length === 1 ? "" : "s"})`).join(", ")}\n`,
      );
  }
  const skewed = versions.filter((v) => minor(v) !== minor(client));
  if (skewed.length > 0)
    ctx.io.err(
      `${ctx.io.style.yellow("warning:")} client ${client} and cluster ${skewed.join(", ")} differ in major or minor version; commands still run, but fields new to one side may be ignored by the other\n`,
    );
}
