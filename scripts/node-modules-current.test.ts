import { describe, expect, it } from "vitest";
import { lockDrift } from "./node-modules-current.mjs";

const lock = {
  packages: {
    "": { name: "margay" },
    "packages/api": { name: "@margay/api", version: "0.1.0" },
    "node_modules/@margay/api": { resolved: "packages/api", link: true },
    "node_modules/yaml": { version: "2.8.1" },
    "packages/margay/node_modules/commander": { version: "14.0.0" },
    "node_modules/@esbuild/darwin-arm64": { version: "0.27.7", optional: true },
  },
};
const installed = {
  packages: {
    "node_modules/@margay/api": { resolved: "packages/api", link: true },
    "node_modules/yaml": { version: "2.8.1" },
    "packages/margay/node_modules/commander": { version: "14.0.0" },
  },
};

describe("lockDrift (setup.sh's check before npm ci)", () => {
  it("is empty when the installed tree matches the lockfile (another platform's optional binary absent)", () => {
    expect(lockDrift(lock, installed)).toEqual([]);
  });

  it("names a changed version, a missing package, a missing nested one and a wrong link", () => {
    const drift = lockDrift(
      {
        packages: {
          ...lock.packages,
          "node_modules/yaml": { version: "2.9.0" },
          "node_modules/zod": { version: "4.0.0" },
          "packages/margay/node_modules/commander": { version: "14.0.1" },
          "node_modules/@margay/api": { resolved: "packages/api2", link: true },
        },
      },
      installed,
    );
    expect(drift).toEqual([
      "node_modules/@margay/api: link to packages/api2 expected",
      "node_modules/yaml: 2.8.1 installed, 2.9.0 locked",
      "packages/margay/node_modules/commander: 14.0.0 installed, 14.0.1 locked",
      "node_modules/zod: not installed",
    ]);
  });

  it("is not current without npm's record of the installed tree, or when a folder is gone", () => {
    expect(lockDrift(lock, undefined)).toEqual(["node_modules/.package-lock.json: missing"]);
    expect(lockDrift(lock, installed, (p: string) => p !== "node_modules/yaml")).toEqual([
      "node_modules/yaml: folder missing",
    ]);
  });
});
