/**
 * esbuild plugin of the `margay-node` bundle: pino's transport module (which loads `thread-stream` and
 * starts worker threads from files next to it) is replaced by a stub, so the one-file bundle holds no
 * code path that would look for a worker file on disk. The agent logs through `pino.destination` only.
 *
 * @packageDocumentation
 */
import type { Plugin } from "esbuild";

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
