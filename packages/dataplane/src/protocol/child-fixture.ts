/**
 * A driver executable for the protocol tests: serves the memory or the Linux driver on stdin/stdout.
 * Usage: `node --import tsx child-fixture.ts memory <node>` or `... linux <node> <netns-name>`.
 * (A vendor's executable is the same few lines around its own driver.)
 */
import { namedNetns } from "../kernel/netns.js";
import { createLinuxDataplane } from "../linux/linux-driver.js";
import { createMemoryDataplane } from "../memory/memory-driver.js";
import { serveDataplane } from "./serve.js";

const [mode = "memory", nodeName = "node-a", netns = ""] = process.argv.slice(2);
const driver =
  mode === "linux"
    ? createLinuxDataplane({ netns: namedNetns(netns), nodeName, reconcileIntervalMs: 0 })
    : createMemoryDataplane({ nodeName });
await serveDataplane(driver, {
  input: process.stdin,
  output: process.stdout,
  implementation: `fixture-${mode}`,
});
