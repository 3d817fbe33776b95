import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openSession } from "../cni/ipam/backend.js";
import { parseIpamConfig } from "../cni/ipam/config.js";
import { apiValidator } from "./api-validator.js";

describe("apiValidator", () => {
  it("validates Margay API kinds and lets the IPAM's internal kinds through", () => {
    expect(() =>
      apiValidator({
        apiVersion: "margay.io/v1",
        kind: "IPPool",
        metadata: { name: "p" },
        spec: { cidr: "10.0.0.0/16" },
      } as never),
    ).not.toThrow();
    expect(() =>
      apiValidator({
        apiVersion: "margay.io/v1",
        kind: "IPPool",
        metadata: { name: "p" },
        spec: { cidr: "nonsense" },
      } as never),
    ).toThrow(/cidr/);
    expect(() =>
      apiValidator({
        apiVersion: "ipam.margay.io/v1",
        kind: "IPAMBlock",
        metadata: { name: "b" },
        spec: {},
      } as never),
    ).not.toThrow();
  });
});

describe("every datastore margay-ipam opens validates API resources", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "mg-validator-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  it("the memory datastore refuses an invalid IPPool with `invalid`", async () => {
    const config = parseIpamConfig(
      {
        cniVersion: "1.1.0",
        name: "net",
        type: "bridge",
        ipam: {
          type: "margay-ipam",
          datastore: { type: "memory", snapshotPath: join(dir, "ipam.json") },
          pools: [{ cidr: "10.250.0.0/24" }],
        },
      },
      "h",
    );
    const s = await openSession(config, { ensure: true });
    try {
      await expect(
        s.datastore.create({
          apiVersion: "margay.io/v1",
          kind: "IPPool",
          metadata: { name: "bad" },
          spec: { cidr: "10.0.0.0/99" },
        }),
      ).rejects.toMatchObject({ code: "invalid" });
      // The pools margay-ipam itself writes pass the same validator.
      expect(
        (await s.datastore.list("IPPool")).items.map((p: { metadata: { name: string } }) => p.metadata.name),
      ).toEqual(["net-0"]);
    } finally {
      await s.close();
    }
  });
});
