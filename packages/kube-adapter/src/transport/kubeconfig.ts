/**
 * Connection and authentication the way kubectl and client-go do it, through the ecosystem's
 * `@kubernetes/client-node` `KubeConfig`: contexts, CA bundles, client certificates, bearer tokens and
 * token files, exec credential plugins, `insecure-skip-tls-verify`, `tls-server-name`, in-cluster
 * service-account credentials. Credentials are applied per request, so rotated tokens and exec plugin
 * refreshes are picked up: a token file (kubeconfig `tokenFile`, the in-cluster projected token) is
 * checked on every request and re-read as soon as it changed (client-node itself ignores kubeconfig's
 * `tokenFile` and caches token files for a minute, so a kubelet rotation would be missed until then).
 *
 * @packageDocumentation
 */

import { KubeConfig, type User } from "@kubernetes/client-node";
import { existsSync, readFileSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import type https from "node:https";
import { isIPv6 } from "node:net";
import { dirname, isAbsolute, resolve } from "node:path";
import { KubeAdapterError, KubeAdapterErrorCode } from "../errors.js";
import { parse } from "yaml";
import { createHttpTransport, type KubeRequestSettings, type KubeTransport } from "./transport.js";

/** Where the service account's credentials are mounted in a pod. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** Where to take the configuration from (exactly one source). */
export type KubeConfigSource =
  /** A kubeconfig file, and optionally a context other than its current one. */
  | { path: string; context?: string | undefined }
  /**
   * Several kubeconfig files merged as kubectl merges a `KUBECONFIG` list (split it on `:`): for each
   * cluster, user and context name the first file that defines it wins, `current-context` comes from the
   * first file that sets one, and files that do not exist are skipped (at least one must). Relative paths
   * in a file (CA, certificates, token files) stay relative to that file. `context` selects another one.
   */
  | { paths: readonly string[]; context?: string | undefined }
  /** Kubeconfig YAML text, and optionally a context. */
  | { text: string; context?: string | undefined }
  /**
   * In-cluster configuration: the API server's service address (the daemon reads it from
   * `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT`; libraries never read the environment) and the
   * mounted service-account token and CA.
   */
  | { inCluster: { host: string; port: number | string; serviceAccountDir?: string | undefined } };

/**
 * kubectl's `users[].user.tokenFile` (client-go's spelling, which client-node does not read): such a user
 * gets client-node's `tokenFile` auth provider, as the in-cluster user has, so the transport finds the
 * file and re-reads it as it rotates. A `token` set beside it loses, as in client-go ("the last
 * successfully read value takes precedence over BearerToken").
 */
function adoptTokenFiles(kc: KubeConfig, text: string, baseDir: string | undefined): void {
  let raw: unknown;
  try {
    raw = parse(text);
  } catch {
    return; // client-node has already accepted the text; nothing more to learn from it
  }
  const users = (raw as { users?: unknown } | null)?.users;
  if (!Array.isArray(users)) return;
  const files = new Map<string, string>();
  for (const u of users as { name?: unknown; user?: { tokenFile?: unknown; "token-file"?: unknown } }[]) {
    const f = u?.user?.tokenFile ?? u?.user?.["token-file"];
    // As client-go: a relative path is relative to the kubeconfig file.
    if (typeof u?.name === "string" && typeof f === "string" && f !== "") {
      files.set(u.name, baseDir === undefined || isAbsolute(f) ? f : resolve(baseDir, f));
    }
  }
  if (files.size === 0) return;
  kc.users = kc.users.map((user: User) => {
    const tokenFile = files.get(user.name);
    if (tokenFile === undefined || user.authProvider != null || user.exec != null) return user;
    return { ...user, authProvider: { name: "tokenFile", config: { tokenFile } } };
  });
}

/** The token file of the current user (kubeconfig `tokenFile` or the in-cluster token), if any. */
function tokenFileOf(kc: KubeConfig): string | undefined {
  const f = (kc.getCurrentUser()?.authProvider as { config?: { tokenFile?: unknown } } | undefined)?.config
    ?.tokenFile;
  return typeof f === "string" && f !== "" ? f : undefined;
}

/**
 * Reads a token file when it changed since the last read (a kubelet rotation swaps the file, so its
 * inode, size or mtime change); keeps the last good token if a read fails, as client-go does.
 */
function tokenFileReader(path: string): () => Promise<string> {
  let stamp = "";
  let token: string | undefined;
  return async () => {
    try {
      const st = await stat(path);
      const now = `${st.ino}:${st.size}:${st.mtimeMs}`;
      if (now !== stamp || token === undefined) {
        token = (await readFile(path, "utf8")).trim();
        stamp = now;
      }
    } catch (cause) {
      if (token === undefined) {
        throw new KubeAdapterError(KubeAdapterErrorCode.Config, `cannot read token file ${path}`, {
          cause,
          retryable: true,
        });
      }
    }
    return token;
  };
}

/** One kubeconfig file as {@link loadKubeConfig} reads it (relative paths resolved, token files adopted). */
function loadFile(path: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  adoptTokenFiles(kc, readFileSync(path, "utf8"), dirname(path));
  return kc;
}

/**
 * client-go's merge of a `KUBECONFIG` list (clientcmd's `ClientConfigLoadingRules.Load`): the first file
 * to define a name keeps it, the first `current-context` set wins, missing files are skipped. client-node's
 * own `mergeConfig` differs (a later file's current context wins, a repeated name throws).
 */
function loadMerged(paths: readonly string[]): KubeConfig {
  const present = paths.filter((p) => p !== "" && existsSync(p));
  if (present.length === 0) {
    throw new Error(`none of the kubeconfig files exists: ${paths.join(":")}`);
  }
  const clusters = new Map<string, KubeConfig["clusters"][number]>();
  const users = new Map<string, KubeConfig["users"][number]>();
  const contexts = new Map<string, KubeConfig["contexts"][number]>();
  let currentContext = "";
  for (const path of present) {
    const kc = loadFile(path);
    for (const c of kc.clusters) if (!clusters.has(c.name)) clusters.set(c.name, c);
    for (const u of kc.users) if (!users.has(u.name)) users.set(u.name, u);
    for (const c of kc.contexts) if (!contexts.has(c.name)) contexts.set(c.name, c);
    if (currentContext === "" && kc.currentContext) currentContext = kc.currentContext;
  }
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [...clusters.values()],
    users: [...users.values()],
    contexts: [...contexts.values()],
    currentContext,
  });
  return kc;
}

