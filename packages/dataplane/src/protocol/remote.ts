import { spawn } from "node:child_process";
import { connect } from "node:net";
import type { Readable, Writable } from "node:stream";
import { type Logger, silentLogger } from "@margay/api";
import {
  type ApplyResult,
  type DataplaneDriver,
  type DataplaneSnapshot,
  logRejectedBatch,
} from "../driver.js";
import { DataplaneError, DataplaneErrorCode, isDataplaneError, throwIfAborted } from "../errors.js";
import { type Envelope, PROTOCOL_VERSION, createFrameDecoder, decodeEnvelope, encodeFrame } from "./codec.js";

/** A {@link DataplaneDriver} whose implementation runs on the other side of a framed stream. */
export interface RemoteDataplane extends DataplaneDriver {
  /** Implementation name and protocol version the peer announced. */
  readonly peer: { readonly implementation: string; readonly version: number };
  /** Process id of the driver when started by {@link spawnDataplane}. */
  readonly pid?: number | undefined;
}

/** Options of {@link createRemoteDataplane}. */
export interface RemoteDataplaneOptions {
  /** Responses from the driver (a child's stdout, or a socket). */
  readonly input: Readable;
  /** Requests to the driver (a child's stdin, or the same socket). */
  readonly output: Writable;
  /** Called by `close()` after the peer acknowledged (or the stream died): end processes, sockets. */
  readonly onClose?: (() => Promise<void>) | undefined;
  /** Frame size limit. Default 64 MiB. */
  readonly maxFrameBytes?: number | undefined;
  /** Aborts the handshake. */
  readonly signal?: AbortSignal | undefined;
  /**
   * Structured logger (pino-compatible); records carry `component: "dataplane", remote: true`. Every batch
   * the driver rejects (`error`, "dataplane batch rejected") and a lost driver stream (`error`) are logged.
   * Default: silent.
   */
  readonly logger?: Logger | undefined;
}

const KNOWN_CODES: ReadonlySet<string> = new Set(Object.values(DataplaneErrorCode));

/**
 * The host side of the protocol over an existing stream pair: handshake, then one request per call,
 * answered in order. Remote errors come back as {@link DataplaneError}s with the remote code.
 */
