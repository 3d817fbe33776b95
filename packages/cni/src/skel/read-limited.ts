/**
 * Reads a stream to its end with a byte limit, so a runaway or hostile runtime cannot make a plugin
 * buffer unbounded input.
 *
 * @packageDocumentation
 */

import { CniError, CniErrorCode, isCniError } from "../spec/errors.js";

/** Input a plugin reads its configuration from: a stream of chunks or the bytes themselves. */
export type PluginInput = AsyncIterable<Uint8Array | string> | Uint8Array | string;

/**
 * Collects `input` into one buffer. Throws a code-5 {@link CniError} (I/O failure) when it exceeds
 * `maxBytes` or the stream fails.
 */
export async function readLimited(input: PluginInput, maxBytes: number): Promise<Buffer> {
  if (typeof input === "string" || input instanceof Uint8Array) {
    const b = Buffer.from(input);
    if (b.length > maxBytes) throw tooLarge(maxBytes);
    return b;
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of input) {
      const b =
        typeof chunk === "string"
          ? Buffer.from(chunk)
          : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      total += b.length;
      if (total > maxBytes) throw tooLarge(maxBytes);
      chunks.push(b);
    }
  } catch (e) {
    if (isCniError(e)) throw e;
    throw new CniError(CniErrorCode.IoFailure, "error reading from stdin", { details: String(e), cause: e });
  }
  return Buffer.concat(chunks, total);
}

function tooLarge(maxBytes: number): CniError {
  return new CniError(CniErrorCode.IoFailure, "network configuration on stdin is too large", {
    details: `limit is ${maxBytes} bytes`,
  });
}
