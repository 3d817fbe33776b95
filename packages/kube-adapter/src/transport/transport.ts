/**
 * The HTTP seam between informers (and the client) and an API server: `request` yields the status and a
 * byte stream; `get` is its read-only shorthand.
 * The default implementation ({@link createHttpTransport}) speaks node:http/https with keep-alive; tests
 * and vendors may supply their own.
 *
 * @packageDocumentation
 */

import http from "node:http";
import https from "node:https";
import { KubeAdapterError, KubeAdapterErrorCode } from "../errors.js";

/** An answer: status, headers and the body as a stream of chunks. */
export interface KubeResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The body. Iterating it fails with a `network` {@link KubeAdapterError} if the connection drops. */
  readonly body: AsyncIterable<Buffer>;
  /** Stops reading and releases the connection. Idempotent. */
  destroy(): void;
}

/** Options of {@link KubeTransport.get}. */
export interface KubeRequestOptions {
  /** Aborting destroys the request (and its body stream). */
  signal?: AbortSignal | undefined;
}

/** Options of {@link KubeTransport.request}. */
export interface KubeWriteOptions extends KubeRequestOptions {
  /** The request body (JSON text, usually). */
  body?: Buffer | string | undefined;
  /** `Content-Type` of the body. Default `application/json` when there is a body. */
  contentType?: string | undefined;
}

/** HTTP methods the API server's verbs use. */
export type KubeHttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/** Issues requests against one API server. */
export interface KubeTransport {
  /** The server's base URL (`https://10.0.0.1:6443`). */
  readonly server: string;
  /** `GET path` (path and query, starting with `/`). Fails with `network` if no answer arrives. */
  get(path: string, options?: KubeRequestOptions): Promise<KubeResponse>;
  /**
   * Any verb, with an optional body. Answers of every status resolve (the caller reads the Status body);
   * only a missing answer fails, with `network` (or `aborted`).
   */
  request(method: KubeHttpMethod, path: string, options?: KubeWriteOptions): Promise<KubeResponse>;
  /** Releases pooled connections. */
  close(): void;
}

/** TLS and header settings applied to every request (the shape `https.RequestOptions` uses). */
export interface KubeRequestSettings {
  ca?: string | Buffer | (string | Buffer)[] | undefined;
  cert?: string | Buffer | undefined;
  key?: string | Buffer | undefined;
  rejectUnauthorized?: boolean | undefined;
  servername?: string | undefined;
  headers?: Record<string, string> | undefined;
}

/** Options of {@link createHttpTransport}. */
export interface HttpTransportOptions extends KubeRequestSettings {
  /** Base URL of the API server, `http://` or `https://`. Required. */
  server: string;
  /**
   * Called before every request to fill in credentials that may change (exec plugins, rotated tokens):
   * it may set `headers.Authorization`, `cert`, `key` or `ca`. Default: none.
   */
  authorize?: ((settings: KubeRequestSettings) => Promise<void> | void) | undefined;
  /** Maximum idle keep-alive sockets. Default 16. */
  maxFreeSockets?: number | undefined;
  /** Time to wait for response headers, in ms (watches then stream indefinitely). Default 30 000. */
  responseTimeoutMs?: number | undefined;
}

async function* bodyOf(res: http.IncomingMessage, path: string): AsyncIterable<Buffer> {
  try {
    for await (const chunk of res) yield chunk as Buffer;
  } catch (cause) {
    throw new KubeAdapterError(KubeAdapterErrorCode.Network, "connection dropped while reading", {
      details: { path },
      cause,
    });
  }
  if (!res.complete) {
    throw new KubeAdapterError(KubeAdapterErrorCode.Network, "connection closed before the answer ended", {
      details: { path },
    });
  }
}

/**
 * Creates the node:http/https transport. Requests carry `Accept: application/json` plus the configured
 * headers; credentials come from `authorize` (e.g. `KubeConfig.applyToHTTPSOptions`).
 */
