import { describe, expect, it } from "vitest";
import { convertNamespace, convertServiceAccount } from "./profiles.js";

describe("namespace and service-account profiles", () => {
  it("converts a namespace to kns.<name> with pcns. labels and allow-all rules", () => {
    expect(convertNamespace({ metadata: { name: "shop", labels: { team: "red" } } })).toEqual({
      apiVersion: "margay.io/v1",
      kind: "Profile",
      metadata: { name: "kns.shop" },
      spec: {
        ingress: [{ action: "Allow" }],
        egress: [{ action: "Allow" }],
        labelsToApply: {
          "pcns.kubernetes.io/metadata.name": "shop",
          "pcns.team": "red",
          "pcns.projectcalico.org/name": "shop",
        },
      },
    });
  });

  it("converts a service account to ksa.<ns>.<name> with pcsa. labels and no rules", () => {
    expect(
      convertServiceAccount({ metadata: { name: "api", namespace: "shop", labels: { owner: "x" } } }),
    ).toEqual({
      apiVersion: "margay.io/v1",
      kind: "Profile",
      metadata: { name: "ksa.shop.api" },
      spec: { labelsToApply: { "pcsa.owner": "x", "pcsa.projectcalico.org/name": "api" } },
    });
  });
});
