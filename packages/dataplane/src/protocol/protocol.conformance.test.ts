import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createMemoryDataplane } from "../memory/memory-driver.js";
import { CONFORMANCE_FIXTURE, describeDataplaneConformance } from "../testing/conformance.js";
import { connectDataplane, spawnDataplane } from "./remote.js";
import { serveDataplane } from "./serve.js";

const fixture = fileURLToPath(new URL("./child-fixture.ts", import.meta.url));
const repoRoot = fileURLToPath(new URL("../../../../", import.meta.url));

describeDataplaneConformance("memory driver, in process", async () => ({
  driver: createMemoryDataplane({ nodeName: CONFORMANCE_FIXTURE.nodeName }),
}));

describeDataplaneConformance("memory driver, child process over stdio", async () => ({
  driver: await spawnDataplane(
    [process.execPath, "--import", "tsx", fixture, "memory", CONFORMANCE_FIXTURE.nodeName],
    {
      cwd: repoRoot,
    },
  ),
}));

describeDataplaneConformance("memory driver, unix socket", async () => {
  const dir = await mkdtemp(join(tmpdir(), "mgdp-sock-"));
  const path = join(dir, "driver.sock");
  const server = createServer((socket) => {
    void serveDataplane(createMemoryDataplane({ nodeName: CONFORMANCE_FIXTURE.nodeName }), {
      input: socket,
      output: socket,
    })
      .catch(() => undefined)
      .finally(() => socket.end());
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    driver: await connectDataplane(path),
    cleanup: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
});
