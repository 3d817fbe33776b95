import { readFileSync } from "node:fs";
import { join, posix } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

// What npm shows and installs comes from each package.json: these checks keep every published manifest
// complete (licence, repository, access) and the internal dependency ranges under one rule.

const ROOT = fileURLToPath(new URL("../../../../", import.meta.url));

interface Manifest {
  name: string;
  version: string;
  license?: string;
  keywords?: string[];
  repository?: { type?: string; url?: string; directory?: string };
  publishConfig?: { access?: string };
  files?: string[];
  exports?: Record<string, unknown>;
  typesVersions?: Record<string, Record<string, string[]>>;
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, "utf8")) as T;
const root = readJson<Manifest & { workspaces: string[] }>(join(ROOT, "package.json"));
const packages = root.workspaces.map((dir) => ({
  dir,
  manifest: readJson<Manifest>(join(ROOT, dir, "package.json")),
}));
const versions = new Map(packages.map((p) => [p.manifest.name, p.manifest.version]));

/** Targets of the Markdown links (and images) that are neither absolute URLs nor in-page anchors. */
function relativeLinks(markdown: string): string[] {
  const targets = [...markdown.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1]!);
  return targets
    .filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t) && !t.startsWith("#"))
    .map((t) => posix.normalize(t.split("#")[0]!));
}

describe("published package manifests", () => {
  const licence = readFileSync(join(ROOT, "LICENSE"), "utf8");

  it("the root LICENSE is the Apache-2.0 text the manifests name", () => {
    expect(root.license).toBe("Apache-2.0");
    expect(licence).toContain("Apache License");
    expect(licence).toContain("Version 2.0, January 2004");
    expect(licence).toContain("END OF TERMS AND CONDITIONS");
  });

  for (const { dir, manifest } of packages) {
    describe(manifest.name, () => {
      it("ships the root LICENSE", () => {
        expect(manifest.license).toBe(root.license);
        expect(readFileSync(join(ROOT, dir, "LICENSE"), "utf8")).toBe(licence);
        expect(manifest.files).toContain("LICENSE");
      });

      it("names its repository directory, keywords and public access", () => {
        expect(manifest.repository?.type).toBe("git");
        expect(manifest.repository?.url).toBe(root.repository?.url);
        expect(manifest.repository?.directory).toBe(dir);
        expect(manifest.keywords?.length ?? 0).toBeGreaterThan(0);
        expect(manifest.publishConfig?.access).toBe("public");
      });

      it("links only documents its tarball ships, or absolute URLs", () => {
        const readme = readFileSync(join(ROOT, dir, "README.md"), "utf8");
        const shipped = (path: string) =>
          path === "README.md" ||
          path === "LICENSE" ||
          path === "package.json" ||
          (manifest.files ?? []).some((f) => !f.startsWith("!") && (path === f || path.startsWith(`${f}/`)));
        for (const target of relativeLinks(readme)) {
          expect({ target, shipped: shipped(target) }).toEqual({ target, shipped: true });
        }
      });

      it("resolves every subpath's types for node10 consumers too (typesVersions), and attw checks all profiles", () => {
        const subpaths = Object.entries(manifest.exports ?? {})
          .filter(([k, v]) => k !== "." && typeof v === "object")
          .map(([k]) => k.slice(2));
        const mapped = Object.keys(manifest.typesVersions?.["*"] ?? {});
        expect(mapped.sort()).toEqual(subpaths.sort());
        expect(manifest.scripts?.["check:exports"]).toMatch(/attw --pack \.(?! --profile)/);
      });

      it("pins every internal dependency to the exact workspace version", () => {
        const fields = [
          "dependencies",
          "devDependencies",
          "peerDependencies",
          "optionalDependencies",
        ] as const;
        for (const field of fields) {
          for (const [name, range] of Object.entries(manifest[field] ?? {})) {
            if (!name.startsWith("@margay/")) continue;
            expect({ field, name, range }).toEqual({ field, name, range: versions.get(name) });
          }
        }
      });
    });
  }
});
