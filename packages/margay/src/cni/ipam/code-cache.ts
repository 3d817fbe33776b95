/**
 * Build step that gives the one-file margay-ipam executable a V8 code cache, the job
 * `module.enableCompileCache()` does from Node 22.1 (absent from Node 20). A CNI plugin is a fresh
 * process per call; without a cache V8 parses the whole bundle and compiles every function it calls,
 * each time, which is most of what the plugin costs above a bare `node` start.
 *
 * The file becomes a small loader followed by the bundle inside a block comment (so Node only scans
 * it). The loader compiles the bundle with `vm.Script` and the cache file, if there is one:
 * - the cache lives next to the executable (`.<name>.<build>.<node version>.<arch>.v8cache`): whoever can
 *   write there can replace the executable itself, so it is no new trust; a cache owned by another
 *   user, or writable by group/others, is ignored;
 * - V8 checks the cache against its version, flags and the source, and compiles normally when it does
 *   not match (`cachedDataRejected`); any I/O error means "no cache";
 * - it is written (temp file + rename) after a successful ADD when it was missing or rejected, so it
 *   covers the allocation path, not only VERSION or an error path; a read-only directory just means
 *   no cache.
 *
 * @packageDocumentation
 */

import { createHash } from "node:crypto";

/** Opens the payload comment. Split in the loader source so the loader never contains it verbatim. */
const PAYLOAD_START = "/*@@margay-payload\n";
/** Closes the payload comment. */
const PAYLOAD_END = "\n@@margay-payload*/\n";

/** Makes `code` safe inside a block comment, reversibly: `@` → `@a`, `*\/` → `@b`. */
export function escapePayload(code: string): string {
  return code.replace(/@/g, "@a").replace(/\*\//g, "@b");
}

/** Inverse of {@link escapePayload}. */
export function unescapePayload(text: string): string {
  return text.replace(/@([ab])/g, (_m, c: string) => (c === "a" ? "@" : "*/"));
}

function loaderSource(buildId: string): string {
  // Plain ES2022, CommonJS: this text is the executable's entry and runs before anything is compiled.
  return `"use strict";(() => {
const fs = require("node:fs"), vm = require("node:vm"), path = require("node:path");
const self = __filename;
const text = fs.readFileSync(self, "utf8");
const startMark = "/*@@" + "margay-payload\\n", endMark = "\\n@@" + "margay-payload*/\\n";
const start = text.indexOf(startMark) + startMark.length, end = text.lastIndexOf(endMark);
if (start < startMark.length || end < start) throw new Error("margay-ipam: corrupt executable (no payload)");
const code = text.slice(start, end).replace(/@([ab])/g, (m, c) => (c === "a" ? "@" : "*/"));
const lineOffset = text.slice(0, start).split("\\n").length - 1;
const cacheFile = path.join(path.dirname(self), "." + path.basename(self) + ".${buildId}." + process.version + "." + process.arch + ".v8cache");
let cachedData;
try {
  const st = fs.statSync(cacheFile);
  const uid = typeof process.getuid === "function" ? process.getuid() : 0;
  if ((st.uid === uid || st.uid === 0) && (st.mode & 0o022) === 0) cachedData = fs.readFileSync(cacheFile);
} catch {}
const wrapped = "(function (exports, require, module, __filename, __dirname) {" + code + "\\n})";
const script = new vm.Script(wrapped, { filename: self, lineOffset, cachedData });
if (cachedData === undefined || script.cachedDataRejected) {
  process.once("exit", (status) => {
    if (status !== 0 || process.env.CNI_COMMAND !== "ADD") return;
    const tmp = cacheFile + ".tmp-" + process.pid;
    try {
      fs.writeFileSync(tmp, script.createCachedData(), { mode: 0o600 });
      fs.renameSync(tmp, cacheFile);
    } catch {
      try { fs.unlinkSync(tmp); } catch {}
    }
  });
}
script.runInThisContext().call(module.exports, module.exports, require, module, self, path.dirname(self));
})();
`;
}

/**
 * Wraps a CommonJS bundle into the self-caching executable described in the module comment. The
 * result starts with `#!/usr/bin/env node`; a shebang already on `code` is dropped.
 */
export function wrapWithCodeCache(code: string): string {
  const body = code.startsWith("#!") ? code.slice(code.indexOf("\n") + 1) : code;
  const buildId = createHash("sha256").update(body).digest("hex").slice(0, 16);
  return `#!/usr/bin/env node\n${loaderSource(buildId)}${PAYLOAD_START}${escapePayload(body)}${PAYLOAD_END}`;
}