/**
 * Loads a `KubeConfig` from a file (or a merged list of files), text or in-cluster credentials and selects the context.
 *
 * @throws {@link KubeAdapterError} `config` if the source is unreadable or names no cluster.
 */
export function loadKubeConfig(source: KubeConfigSource): KubeConfig {
  let kc = new KubeConfig();
  try {
    if ("inCluster" in source) {
      const { host, port } = source.inCluster;
      const dir = source.inCluster.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
      // Always HTTPS, whatever the port, as client-go's rest.InClusterConfig: the service-account token
      // must never travel in clear text.
      kc.loadFromClusterAndUser(
        {
          name: "in-cluster",
          server: `https://${isIPv6(host) ? `[${host}]` : host}:${port}`,
          caFile: `${dir}/ca.crt`,
          skipTLSVerify: false,
        },
        { name: "in-cluster", authProvider: { name: "tokenFile", config: { tokenFile: `${dir}/token` } } },
      );
    } else if ("paths" in source) {
      kc = loadMerged(source.paths);
      if (source.context !== undefined) kc.setCurrentContext(source.context);
    } else {
      if ("path" in source) kc.loadFromFile(source.path);
      else kc.loadFromString(source.text);
      if (source.context !== undefined) kc.setCurrentContext(source.context);
      if ("path" in source) adoptTokenFiles(kc, readFileSync(source.path, "utf8"), dirname(source.path));
      else adoptTokenFiles(kc, source.text, undefined);
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
  const tokenFile = tokenFileOf(kc);
  const readToken = tokenFile === undefined ? undefined : tokenFileReader(tokenFile);
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
    // client-node read the token file up to a minute ago; the file as it is now wins.
    if (readToken !== undefined) headers.Authorization = `Bearer ${await readToken()}`;
    settings.headers = headers;
  };
  return createHttpTransport({
    server: cluster.server,
    authorize,
    responseTimeoutMs: options.responseTimeoutMs,
  });
}
