/**
 * Every TypeScript block of a package README either runs as written or says it is a fragment.
 *
 * "Runs as written" means a test of that package holds the block verbatim between
 * `// README example: start` and `// README example: end` markers and runs it (see
 * packages/policy/src/readme-example.test.ts: it also checks the README shows exactly that code).
 * A block that cannot run alone (a sketch of an interface, a part of a larger program, one that needs
 * a Kubernetes cluster) is preceded by an HTML comment `<!-- fragment: why -->`, invisible once rendered.
 * No README block, example or guide uses `await using`: Node 20 and 22 cannot run it.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { codeBlocks } from "./markdown-blocks.js";

const root = fileURLToPath(new URL("..", import.meta.url));

function filesUnder(dir: string, keep: (name: string) => boolean): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name === "dist") continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...filesUnder(path, keep));
    else if (keep(name)) out.push(path);
  }
  return out;
}

/** The code between the README-example markers of every test file of a package. */
function runExamples(pkgDir: string): string[] {
  return filesUnder(join(pkgDir, "src"), (n) => n.endsWith(".test.ts")).flatMap((file) => {
    const text = readFileSync(file, "utf8");
    return text
      .split("// README example: start\n")
      .slice(1)
      .map((part) => part.split("// README example: end")[0]!.trim());
  });
}

const packages = readdirSync(join(root, "packages")).filter((p) => {
  try {
    return statSync(join(root, "packages", p, "README.md")).isFile();
  } catch {
    return false;
  }
});

const isTs = (lang: string) => lang === "ts" || lang === "typescript";

describe("package README TypeScript blocks", () => {
  for (const pkg of packages) {
    it(`${pkg}: every block runs in a test or is marked a fragment`, () => {
      const dir = join(root, "packages", pkg);
      const readme = readFileSync(join(dir, "README.md"), "utf8");
      const covered = runExamples(dir);
      const orphans = codeBlocks(readme)
        .filter((b) => isTs(b.lang))
        .filter((b) => !b.marker?.startsWith("<!-- fragment"))
        .filter((b) => !covered.some((c) => c.length > 0 && b.code.trim().includes(c)))
        .map((b) => `packages/${pkg}/README.md:${b.line}`);
      expect(
        orphans,
        "blocks neither run by a README-example test nor marked <!-- fragment: why -->",
      ).toEqual([]);
    });
  }
});

describe("no `await using` where Node 20/22 must run the code", () => {
  const docs = [
    join(root, "README.md"),
    ...packages.map((p) => join(root, "packages", p, "README.md")),
    ...filesUnder(join(root, "docs"), (n) => n.endsWith(".md")),
  ];
  const code = filesUnder(join(root, "examples"), (n) => n.endsWith(".ts"));
  it("READMEs and guides: no TypeScript block uses it", () => {
    const hits = docs.flatMap((file) =>
      codeBlocks(readFileSync(file, "utf8"))
        .filter((b) => isTs(b.lang) && /\bawait using\b/.test(b.code))
        .map((b) => `${file.slice(root.length)}:${b.line}`),
    );
    expect(hits).toEqual([]);
  });
  it("examples/: no file uses it", () => {
    const hits = code.filter((f) => /^\s*await using\b/m.test(readFileSync(f, "utf8")));
    expect(hits.map((f) => f.slice(root.length))).toEqual([]);
  });
});

describe("codeBlocks", () => {
  it("finds fences, their language, line and the comment marker above", () => {
    const md = "# t\n\n<!-- fragment: sketch -->\n\n```ts\nconst a = 1;\n```\ntext\n```sh\nls\n```\n";
    expect(codeBlocks(md)).toEqual([
      { lang: "ts", line: 5, code: "const a = 1;", marker: "<!-- fragment: sketch -->" },
      { lang: "sh", line: 9, code: "ls", marker: undefined },
    ]);
  });
});
