import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNetnsLab, type NetnsLab } from "../testing/netns-lab.js";
import { createIpBatchSession } from "./ip-session.js";
import type { NetnsHandle } from "./netns.js";

describe("ip batch session (real iproute2, a fresh namespace)", () => {
  let lab: NetnsLab;
  let ns: NetnsHandle;
  beforeAll(async () => {
    lab = createNetnsLab("mgips");
    ns = await lab.add("a");
  });
  afterAll(async () => {
    await lab?.close();
  });

  it("routes over an interface deleted and made again under the same name (iproute2 caches its index)", async () => {
    const session = createIpBatchSession(lab.runner, ns)!;
    const veth = async () => {
      await lab.exec(ns, ["ip", "link", "add", "mgyreuse", "type", "veth", "peer", "name", "mgypeer"]);
      await lab.exec(ns, ["ip", "link", "set", "mgyreuse", "up"]);
    };
    try {
      await veth();
      await session.run(["route replace 10.9.9.1/32 dev mgyreuse scope link"]);
      // A pod's veth when its attachment is deleted and added again.
      await lab.exec(ns, ["ip", "link", "del", "mgyreuse"]);
      await veth();
      await session.run(["route replace 10.9.9.2/32 dev mgyreuse scope link"]);
      expect(await lab.exec(ns, ["ip", "route", "show", "10.9.9.2/32"])).toContain("dev mgyreuse");
      // The session goes on working after its restart; a device that really is missing still fails.
      await session.run(["route replace 10.9.9.3/32 dev mgyreuse scope link"]);
      await expect(session.run(["route replace 10.9.9.4/32 dev mgyabsent scope link"])).rejects.toMatchObject(
        {
          code: "command-failed",
        },
      );
      await session.run(["route replace 10.9.9.5/32 dev mgyreuse scope link"]);
    } finally {
      session.close();
    }
  });
});
