/**
 * One cold list of every pod into an informer cache, in a fresh process: `ours` (@margay/kube-adapter's
 * informer) or `peer` (@kubernetes/client-node's makeInformer). Prints one JSON line: the time from
 * creating the informer to its cache holding the list, the object count, a digest of what the cache
 * holds (the parent checks both sides hold the same objects), and RSS.
 *
 *   tsx bench/list-child.ts ours|peer <server url>
 */
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { createHttpTransport, createInformer, KubeResources, loadKubeConfig } from "../src/index.js";

interface PodLike {
  metadata?: { namespace?: string; name?: string; resourceVersion?: string; labels?: Record<string, string> };
  status?: { podIP?: string };
}

/** Order-independent digest of the fields every consumer reads. */
function digest(pods: Iterable<PodLike>): string {
  const lines: string[] = [];
  for (const p of pods)
    lines.push(
      `${p.metadata?.namespace}/${p.metadata?.name} ${p.metadata?.resourceVersion} ${p.status?.podIP} ${JSON.stringify(p.metadata?.labels ?? {})}`,
    );
  lines.sort();
  return createHash("sha256").update(lines.join("\n")).digest("hex").slice(0, 16);
}

const [side, url] = process.argv.slice(2);
if (!url || (side !== "ours" && side !== "peer")) throw new Error("usage: list-child.ts ours|peer <url>");

let result: { ms: number; objects: number; digest: string; version?: string };
if (side === "ours") {
  const transport = createHttpTransport({ server: url });
  const t0 = performance.now();
  const informer = createInformer({ transport, resource: KubeResources.pods });
  await informer.waitForSync();
  const ms = performance.now() - t0;
  result = { ms, objects: informer.cache.size, digest: digest(informer.cache.values() as Iterable<PodLike>) };
  await informer.close();
  transport.close();
} else {
  const k8s = await import("@kubernetes/client-node");
  const kc = loadKubeConfig({
    text: JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "fake", cluster: { server: url, "insecure-skip-tls-verify": true } }],
      users: [{ name: "u", user: {} }],
      contexts: [{ name: "c", context: { cluster: "fake", user: "u" } }],
      "current-context": "c",
    }),
  });
  const api = kc.makeApiClient(k8s.CoreV1Api);
  const t0 = performance.now();
  const informer = k8s.makeInformer(kc, "/api/v1/pods", () => api.listPodForAllNamespaces());
  // start() resolves once the list is in its cache and the watch request is made.
  await informer.start();
  const ms = performance.now() - t0;
  const list = informer.list() as PodLike[];
  result = {
    ms,
    objects: list.length,
    digest: digest(list),
    version: createRequire(import.meta.url)("@kubernetes/client-node/package.json").version as string,
  };
  await informer.stop();
}
process.stdout.write(`${JSON.stringify({ ...result, rssMiB: process.memoryUsage().rss / 2 ** 20 })}\n`);
process.exit(0);
