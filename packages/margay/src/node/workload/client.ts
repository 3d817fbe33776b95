/**
 * The workload API client, for the `margay` CNI plugin and the cluster lab. Imports only `node:net`
 * and the protocol's own light modules (no IPAM, datastore or dataplane code), so the plugin's bundle
 * stays small. It speaks the one HTTP/1.1 exchange it needs itself (a request per connection, the
 * reply read to the end): loading `node:http` was the largest part of the plugin's start (measured in
 * bench/cni-plugin.ts).
 *
 * @packageDocumentation
 */
import { connect } from "node:net";
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
 * One HTTP/1.1 reply read to the end of the connection: its status and body (`content-length` or
 * chunked), or why it is not a whole reply.
 */
export function parseReply(raw: Buffer): { status: number; body: Buffer } | string {
  const end = raw.indexOf("\r\n\r\n");
  if (end < 0) return "no complete header";
  const lines = raw.subarray(0, end).toString("latin1").split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "");
  if (m === null) return "not an HTTP/1.1 status line";
  const headers = new Map<string, string>();
  for (const l of lines.slice(1)) {
    const i = l.indexOf(":");
    if (i > 0) headers.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim());
  }
  let body = raw.subarray(end + 4);
  if (/chunked/i.test(headers.get("transfer-encoding") ?? "")) {
    const parts: Buffer[] = [];
    for (let at = 0; ; ) {
      const eol = body.indexOf("\r\n", at);
      if (eol < 0) return "chunked body cut short";
      const size = Number.parseInt(body.subarray(at, eol).toString("latin1"), 16);
      if (!Number.isFinite(size) || size < 0) return "bad chunk size";
      if (size === 0) break;
      if (eol + 2 + size > body.length) return "chunked body cut short";
      parts.push(body.subarray(eol + 2, eol + 2 + size));
      at = eol + 4 + size;
    }
    body = Buffer.concat(parts);
  } else if (headers.has("content-length")) {
    const n = Number(headers.get("content-length"));
    if (!Number.isInteger(n) || n < 0 || body.length < n) return `body shorter than content-length ${n}`;
    body = body.subarray(0, n);
  }
  return { status: Number(m[1]), body };
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
    const payload = body === undefined ? "" : JSON.stringify(body);
    // One request per connection (`connection: close`): a CNI plugin makes one call per process, and an
    // idle kept connection would hold up the agent's close.
    const head =
      `${verb === "status" ? "GET" : "POST"} ${WORKLOAD_API_PATHS[verb]} HTTP/1.1\r\n` +
      `host: margay-agent\r\nconnection: close\r\n${TIMEOUT_HEADER}: ${timeoutMs}\r\n` +
      (body === undefined
        ? ""
        : `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(payload)}\r\n`) +
      "\r\n";
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        callOptions.signal?.removeEventListener("abort", onAbort);
        sock.destroy();
        fn();
      };
      const onAbort = () =>
        finish(() =>
          reject(
            new WorkloadApiError(WorkloadErrorCode.DeadlineExceeded, `${verb}: aborted by the caller`, {
              details: { verb, socket: socketPath },
              cause: callOptions.signal?.reason,
            }),
          ),
        );
      const timer = setTimeout(
        () =>
          finish(() =>
            reject(
              new WorkloadApiError(
                WorkloadErrorCode.DeadlineExceeded,
                `${verb}: no reply within ${timeoutMs} ms`,
                { details: { verb, timeoutMs, socket: socketPath } },
              ),
            ),
          ),
        timeoutMs,
      );
      const sock = connect(socketPath);
      if (callOptions.signal?.aborted) {
        onAbort();
        return;
      }
      callOptions.signal?.addEventListener("abort", onAbort, { once: true });
      sock.once("connect", () => sock.write(head + payload));
      sock.once("error", (e: NodeJS.ErrnoException) => {
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
      const chunks: Buffer[] = [];
      sock.on("data", (c: Buffer) => chunks.push(c));
      // The agent closes the connection after its reply (`connection: close`): the reply is complete
      // when the stream ends, and must then be whole.
      sock.once("end", () => {
        const reply = parseReply(Buffer.concat(chunks));
        if (typeof reply === "string") {
          finish(() => reject(protocolError(`${verb}: reply interrupted: ${reply}`, { verb })));
          return;
        }
        const text = reply.body.toString("utf8");
        if (reply.status !== 200) {
          finish(() => reject(fromReply(reply.status, text)));
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
  }

  return {
    add: (req, o) => call("add", req, o),
    del: (req, o) => call("del", req, o),
    check: (req, o) => call("check", req, o),
    status: (o) => call("status", undefined, o),
    gc: (req, o) => call("gc", req, o),
  };
}
