/**
 * The workload API client, for the `margay` CNI plugin and the cluster lab. Imports only `node:http`
 * and the protocol's own light modules (no IPAM, datastore or dataplane code), so the plugin's bundle
 * stays small.
 *
 * @packageDocumentation
 */
import { request } from "node:http";
import { WorkloadApiError, WorkloadErrorCode, isWorkloadErrorCode } from "./errors.js";
import {
  TIMEOUT_HEADER,
  WORKLOAD_API_PATHS,
  type WorkloadAddReply,
  type WorkloadAddRequest,
  type WorkloadCheckReply,
  type WorkloadCheckRequest,
  type WorkloadDelReply,
  type WorkloadDelRequest,
  type WorkloadGcReply,
  type WorkloadGcRequest,
  type WorkloadStatusReply,
  type WorkloadVerb,
} from "./protocol.js";

/** Options of {@link createWorkloadClient}. */
export interface WorkloadClientOptions {
  /** Per-call deadline, ms; also sent to the agent so it gives up (and rolls back) no later. Default 60 000. */
  readonly timeoutMs?: number | undefined;
}

/** Per-call options. */
export interface WorkloadCallOptions {
  readonly signal?: AbortSignal | undefined;
  /** Overrides the client's `timeoutMs` for this call. */
  readonly timeoutMs?: number | undefined;
}

/** Typed calls of the workload API. Errors are {@link WorkloadApiError}s. */
export interface WorkloadClient {
  add(req: WorkloadAddRequest, options?: WorkloadCallOptions): Promise<WorkloadAddReply>;
  del(req: WorkloadDelRequest, options?: WorkloadCallOptions): Promise<WorkloadDelReply>;
  check(req: WorkloadCheckRequest, options?: WorkloadCallOptions): Promise<WorkloadCheckReply>;
  status(options?: WorkloadCallOptions): Promise<WorkloadStatusReply>;
  gc(req: WorkloadGcRequest, options?: WorkloadCallOptions): Promise<WorkloadGcReply>;
}

/** Socket errors that mean "no agent here (now)". */
const UNAVAILABLE = new Set(["ENOENT", "ECONNREFUSED", "ECONNRESET", "EPIPE", "EACCES", "ENOTSOCK"]);

function protocolError(message: string, details: Record<string, unknown>): WorkloadApiError {
  return new WorkloadApiError(WorkloadErrorCode.ProtocolError, message, { details });
}

function fromReply(status: number, text: string): WorkloadApiError {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return protocolError(`agent replied ${status} with a body that is not JSON`, { status });
  }
  const b = body as { code?: unknown; message?: unknown; retryable?: unknown; details?: unknown };
  if (typeof body !== "object" || body === null || !isWorkloadErrorCode(b.code)) {
    return protocolError(`agent replied ${status} without a known error code`, { status, code: b?.code });
  }
  return new WorkloadApiError(b.code, typeof b.message === "string" ? b.message : b.code, {
    retryable: typeof b.retryable === "boolean" ? b.retryable : undefined,
    details:
      typeof b.details === "object" && b.details !== null ? (b.details as Record<string, unknown>) : {},
  });
}

/**
 * A client of the agent listening on `socketPath`. A missing socket or refused connection is the
 * retryable `agent-unavailable` (the plugin reports CNI code 11 for ADD, 50 for STATUS); a call that
 * outlives its deadline is `deadline-exceeded`; an error reply is the agent's typed error.
 */
export function createWorkloadClient(
  socketPath: string,
  options: WorkloadClientOptions = {},
): WorkloadClient {
  const defaultTimeout = options.timeoutMs ?? 60_000;

  function call<T>(verb: WorkloadVerb, body: unknown, callOptions: WorkloadCallOptions = {}): Promise<T> {
    const timeoutMs = callOptions.timeoutMs ?? defaultTimeout;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        callOptions.signal?.removeEventListener("abort", onAbort);
        fn();
      };
      const req = request({
        socketPath,
        path: WORKLOAD_API_PATHS[verb],
        method: verb === "status" ? "GET" : "POST",
        // One request per connection: a CNI plugin makes one call per process, and an idle pooled
        // connection would hold up the agent's close.
        agent: false,
        headers: {
          connection: "close",
          [TIMEOUT_HEADER]: String(timeoutMs),
          ...(payload === undefined
            ? {}
            : { "content-type": "application/json", "content-length": Buffer.byteLength(payload) }),
        },
      });
      const timer = setTimeout(() => {
        finish(() =>
          reject(
            new WorkloadApiError(
              WorkloadErrorCode.DeadlineExceeded,
              `${verb}: no reply within ${timeoutMs} ms`,
              {
                details: { verb, timeoutMs, socket: socketPath },
              },
            ),
          ),
        );
        req.destroy();
      }, timeoutMs);
      const onAbort = () => {
        finish(() =>
          reject(
            new WorkloadApiError(WorkloadErrorCode.DeadlineExceeded, `${verb}: aborted by the caller`, {
              details: { verb, socket: socketPath },
              cause: callOptions.signal?.reason,
            }),
          ),
        );
        req.destroy();
      };
      if (callOptions.signal?.aborted) {
        onAbort();
        return;
      }
      callOptions.signal?.addEventListener("abort", onAbort, { once: true });
      req.once("error", (e: NodeJS.ErrnoException) => {
        finish(() =>
          reject(
            UNAVAILABLE.has(e.code ?? "")
              ? new WorkloadApiError(
                  WorkloadErrorCode.AgentUnavailable,
                  `margay-node agent not reachable on ${socketPath}: ${e.code}`,
                  { details: { socket: socketPath, errno: e.code }, cause: e },
                )
              : new WorkloadApiError(WorkloadErrorCode.ProtocolError, `${verb}: ${e.message}`, {
                  details: { socket: socketPath, errno: e.code },
                  cause: e,
                }),
          ),
        );
      });
      req.once("response", (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.once("error", (e) =>
          finish(() => reject(protocolError(`${verb}: reply interrupted: ${e.message}`, { verb }))),
        );
        res.once("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          const status = res.statusCode ?? 0;
          if (status !== 200) {
            finish(() => reject(fromReply(status, text)));
            return;
          }
          try {
            const value = JSON.parse(text) as T;
            finish(() => resolve(value));
          } catch {
            finish(() => reject(protocolError(`${verb}: reply is not JSON`, { verb })));
          }
        });
      });
      req.end(payload);
    });
  }

  return {
    add: (req, o) => call("add", req, o),
    del: (req, o) => call("del", req, o),
    check: (req, o) => call("check", req, o),
    status: (o) => call("status", undefined, o),
    gc: (req, o) => call("gc", req, o),
  };
}
