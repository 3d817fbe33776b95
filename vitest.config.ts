import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const root = fileURLToPath(new URL(".", import.meta.url));

/**
 * Tests import the packages by name; during tests those names resolve to the sources, so a test run
 * never depends on a stale build. Subpaths (`@margay/x/sub`) map to `src/sub/index.ts`.
 */
const alias = [
  {
    find: /^@margay\/([a-z-]+)\/([a-z-]+)$/,
    replacement: `${root}packages/$1/src/$2/index.ts`,
  },
  { find: /^@margay\/([a-z-]+)$/, replacement: `${root}packages/$1/src/index.ts` },
];

const tiers = ["netns", "interop", "conformance", "e2e"] as const;
// e2e: a cluster lab of real margay-node processes per file (shared by the file's tests), so longer limits.
const tierTimeout = (tier: string) => (tier === "e2e" ? 300_000 : 120_000);
const tierGlob = (tier: string) => `packages/*/src/**/*.${tier}.test.ts`;

export default defineConfig({
  test: {
    projects: [
      {
        resolve: { alias },
        test: {
          name: "unit",
          include: ["packages/*/src/**/*.test.ts", "scripts/**/*.test.ts"],
          exclude: ["**/node_modules/**", "**/dist/**", ...tiers.map(tierGlob)],
          testTimeout: 30_000,
        },
      },
      ...tiers.map((tier) => ({
        resolve: { alias },
        test: {
          name: tier,
          include: [tierGlob(tier)],
          exclude: ["**/node_modules/**", "**/dist/**"],
          testTimeout: tierTimeout(tier),
          hookTimeout: tierTimeout(tier),
          // Real peers, namespaces and etcd instances: keep files of these tiers from racing each other.
          fileParallelism: false,
        },
      })),
    ],
  },
});
