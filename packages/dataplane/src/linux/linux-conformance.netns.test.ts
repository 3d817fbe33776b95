import { fileURLToPath } from "node:url";
import { spawnDataplane } from "../protocol/remote.js";
import { CONFORMANCE_FIXTURE, describeDataplaneConformance } from "../conformance/index.js";
import { prepareLinuxConformanceNetns } from "../testing/linux-fixture.js";
import { createNetnsLab } from "../testing/netns-lab.js";
import { createLinuxDataplane } from "./linux-driver.js";

const fixture = fileURLToPath(new URL("../protocol/child-fixture.ts", import.meta.url));
const repoRoot = fileURLToPath(new URL("../../../../", import.meta.url));

async function scratch() {
  const lab = createNetnsLab("mgdpc");
  const ns = await lab.add("node");
  await prepareLinuxConformanceNetns(lab.runner, ns);
  return { lab, ns };
}

describeDataplaneConformance("Linux driver, in process", async () => {
  const { lab, ns } = await scratch();
  return {
    driver: createLinuxDataplane({
      netns: ns,
      nodeName: CONFORMANCE_FIXTURE.nodeName,
      reconcileIntervalMs: 0,
    }),
    cleanup: () => lab.close(),
  };
});

describeDataplaneConformance("Linux driver, child process over the framed protocol", async () => {
  const { lab, ns } = await scratch();
  const driver = await spawnDataplane(
    [process.execPath, "--import", "tsx", fixture, "linux", CONFORMANCE_FIXTURE.nodeName, ns.name],
    { cwd: repoRoot },
  );
  return { driver, cleanup: () => lab.close() };
});