export async function createRemoteDataplane(options: RemoteDataplaneOptions): Promise<RemoteDataplane> {
  const decoder = createFrameDecoder(options.maxFrameBytes);
  const pending = new Map<number, { resolve: (e: Envelope) => void; reject: (e: unknown) => void }>();
  let nextId = 1;
  let broken: DataplaneError | undefined;
  let closed = false;
  // Set when close() starts: the peer ending the stream after our close request is no loss.
  let closing = false;
  const log = (options.logger ?? silentLogger).child({ component: "dataplane", remote: true });

  const fail = (err: DataplaneError) => {
    if (broken === undefined && !closing) {
      log.error({ code: err.code, error: err.message }, "dataplane driver stream lost");
    }
    broken ??= err;
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  options.input.on("data", (chunk: Buffer) => {
    try {
      for (const f of decoder.push(chunk)) {
        const env = decodeEnvelope(f);
        const p = pending.get(env.id);
        pending.delete(env.id);
        p?.resolve(env);
      }
    } catch (e) {
      fail(
        isDataplaneError(e) ? e : new DataplaneError(DataplaneErrorCode.Protocol, "bad frame", { cause: e }),
      );
    }
  });
  const onEnd = () =>
    fail(new DataplaneError(DataplaneErrorCode.Closed, "driver stream ended", { retryable: true }));
  options.input.once("end", onEnd);
  options.input.once("error", (e) =>
    fail(
      new DataplaneError(DataplaneErrorCode.Closed, "driver stream failed", { cause: e, retryable: true }),
    ),
  );
  options.output.on("error", (e) =>
    fail(
      new DataplaneError(DataplaneErrorCode.Closed, "driver stream failed", { cause: e, retryable: true }),
    ),
  );

  function request(body: Record<string, unknown>, signal?: AbortSignal): Promise<Envelope> {
    if (closed) return Promise.reject(new DataplaneError(DataplaneErrorCode.Closed, "driver is closed"));
    if (broken !== undefined) return Promise.reject(broken);
    throwIfAborted(signal);
    const id = nextId++;
    return new Promise<Envelope>((resolve, reject) => {
      const onAbort = () => {
        pending.delete(id);
        reject(
          new DataplaneError(DataplaneErrorCode.Aborted, "request aborted (the driver may still apply it)"),
        );
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      pending.set(id, {
        resolve: (env) => {
          signal?.removeEventListener("abort", onAbort);
          if ("error" in env) {
            const { code, message, retryable, detailsJson } = env.error;
            let details: Record<string, unknown> = {};
            try {
              details = JSON.parse(detailsJson || "{}") as Record<string, unknown>;
            } catch {
              // Keep the code and message even if the peer sent unreadable details.
            }
            const c = KNOWN_CODES.has(code) ? (code as DataplaneErrorCode) : DataplaneErrorCode.Remote;
            reject(new DataplaneError(c, message, { retryable, details: { ...details, remoteCode: code } }));
          } else resolve(env);
        },
        reject,
      });
      try {
        options.output.write(encodeFrame({ id, ...body } as Envelope));
      } catch (e) {
        pending.delete(id);
        reject(e);
      }
    });
  }

  const hello = await request(
    { hello: { version: PROTOCOL_VERSION, implementation: "margay-host" } },
    options.signal,
  );
  if (!("helloAck" in hello) || hello.helloAck.version !== PROTOCOL_VERSION) {
    throw new DataplaneError(DataplaneErrorCode.Protocol, "handshake failed", { details: { reply: hello } });
  }
  const peer = { implementation: hello.helloAck.implementation, version: hello.helloAck.version };

  const close = async () => {
    if (closed) return;
    closing = true;
    if (broken === undefined) await request({ close: {} }).catch(() => undefined);
    closed = true;
    options.input.off("end", onEnd);
    fail(new DataplaneError(DataplaneErrorCode.Closed, "driver is closed"));
    await options.onClose?.();
  };

  return {
    peer,
    async apply(updates, callOptions = {}): Promise<ApplyResult> {
      const env = await request({ apply: { updates } }, callOptions.signal).catch((e: unknown) => {
        logRejectedBatch(log, updates, e);
        throw e;
      });
      if (!("applied" in env))
        throw new DataplaneError(DataplaneErrorCode.Protocol, "unexpected reply to apply");
      return env.applied;
    },
    async snapshot(callOptions = {}): Promise<DataplaneSnapshot> {
      const env = await request({ snapshot: {} }, callOptions.signal);
      if (!("snapshotResult" in env))
        throw new DataplaneError(DataplaneErrorCode.Protocol, "unexpected reply to snapshot");
      return env.snapshotResult;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Options of {@link spawnDataplane}. */
export interface SpawnDataplaneOptions {
  /** Working directory of the child. */
  readonly cwd?: string | undefined;
  /** Environment of the child. Default: inherited. */
  readonly env?: NodeJS.ProcessEnv | undefined;
  /** How long `close()` waits for the child to exit before SIGKILL (ms). Default 5000. */
  readonly exitTimeoutMs?: number | undefined;
  /** Aborts start-up. */
  readonly signal?: AbortSignal | undefined;
  /** Structured logger, as {@link RemoteDataplaneOptions.logger}. Default: silent. */
  readonly logger?: Logger | undefined;
}

/**
 * Starts a driver executable (`argv`, no shell) that serves the protocol on its stdin/stdout (its stderr
 * is passed through), and returns it as a {@link DataplaneDriver}. `close()` asks it to close, then
 * waits for it to exit.
 */
export async function spawnDataplane(
  argv: readonly string[],
  options: SpawnDataplaneOptions = {},
): Promise<RemoteDataplane> {
  const [file, ...args] = argv;
  if (file === undefined) throw new DataplaneError(DataplaneErrorCode.InvalidOptions, "empty argv");
  const child = spawn(file, args, {
    stdio: ["pipe", "pipe", "inherit"],
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    ...(options.env === undefined ? {} : { env: options.env }),
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const spawnError = new Promise<never>((_, reject) =>
    child.once("error", (e) =>
      reject(
        new DataplaneError(DataplaneErrorCode.CommandFailed, "driver could not be started", { cause: e }),
      ),
    ),
  );
  const onClose = async () => {
    child.stdin.end();
    const t = setTimeout(() => child.kill("SIGKILL"), options.exitTimeoutMs ?? 5000);
    await exited;
    clearTimeout(t);
  };
  try {
    const remote = await Promise.race([
      createRemoteDataplane({
        input: child.stdout,
        output: child.stdin,
        onClose,
        signal: options.signal,
        logger: options.logger,
      }),
      spawnError,
    ]);
    return Object.assign(remote, { pid: child.pid });
  } catch (e) {
    child.kill("SIGKILL");
    throw e;
  }
}

/** Connects to a driver serving the protocol on a unix socket at `path`. */
export async function connectDataplane(
  path: string,
  options: { signal?: AbortSignal | undefined } = {},
): Promise<RemoteDataplane> {
  const socket = connect(path);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", (e) =>
      reject(
        new DataplaneError(DataplaneErrorCode.Closed, "cannot connect to driver socket", {
          cause: e,
          details: { path },
        }),
      ),
    );
  });
  return createRemoteDataplane({
    input: socket,
    output: socket,
    signal: options.signal,
    onClose: async () => {
      socket.end();
    },
  });
}
