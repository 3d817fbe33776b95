#!/usr/bin/env node
/**
 * Exit 0 when node_modules already holds what package-lock.json asks for, 1 otherwise (setup.sh then runs
 * `npm ci`). It compares the lockfile with npm's own record of the installed tree
 * (`node_modules/.package-lock.json`, rewritten by every npm install/ci), so an `npm install <pkg> -w …`
 * that changed both is current — a stamp copied after the last `npm ci` was not, and cost the demo a
 * 50-second reinstall each time the lockfile moved. Plain Node: it runs before any dependency exists.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The lockfile entries the installed tree does not match, as `path: why` strings (empty: current).
 * Optional entries (other platforms' binaries) may be absent; workspace folders are sources, not installs.
 *
 * @param {{ packages?: Record<string, Record<string, unknown>> }} lock package-lock.json
 * @param {{ packages?: Record<string, Record<string, unknown>> } | undefined} installed node_modules/.package-lock.json
 * @param {(path: string) => boolean} [present] whether an installed package's folder exists
 * @returns {string[]}
 */
export function lockDrift(lock, installed, present = () => true) {
  if (installed === undefined) return ["node_modules/.package-lock.json: missing"];
  const have = installed.packages ?? {};
  const drift = [];
  for (const [path, want] of Object.entries(lock.packages ?? {})) {
    if (!path.startsWith("node_modules/") && !path.includes("/node_modules/")) continue;
    const got = have[path];
    if (got === undefined) {
      if (want.optional !== true && want.devOptional !== true) drift.push(`${path}: not installed`);
      continue;
    }
    if (want.link === true) {
      if (got.link !== true || got.resolved !== want.resolved)
        drift.push(`${path}: link to ${String(want.resolved)} expected`);
    } else if (got.version !== want.version) {
      drift.push(`${path}: ${String(got.version)} installed, ${String(want.version)} locked`);
    } else if (!present(path)) {
      drift.push(`${path}: folder missing`);
    }
  }
  return drift;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), "..");
  const read = (p) => (existsSync(p) ? JSON.parse(readFileSync(p, "utf8")) : undefined);
  const lock = read(join(root, "package-lock.json"));
  const drift =
    lock === undefined
      ? ["package-lock.json: missing"]
      : lockDrift(lock, read(join(root, "node_modules", ".package-lock.json")), (p) =>
          existsSync(join(root, p, "package.json")),
        );
  for (const d of drift.slice(0, 5)) process.stderr.write(`node_modules: ${d}\n`);
  process.exit(drift.length === 0 ? 0 : 1);
}
