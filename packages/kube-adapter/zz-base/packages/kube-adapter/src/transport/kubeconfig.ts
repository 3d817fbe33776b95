/**
 * Connection and authentication the way kubectl and client-go do it, through the ecosystem's
 * `@kubernetes/client-node` `KubeConfig`: contexts, CA bundles, client certificates, bearer tokens and
 * token files, exec credential plugins, `insecure-skip-tls-verify`, `tls-server-name`, in-cluster
 * service-account credentials. Credentials are applied per request, so rotated tokens and exec plugin
 * refreshes are picked up.
 *
 * @packageDocumentation
 */

import { KubeConfig } from "@kubernetes/client-node";
import type https from "node:https";
import { isIPv6 } from "node:net";
import { KubeAdapterError, KubeAdapterErrorCode } from "../errors.js";
import { createHttpTransport, type KubeRequestSettings, type KubeTransport } from "./transport.js";

/** Where the service account's credentials are mounted in a pod. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** Where to take the configuration from (exactly one source). */
export type KubeConfigSource =
  /** A kubeconfig file, and optionally a context other than its current one. */
  | { path: string; context?: string | undefined }
  /** Kubeconfig YAML text, and optionally a context. */
  | { text: string; context?: string | undefined }
  /**
   * In-cluster configuration: the API server's service address (the daemon reads it from
   * `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT`; libraries never read the environment) and the
   * mounted service-account token and CA.
   */
  | { inCluster: { host: string; port: number | string; serviceAccountDir?: string | undefined } };

/**
 * Loads a `KubeConfig` from a file, text or in-cluster credentials and selects the context.
 *
 * @throws {@link KubeAdapterError} `config` if the source is unreadable or names no cluster.
 */
export function loadKubeConfig(source: KubeConfigSource): KubeConfig {
  const kc = new KubeConfig();
  try {
    if ("inCluster" in source) {
      const { host, port } = source.inCluster;
      const dir = source.inCluster.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
      const scheme = ["80", "8080", "8001"].includes(String(port)) ? "http" : "https";
      kc.loadFromClusterAndUser(
        {
          name: "in-cluster",
          server: `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${port}`,
          caFile: `${dir}/ca.crt`,
          skipTLSVerify: false,
        },
        { name: "in-cluster", authProvider: { name: "tokenFile", config: { tokenFile: `${dir}/token` } } },
      );
    } else {
      if ("path" in source) kc.loadFromFile(source.path);
      else kc.loadFromString(source.text);
      if (source.context !== undefined) kc.setCurrentContext(source.context);
    }
  } catch (cause) {
    throw new KubeAdapterError(
      KubeAdapterErrorCode.Config,
      `cannot load kubeconfig: ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
  if (kc.getCurrentCluster() === null) {
    throw new KubeAdapterError(
      KubeAdapterErrorCode.Config,
      "kubeconfig has no cluster for its current context",
    );
  }
  return kc;
}

/** Options of {@link transportFromKubeConfig}. */
export interface KubeConfigTransportOptions {
  /** Time to wait for response headers, ms. Default 30 000. */
  responseTimeoutMs?: number | undefined;
}

/**
 * A transport to the current context's cluster, authenticated by the context's user: every request runs
 * `KubeConfig.applyToHTTPSOptions` (client certificates, CA, bearer token or exec plugin token,
 * impersonation, basic auth).
 */
export function transportFromKubeConfig(
  kc: KubeConfig,
  options: KubeConfigTransportOptions = {},
): KubeTransport {
  const cluster = kc.getCurrentCluster();
  if (cluster === null) {
    throw new KubeAdapterError(
      KubeAdapterErrorCode.Config,
      "kubeconfig has no cluster for its current context",
    );
  }
  const plainHttp = cluster.server.startsWith("http:");
  const authorize = async (settings: KubeRequestSettings): Promise<void> => {
    const opts: https.RequestOptions = { headers: {} };
    try {
      await kc.applyToHTTPSOptions(opts);
    } catch (cause) {
      // client-node refuses to build an agent for http:// without insecure-skip-tls-verify, but only
      // after it has filled in the credentials; kubectl talks plain HTTP to such servers, so do we.
      if (!(plainHttp && /HTTP protocol is not allowed/.test((cause as Error).message))) {
        throw new KubeAdapterError(
          KubeAdapterErrorCode.Config,
          `cannot obtain credentials: ${(cause as Error).message}`,
          { cause, retryable: true },
        );
      }
    }
    if (opts.ca !== undefined) settings.ca = opts.ca as Buffer;
    if (opts.cert !== undefined) settings.cert = opts.cert as Buffer;
    if (opts.key !== undefined) settings.key = opts.key as Buffer;
    if (opts.rejectUnauthorized !== undefined) settings.rejectUnauthorized = opts.rejectUnauthorized;
    if (opts.servername !== undefined) settings.servername = opts.servername;
    const headers: Record<string, string> = { ...(settings.headers ?? {}) };
    for (const [k, v] of Object.entries((opts.headers ?? {}) as Record<string, unknown>)) {
      if (typeof v === "string") headers[k] = v;
    }
    if (typeof opts.auth === "string" && opts.auth !== "") {
      headers.Authorization = `Basic ${Buffer.from(opts.auth).toString("base64")}`;
    }
    settings.headers = headers;
  };
  return createHttpTransport({
    server: cluster.server,
    authorize,
    responseTimeoutMs: options.responseTimeoutMs,
  });
}
