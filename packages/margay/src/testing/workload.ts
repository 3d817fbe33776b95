/**
 * The lab's way to add and delete pods: the agent's workload API (v1, HTTP + JSON over its unix socket),
 * exactly as the CNI plugin calls it.
 *
 * @packageDocumentation
 */
import { request } from "node:http";
import { ClusterLabError } from "./errors.js";
import type { LabWorkloadApi, LabWorkloadRequest } from "./cluster-lab.js";

function post(socketPath: string, path: string, body: unknown, timeoutMs: number): Promise<unknown> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath,
        path,
        method: "POST",
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(payload),
          "margay-timeout-ms": String(timeoutMs),
        },
        timeout: timeoutMs,
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          text += c;
        });
        res.on("end", () => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = text;
          }
          if (res.statusCode === 200) resolve(parsed);
          else {
            const e = parsed as { code?: string; message?: string; retryable?: boolean; details?: unknown };
            reject(
              new ClusterLabError(
                "workload-failed",
                `${path} ${res.statusCode}: ${e.code ?? ""} ${e.message ?? text}`,
                {
                  retryable: e.retryable === true,
                  details: { path, status: res.statusCode, reply: parsed },
                },
              ),
            );
          }
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", (err) =>
      reject(
        new ClusterLabError("workload-failed", `${path} via ${socketPath}: ${err.message}`, {
          retryable: true,
          details: { path, socketPath },
          cause: err,
        }),
      ),
    );
    req.end(payload);
  });
}

const identity = (r: LabWorkloadRequest) => ({
  containerId: r.containerId,
  ifName: r.ifName,
  namespace: r.namespace,
  pod: r.name,
});

/** A {@link LabWorkloadApi} on the agents' workload sockets. */
export function createLabWorkloadApi(options: { readonly timeoutMs?: number } = {}): LabWorkloadApi {
  const timeout = options.timeoutMs ?? 60_000;
  return {
    async add(r) {
      const reply = (await post(
        r.host.socket,
        "/v1/workloads/add",
        {
          ...identity(r),
          netns: r.netns,
          ...(Object.keys(r.labels).length === 0 ? {} : { labels: r.labels }),
          ...(r.ips === undefined ? {} : { ips: r.ips }),
        },
        timeout,
      )) as { ips?: readonly { address: string }[] };
      return { ips: (reply.ips ?? []).map((i) => i.address.split("/")[0]!) };
    },
    async del(r) {
      await post(r.host.socket, "/v1/workloads/del", { ...identity(r), netns: r.netns }, timeout);
    },
  };
}
