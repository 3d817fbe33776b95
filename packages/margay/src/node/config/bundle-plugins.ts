/**
 * esbuild plugins of the `margay-node` and `margay-kube-controllers` bundles:
 * - pino's transport module (which loads `thread-stream` and starts worker threads from files next to
 *   it) is replaced by a stub, so the one-file bundle holds no code path that would look for a worker
 *   file on disk. The daemons log through `pino.destination` only.
 * - `ws` (pulled in by `@kubernetes/client-node`, for exec/attach, which the daemons never use) tries
 *   the optional native add-ons `bufferutil` and `utf-8-validate` inside try/catch; the bundle answers
 *   those requires with "not installed", so it names no package it does not ship.
 *
 * @packageDocumentation
 */
import type { Plugin } from "esbuild";
import { embedEtcdProto, workspaceSources } from "../../cni/ipam/bundle-plugins.js";

/** Replaces `pino/lib/transport.js` with a function that refuses (transports are not bundled). */
export const pinoWithoutTransports: Plugin = {
  name: "margay-pino-without-transports",
  setup(b) {
    b.onLoad({ filter: /[\\/]pino[\\/]lib[\\/]transport\.js$/ }, () => ({
      contents:
        'module.exports = function transport() { throw new Error("pino transports are not bundled in margay-node: it logs JSON to stdout"); };',
      loader: "js",
    }));
  },
};

/** The optional native add-ons `ws` tries to load (and works without). */
const WS_OPTIONAL_ADDONS = /^(bufferutil|utf-8-validate)$/;

/** Resolves `ws`'s optional add-ons to a module that throws as a missing package does (ws falls back). */
export const wsWithoutNativeAddons: Plugin = {
  name: "margay-ws-without-native-addons",
  setup(b) {
    b.onResolve({ filter: WS_OPTIONAL_ADDONS }, (args) => ({
      path: args.path,
      namespace: "margay-absent-addon",
    }));
    b.onLoad({ filter: /.*/, namespace: "margay-absent-addon" }, (args) => ({
      contents: `const e = new Error("Cannot find module '${args.path}' (not bundled)"); e.code = "MODULE_NOT_FOUND"; throw e;`,
      loader: "js",
    }));
  },
};

/**
 * The plugins of the two daemon bundles (`margay-node`, `margay-kube-controllers`), one list for tsup and
 * for the test builders: every dependency inlined, etcd's proto files embedded, no pino transports, no
 * `ws` native add-ons.
 */
export const daemonBundlePlugins: readonly Plugin[] = [
  pinoWithoutTransports,
  wsWithoutNativeAddons,
  workspaceSources,
  embedEtcdProto,
];
