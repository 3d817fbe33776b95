/**
 * The demo's build step: the four executables it runs (`margay-node`, `margay`, `margay-ipam`,
 * `margayctl`) bundled from the workspace sources with esbuild — and only when a source is newer than the
 * bundles. A full `lerna run build` (declarations for every package) took 1–3 minutes here, most of the
 * demo's time, and the demo needs none of it.
 *
 * @packageDocumentation
 */
import { readdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { buildMargayIpamBundle } from "../cni/ipam/build-bundle.js";
import { buildMargayPluginBundle } from "../cni/plugin/build-bundle.js";
import { buildMargayctlBundle } from "../ctl/build-bundle.js";
import { buildMargayNodeBundle } from "../node/config/build-bundle.js";

/** The executables the demo runs, under `dist/bin`. */
export const DEMO_EXECUTABLES = [
  "margay-node.cjs",
  "margay.cjs",
  "margay-ipam.cjs",
  "margayctl.cjs",
] as const;

/** Writes one executable to `outfile`. */
export type ExecutableBuilder = (outfile: string) => Promise<unknown>;

/** The real builders (the ones tsup's entries mirror), by output file name. */
export const DEMO_BUILDERS: Readonly<Record<(typeof DEMO_EXECUTABLES)[number], ExecutableBuilder>> = {
  "margay-node.cjs": buildMargayNodeBundle,
  "margay.cjs": buildMargayPluginBundle,
  "margay-ipam.cjs": buildMargayIpamBundle,
  "margayctl.cjs": buildMargayctlBundle,
};

/** Options of {@link ensureDemoExecutables}. */
export interface EnsureExecutablesOptions {
  /** The monorepo root (holds `packages/` and `node_modules/`). */
  readonly root: string;
  /** Where the executables live; default `<root>/packages/margay/dist/bin`. */
  readonly outDir?: string | undefined;
  /** Rebuild even when current. */
  readonly force?: boolean | undefined;
  /** Injected builders (tests); default {@link DEMO_BUILDERS}. */
  readonly builders?: Readonly<Record<string, ExecutableBuilder>> | undefined;
}

/** What {@link ensureDemoExecutables} did and why. */
export interface EnsureExecutablesResult {
  readonly built: boolean;
  /** Why it built (`missing dist/bin/margayctl.cjs`, `packages/api/src/ip.ts is newer`, `forced`) or why not. */
  readonly reason: string;
}

const isTest = (name: string) => /\.test\.ts$|\.bench\.ts$/.test(name);

/** The newest input the bundles are made from: package sources and protos, and the installed dependencies. */
async function newestInput(root: string): Promise<{ path: string; mtimeMs: number }> {
  let newest = { path: "", mtimeMs: 0 };
  const consider = async (path: string) => {
    const s = await stat(path).catch(() => undefined);
    if (s?.isFile() && s.mtimeMs > newest.mtimeMs) newest = { path, mtimeMs: s.mtimeMs };
  };
  // npm rewrites its hidden lockfile on every install: a changed dependency is a newer input.
  await consider(join(root, "node_modules", ".package-lock.json"));
  for (const pkg of await readdir(join(root, "packages")).catch(() => [] as string[])) {
    for (const sub of ["src", "proto"]) {
      const dir = join(root, "packages", pkg, sub);
      const files = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
      await Promise.all(files.filter((f) => !isTest(f)).map((f) => consider(join(dir, f))));
    }
    await consider(join(root, "packages", pkg, "package.json"));
  }
  return newest;
}

/**
 * Builds the demo's executables when one is missing or older than a source; otherwise does nothing.
 * Each is written beside its final name and renamed into place, so a program starting meanwhile never
 * reads half a file.
 */
export async function ensureDemoExecutables(
  options: EnsureExecutablesOptions,
): Promise<EnsureExecutablesResult> {
  const outDir = options.outDir ?? join(options.root, "packages", "margay", "dist", "bin");
  const builders = options.builders ?? DEMO_BUILDERS;
  let reason: string | undefined = options.force === true ? "forced" : undefined;
  if (reason === undefined) {
    let oldest = Number.POSITIVE_INFINITY;
    for (const name of Object.keys(builders)) {
      const s = await stat(join(outDir, name)).catch(() => undefined);
      if (s === undefined) {
        reason = `missing ${join(outDir, name)}`;
        break;
      }
      oldest = Math.min(oldest, s.mtimeMs);
    }
    if (reason === undefined) {
      const newest = await newestInput(options.root);
      if (newest.mtimeMs > oldest) reason = `${newest.path} is newer than the bundles`;
      else return { built: false, reason: "the bundles are newer than every source" };
    }
  }
  await Promise.all(
    Object.entries(builders).map(async ([name, build]) => {
      const final = join(outDir, name);
      const temp = `${final}.${process.pid}.tmp`;
      try {
        await build(temp);
        await rename(temp, final);
      } finally {
        await rm(temp, { force: true });
      }
    }),
  );
  return { built: true, reason };
}
