/**
 * `convert`: Calico `projectcalico.org/v3` resources and Kubernetes NetworkPolicies (and Namespaces, as
 * the Profiles the kube-adapter would write) to Margay `margay.io/v1` YAML or JSON. Reads files only;
 * never touches a datastore.
 *
 * @packageDocumentation
 */

import type { CommandContext } from "../context.js";
import { CtlError, CtlErrorCode } from "../errors.js";
import { loadSources } from "../manifests.js";
import { json, yaml } from "../output.js";

/** `convert -f FILE [-o yaml|json]`. */
export async function convert(
  ctx: CommandContext,
  opts: { filename?: string[] | undefined; output?: string | undefined },
): Promise<void> {
  const output = opts.output ?? "yaml";
  if (output !== "yaml" && output !== "json")
    throw new CtlError(CtlErrorCode.Usage, `-o: convert prints yaml or json, got ${JSON.stringify(output)}`);
  const items = await loadSources(opts.filename ?? [], ctx.io);
  for (const it of items) for (const w of it.warnings) ctx.io.err(`warning: ${it.origin}: ${w}\n`);
  const resources = items.map((i) => {
    const { resourceVersion: _r, uid: _u, creationTimestamp: _c, ...metadata } = i.resource.metadata;
    return { ...i.resource, metadata };
  });
  if (output === "json")
    ctx.io.out(
      json(resources.length === 1 ? resources[0] : { apiVersion: "v1", kind: "List", items: resources }),
    );
  else ctx.io.out(resources.map((r) => yaml(r)).join("---\n"));
}
