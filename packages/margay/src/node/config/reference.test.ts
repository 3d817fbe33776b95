import { readFileSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { renderConfigReference } from "./reference.js";
import { AGENT_CONFIG_SCHEMA, SETTING_NAMES } from "./schema.js";

const DOC = new URL("../../../../../docs/node-config.md", import.meta.url);

describe("docs/node-config.md", () => {
  // `npm run docs:node-config` sets this to regenerate the page from the schema.
  if (process.env.UPDATE_NODE_CONFIG_DOC === "1") writeFileSync(DOC, renderConfigReference());

  it("is the page generated from AGENT_CONFIG_SCHEMA (regenerate: npm run docs:node-config)", () => {
    expect(readFileSync(DOC, "utf8")).toBe(renderConfigReference());
  });

  it("documents every setting's environment variable and flag", () => {
    const page = renderConfigReference();
    for (const n of SETTING_NAMES) {
      expect(page, n).toContain(`\`${AGENT_CONFIG_SCHEMA[n].env}\``);
      expect(page, n).toContain(`\`--${AGENT_CONFIG_SCHEMA[n].flag}\``);
    }
  });
});
