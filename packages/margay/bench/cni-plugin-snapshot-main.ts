/**
 * Benchmark-only entry (bench/cni-plugin.ts): the `margay` plugin built as a V8 startup snapshot
 * (`node --snapshot-blob <blob> --build-snapshot`). The bundle is loaded into the heap when the blob is
 * built; at each start the snapshot's main runs the skeleton. Node 20's snapshot builder cannot load
 * `node:http` or `node:child_process`, which the bundle requires on first use anyway (lazy builtins).
 *
 * @packageDocumentation
 */
import { startupSnapshot } from "node:v8";
import { pluginMain } from "@margay/cni";
import { margayHandlers } from "../src/cni/plugin/plugin.js";

startupSnapshot.setDeserializeMainFunction(() => {
  void pluginMain(margayHandlers, {
    about: "margay",
    supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"],
  });
});