export function createHttpTransport(options: HttpTransportOptions): KubeTransport {
  const base = new URL(options.server);
  const secure = base.protocol === "https:";
  if (!secure && base.protocol !== "http:") {
    throw new KubeAdapterError(KubeAdapterErrorCode.Config, `unsupported server URL ${options.server}`);
  }
  const agentOptions = { keepAlive: true, maxFreeSockets: options.maxFreeSockets ?? 16 };
  const agent = secure ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
  const responseTimeoutMs = options.responseTimeoutMs ?? 30_000;
  const prefix = base.pathname.replace(/\/$/, "");

  async function request(
    method: KubeHttpMethod,
    path: string,
    reqOptions: KubeWriteOptions = {},
  ): Promise<KubeResponse> {
    const signal = reqOptions.signal;
    if (signal?.aborted) {
      throw new KubeAdapterError(KubeAdapterErrorCode.Aborted, "request aborted", { cause: signal.reason });
    }
    const settings: KubeRequestSettings = {
      ca: options.ca,
      cert: options.cert,
      key: options.key,
      rejectUnauthorized: options.rejectUnauthorized,
      servername: options.servername,
      headers: { ...(options.headers ?? {}) },
    };
    if (options.authorize !== undefined) await options.authorize(settings);
    const headers: Record<string, string | number> = {
      accept: "application/json",
      ...(settings.headers ?? {}),
    };
    const body =
      reqOptions.body === undefined
        ? undefined
        : typeof reqOptions.body === "string"
          ? Buffer.from(reqOptions.body)
          : reqOptions.body;
    if (body !== undefined) {
      headers["content-type"] = reqOptions.contentType ?? "application/json";
      headers["content-length"] = body.length;
    }
    const reqOpts: https.RequestOptions = {
      method,
      protocol: base.protocol,
      hostname: base.hostname.replace(/^\[|\]$/g, ""),
      port: base.port === "" ? (secure ? 443 : 80) : Number(base.port),
      path: prefix + path,
      headers,
      agent,
    };
    if (secure) {
      if (settings.ca !== undefined) reqOpts.ca = settings.ca;
      if (settings.cert !== undefined) reqOpts.cert = settings.cert;
      if (settings.key !== undefined) reqOpts.key = settings.key;
      if (settings.rejectUnauthorized !== undefined) reqOpts.rejectUnauthorized = settings.rejectUnauthorized;
      if (settings.servername !== undefined && settings.servername !== "")
        reqOpts.servername = settings.servername;
    }
    return new Promise<KubeResponse>((resolve, reject) => {
      const req = (secure ? https : http).request(reqOpts);
      let settled = false;
      const onAbort = () => req.destroy(signal?.reason ?? new Error("aborted"));
      signal?.addEventListener("abort", onAbort, { once: true });
      const timer = setTimeout(
        () => req.destroy(new Error(`no answer within ${responseTimeoutMs} ms`)),
        responseTimeoutMs,
      );
      req.on("error", (cause) => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        if (settled) return;
        settled = true;
        const aborted = signal?.aborted === true;
        reject(
          new KubeAdapterError(
            aborted ? KubeAdapterErrorCode.Aborted : KubeAdapterErrorCode.Network,
            aborted ? "request aborted" : `request failed: ${(cause as Error).message}`,
            { details: method === "GET" ? { path } : { path, method }, cause },
          ),
        );
      });
      req.on("response", (res) => {
        clearTimeout(timer);
        settled = true;
        res.on("close", () => signal?.removeEventListener("abort", onAbort));
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: bodyOf(res, path),
          destroy: () => {
            res.destroy();
            req.destroy();
          },
        });
      });
      req.end(body);
    });
  }

  return {
    server: options.server,
    get: (path, reqOptions) => request("GET", path, reqOptions),
    request,
    close: () => agent.destroy(),
  };
}

/** Reads a whole body (for list answers). */
export async function readBody(res: KubeResponse): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of res.body) chunks.push(c);
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}
