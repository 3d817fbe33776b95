import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { GENERATED_FILES, generate, PROTO_FILE } from "../scripts/generate.js";
import { DATAPLANE_PROTO } from "./index.js";

const pkg = new URL("../", import.meta.url);
const proto = readFileSync(new URL(PROTO_FILE, pkg), "utf8");

describe("generated from proto/margay_dataplane.proto", () => {
  const files = generate(proto);

  for (const path of Object.values(GENERATED_FILES)) {
    it(`${path} is what the .proto generates (else run \`npm run generate\`)`, () => {
      expect(readFileSync(new URL(path, pkg), "utf8")).toBe(files[path]);
    });
  }

  it("ships the .proto text as DATAPLANE_PROTO", () => {
    expect(DATAPLANE_PROTO).toBe(proto);
  });

  it("a change to the .proto changes the generated types (so a stale file cannot pass)", () => {
    const changed = generate(proto.replace("  string mac = 3;\n", "  string mac = 3;\n  string vni = 5;\n"));
    expect(changed[GENERATED_FILES.updates]).toContain("readonly vni: string;");
    expect(changed[GENERATED_FILES.updates]).not.toBe(files[GENERATED_FILES.updates]);
  });

  it("rejects a @ts-type that names no enum of the .proto", () => {
    expect(() => generate(proto.replace("@ts-type RouteType", "@ts-type RouteKind"))).toThrow(
      /names no enum/,
    );
  });
});
