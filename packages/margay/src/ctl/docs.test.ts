import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DOCS_PATH, generateDocs } from "./docs.js";

describe("docs/margayctl.md", () => {
  it("is the reference generated from the command definitions (regenerate: npx tsx packages/margay/src/ctl/docs.ts --write)", () => {
    expect(readFileSync(DOCS_PATH, "utf8")).toBe(generateDocs());
  });

  it("documents every command with its examples and the exit codes", () => {
    const docs = generateDocs();
    for (const cmd of [
      "apply",
      "create",
      "replace",
      "delete",
      "get",
      "patch",
      "label",
      "ipam show",
      "ipam check",
      "ipam release",
      "ipam configure",
      "policy explain",
      "policy matrix",
      "convert",
      "datastore export",
      "datastore import",
      "node list",
      "node status",
      "completion",
      "version",
    ])
      expect(docs).toContain(`## margayctl ${cmd}\n`);
    expect(docs).toContain("## Exit codes");
    expect(docs).toContain("Examples:");
  });
});
