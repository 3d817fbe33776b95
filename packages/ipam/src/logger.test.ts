import { createRecordingLogger } from "@margay/api";
import { createMemoryDatastore } from "@margay/datastore";
import { describe, expect, it } from "vitest";
import { createIpam } from "./ipam.js";
import { putPool, putReservation } from "./test-support.js";

describe("the IPAM's logger", () => {
  it("takes @margay/api's Logger and tags its records with component: ipam", async () => {
    const ds = createMemoryDatastore();
    const logger = createRecordingLogger();
    try {
      await putPool(ds, "good", { cidr: "10.0.0.0/24", blockSize: 28 });
      await putReservation(ds, "r", ["not-a-cidr"]);
      const ipam = createIpam({ datastore: ds, configTtlMs: 0, logger });
      const r = await ipam.autoAssign({ handleId: "h", node: "n", num4: 1 });
      expect(r.ipv4).toHaveLength(1);
      expect(logger.find({ message: "ipam ignores invalid reservation" })[0]).toMatchObject({
        level: "warn",
        attributes: { component: "ipam", reservation: "r", cidr: "not-a-cidr" },
      });
      await ipam.close();
    } finally {
      await ds.close();
    }
  });
});
