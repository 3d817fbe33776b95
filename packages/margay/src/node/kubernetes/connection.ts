/**
 * The agent's connection to the Kubernetes API server in Kubernetes mode: a kubeconfig file, or the
 * in-cluster service account (calico-node's way), through kube-adapter's transport. Credentials are
 * applied per request, so a rotated projected token is used as soon as the kubelet writes it.
 *
 * @packageDocumentation
 */
import {
  type KubeClient,
  type KubeTransport,
  createKubeClient,
  loadKubeConfig,
  transportFromKubeConfig,
} from "@margay/kube-adapter";
import type { KubernetesConnection } from "../config/types.js";

/** An open connection. */
export interface KubernetesApi {
  readonly transport: KubeTransport;
  readonly client: KubeClient;
  /** Where it points (for logs). */
  readonly server: string;
  close(): void;
}

/** Options of {@link openKubernetesApi}. */
export interface OpenKubernetesApiOptions {
  /** In-cluster only: where the service account is mounted. Default kube-adapter's `SERVICE_ACCOUNT_DIR`. */
  readonly serviceAccountDir?: string | undefined;
  /** Time to wait for response headers, ms. Default 10 000. */
  readonly responseTimeoutMs?: number | undefined;
}

/**
 * Opens the connection `config` describes. Nothing is sent yet.
 *
 * @throws kube-adapter's `config` error when the kubeconfig is unreadable or names no cluster.
 */
export function openKubernetesApi(
  config: KubernetesConnection,
  options: OpenKubernetesApiOptions = {},
): KubernetesApi {
  const kc = loadKubeConfig(
    "kubeconfig" in config
      ? { paths: config.kubeconfig.split(":") }
      : { inCluster: { ...config.inCluster, serviceAccountDir: options.serviceAccountDir } },
  );
  const transport = transportFromKubeConfig(kc, { responseTimeoutMs: options.responseTimeoutMs ?? 10_000 });
  return {
    transport,
    client: createKubeClient(transport),
    server: transport.server,
    close: () => transport.close(),
  };
}
