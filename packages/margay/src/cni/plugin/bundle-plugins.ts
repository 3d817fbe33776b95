/**
 * esbuild plugin of the `margay` CNI plugin's bundle: Node builtins that only some verbs use are required
 * on first use instead of at start. A CNI plugin is a fresh process per call, and loading `node:http`,
 * `node:net`, `node:child_process` or `node:fs/promises` (which pulls in readline and streams) costs
 * milliseconds of CPU each: VERSION and STATUS errors need none of them, ADD needs only http and net,
 * only DEL without the agent needs child_process, only host-local delegation needs fs/promises.
 *
 * Each listed builtin resolves to a small module with one getter per export name of the builtin (the
 * names of the Node that builds, the same major as the target), each requiring the real module when first
 * read. esbuild's interop copies the getters, never the values, so nothing is loaded before it is used.
 *
 * The workload client's `node:net` resolves to `pipe-socket.ts` (one unix-socket exchange over libuv's
 * pipe handle, `node:net` only as its fallback), so an ADD loads neither `node:net` nor the stream stack.
 *
 * Used by tsup.config.ts (the published artifact) and by `build-bundle.ts` (tests, benchmark).
 *
 * @packageDocumentation
 */
import { builtinModules, createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import type { Plugin } from "esbuild";

/** The builtins the plugin's bundle loads on first use. */
export const LAZY_PLUGIN_BUILTINS = ["child_process", "fs/promises", "http", "net"] as const;

const NAMESPACE = "margay-lazy-builtin";

/** The plugin's `node:net` (see the module comment). */
export const PIPE_SOCKET_MODULE = fileURLToPath(new URL("./pipe-socket.ts", import.meta.url));

/** The source of the lazy stand-in for builtin `name` (exported for its test). */
export function lazyBuiltinSource(name: string): string {
  if (!builtinModules.includes(name)) throw new Error(`not a Node builtin: ${name}`);
  const req = createRequire(import.meta.url);
  const keys = Object.keys(req(`node:${name}`) as object).filter((k) => k !== "default");
  // `require("<name>")` without `node:`: resolved by esbuild as an external builtin, not by this plugin.
  return [
    `"use strict";let m;const r=()=>m??=require(${JSON.stringify(name)});`,
    `for(const k of ${JSON.stringify(keys)})Object.defineProperty(exports,k,{enumerable:true,get:()=>r()[k]});`,
    `Object.defineProperty(exports,"default",{enumerable:false,get:r});`,
  ].join("");
}

/** Resolves `node:<name>` (and `<name>`) of {@link LAZY_PLUGIN_BUILTINS} to lazy stand-ins. */
export const lazyPluginBuiltins: Plugin = {
  name: "margay-lazy-plugin-builtins",
  setup(b) {
    const names = LAZY_PLUGIN_BUILTINS.map((n) => n.replace("/", "\\/")).join("|");
    // Everyone's node:net but pipe-socket's own (its fallback, lazy like the other builtins).
    b.onResolve({ filter: /^node:net$/ }, (a) =>
      a.importer === PIPE_SOCKET_MODULE ? undefined : { path: PIPE_SOCKET_MODULE },
    );
    b.onResolve({ filter: new RegExp(`^node:(${names})$`) }, (a) => ({
      path: a.path.slice("node:".length),
      namespace: NAMESPACE,
    }));
    b.onLoad({ filter: /.*/, namespace: NAMESPACE }, (a) => ({
      contents: lazyBuiltinSource(a.path),
      loader: "js",
    }));
  },
};
