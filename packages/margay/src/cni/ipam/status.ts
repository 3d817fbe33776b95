/**
 * STATUS against etcd: every endpoint is probed on its own and in parallel, each within the STATUS
 * deadline, so the answer comes in bounded time even when an etcd is frozen (its TCP port still
 * accepts connections, nothing answers) and says which endpoint failed and how.
 *
 * @packageDocumentation
 */

import { CniError, CniErrorCode, isCniError } from "@margay/cni";
import type { EtcdDatastoreConfig } from "../../config/datastore-config.js";
import type { MargayIpamConfig } from "./config.js";
import { toCniError } from "./plugin.js";

interface Probe {
  endpoint: string;
  ok: boolean;
  error?: CniError | undefined;
}

async function probeOne(
  endpoint: string,
  connection: Record<string, unknown> & { endpoints: string[] },
  ms: number,
  parent: AbortSignal,
): Promise<Probe> {
  const { createEtcdDatastore } = await import("./etcd-backend.js");
  const signal = AbortSignal.any([parent, AbortSignal.timeout(ms)]);
  const ds = createEtcdDatastore({
    ...connection,
    endpoints: [endpoint],
    readAttempts: 1,
    requestTimeoutMs: ms,
    dialTimeoutMs: Math.min(ms, connection.dialTimeoutMs as number),
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      ds.list("IPPool", { signal }),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
      }),
    ]);
    return { endpoint, ok: true };
  } catch (e) {
    const mapped = toCniError(e);
    const error = isCniError(mapped)
      ? mapped
      : new CniError(CniErrorCode.PluginNotAvailable, e instanceof Error ? e.message : String(e));
    return { endpoint, ok: false, error };
  } finally {
    clearTimeout(timer);
    // close() of a client stuck on a frozen peer must not hold the answer back.
    void ds.close().catch(() => undefined);
  }
}

/**
 * Resolves when at least one endpoint answers. Otherwise throws code 7 when an endpoint refused the
 * configuration (TLS, authentication, permission), else code 50; `details` lists every endpoint's failure.
 */
export async function probeEndpoints(
  config: MargayIpamConfig,
  ms: number,
  signal: AbortSignal,
): Promise<void> {
  const ds = config.datastore as EtcdDatastoreConfig;
  const { loadDatastoreConnection } = await import("../../config/datastore-config.js");
  let connection: Awaited<ReturnType<typeof loadDatastoreConnection>>;
  try {
    connection = await loadDatastoreConnection(ds, "$.ipam.datastore");
  } catch (e) {
    throw toCniError(e);
  }
  const probes = await Promise.all(
    ds.endpoints.map((ep) =>
      probeOne(ep, connection as unknown as Record<string, unknown> & { endpoints: string[] }, ms, signal),
    ),
  );
  if (probes.some((p) => p.ok)) return;
  const details = probes
    .map(
      (p) =>
        `${p.endpoint}: ${p.error?.message ?? "failed"}${p.error?.details ? ` (${p.error.details})` : ""}`,
    )
    .join("; ");
  const misconfigured = probes.some((p) => p.error?.cniCode === CniErrorCode.InvalidNetworkConfig);
  throw new CniError(
    misconfigured ? CniErrorCode.InvalidNetworkConfig : CniErrorCode.PluginNotAvailable,
    misconfigured ? "IPAM datastore refused the configuration" : "IPAM datastore not available",
    { details },
  );
}
