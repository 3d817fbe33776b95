/**
 * Entry of the `margay` CNI plugin executable: the skeleton dispatches to the verbs of `plugin.ts`. The
 * bundle holds the skeleton, the workload API client and nothing of the agent (no IPAM, datastore or
 * dataplane): the agent does the work behind its socket.
 *
 * @packageDocumentation
 */
import { pluginMain } from "@margay/cni";
import { margayHandlers } from "./plugin.js";

/** Spec versions the plugin answers (results converted by the skeleton). */
export const MARGAY_CNI_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;

void pluginMain(margayHandlers, { about: "margay", supportedVersions: MARGAY_CNI_VERSIONS });
