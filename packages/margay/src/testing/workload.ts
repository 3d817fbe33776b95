/**
 * The lab's way to add and delete pods: the agent's workload API client, exactly as the CNI plugin
 * calls it (one client per host socket).
 *
 * @packageDocumentation
 */
import { createWorkloadClient, type WorkloadClient } from "../node/workload/client.js";
import type { LabWorkloadApi, LabWorkloadRequest } from "./cluster-lab.js";
import { ClusterLabError } from "./errors.js";

const identity = (r: LabWorkloadRequest) => ({
  containerId: r.containerId,
  ifName: r.ifName,
  namespace: r.namespace,
  pod: r.name,
});

/** Wraps a workload API error with the pod and host it was for (the agent's code stays in `details`). */
function failed(verb: string, r: LabWorkloadRequest, e: unknown): ClusterLabError {
  const err = e as { code?: string; message?: string; retryable?: boolean; details?: unknown };
  return new ClusterLabError(
    "workload-failed",
    `${verb} ${r.namespace}/${r.name} on ${r.host.name}: ${err.code ?? ""} ${err.message ?? String(e)}`,
    {
      retryable: err.retryable === true,
      details: {
        verb,
        host: r.host.name,
        pod: `${r.namespace}/${r.name}`,
        code: err.code,
        agent: err.details,
      },
      cause: e,
    },
  );
}

/** A {@link LabWorkloadApi} on the agents' workload sockets. */
export function createLabWorkloadApi(options: { readonly timeoutMs?: number } = {}): LabWorkloadApi {
  const clients = new Map<string, WorkloadClient>();
  const client = (socket: string) => {
    let c = clients.get(socket);
    if (c === undefined) {
      c = createWorkloadClient(socket, { timeoutMs: options.timeoutMs ?? 60_000 });
      clients.set(socket, c);
    }
    return c;
  };
  return {
    async add(r) {
      try {
        const reply = await client(r.host.socket).add({
          ...identity(r),
          netns: r.netns,
          ...(Object.keys(r.labels).length === 0 ? {} : { labels: r.labels }),
          ...(r.ips === undefined ? {} : { ips: r.ips }),
          ...(r.pools === undefined ? {} : { pools: r.pools }),
        });
        return { ips: reply.ips.map((i) => i.address.split("/")[0]!) };
      } catch (e) {
        throw failed("add", r, e);
      }
    },
    async del(r) {
      try {
        await client(r.host.socket).del({ ...identity(r), netns: r.netns });
      } catch (e) {
        throw failed("del", r, e);
      }
    },
  };
}
