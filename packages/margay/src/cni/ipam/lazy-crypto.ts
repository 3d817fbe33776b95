/**
 * What the margay-ipam bundle gets for `node:crypto` (see `lazyCrypto` in bundle-plugins.ts). Loading
 * `node:crypto` initialises OpenSSL and ~35 internal modules, a few ms of every invocation, yet the
 * memory path only needs random bytes for object uids and temp file names. Those come from
 * `/dev/urandom` (the kernel CSPRNG `crypto.randomBytes` itself draws from); anything else loads the
 * real module on first use.
 *
 * @packageDocumentation
 */

import type * as NodeCrypto from "node:crypto";
import { closeSync, openSync, readSync } from "node:fs";

let real: typeof NodeCrypto | undefined;

function crypto(): typeof NodeCrypto {
  real ??= process.getBuiltinModule("node:crypto");
  return real;
}

function urandom(size: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  const fd = openSync("/dev/urandom", "r");
  try {
    let off = 0;
    while (off < size) {
      const n = readSync(fd, out, off, size - off, null);
      if (n <= 0) throw new Error("short read from /dev/urandom");
      off += n;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

/** `crypto.randomBytes`: synchronous calls read `/dev/urandom`; the callback form is the real one. */
export function randomBytes(size: number): Buffer;
export function randomBytes(size: number, callback: (err: Error | null, buf: Buffer) => void): void;
export function randomBytes(
  size: number,
  callback?: (err: Error | null, buf: Buffer) => void,
): Buffer | undefined {
  if (callback !== undefined) {
    crypto().randomBytes(size, callback);
    return undefined;
  }
  if (!Number.isInteger(size) || size < 0) return crypto().randomBytes(size);
  try {
    return urandom(size);
  } catch {
    return crypto().randomBytes(size); // no /dev/urandom (chroot, seccomp): the real thing
  }
}

/**
 * `crypto.randomFillSync` for a whole Buffer or typed array (what the memory datastore's uids draw):
 * `/dev/urandom`; offsets, sizes and other views go to the real module.
 */
export function randomFillSync<T extends NodeJS.ArrayBufferView>(
  buffer: T,
  offset?: number,
  size?: number,
): T {
  if (offset !== undefined || size !== undefined || !(buffer instanceof Uint8Array)) {
    return crypto().randomFillSync(buffer, offset, size);
  }
  try {
    buffer.set(urandom(buffer.byteLength));
    return buffer;
  } catch {
    return crypto().randomFillSync(buffer);
  }
}

/** `crypto.randomUUID`: an RFC 9562 version 4 UUID from {@link randomBytes}. */
export function randomUUID(
  options?: NodeCrypto.RandomUUIDOptions,
): `${string}-${string}-${string}-${string}-${string}` {
  if (options !== undefined) return crypto().randomUUID(options);
  const b = randomBytes(16);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** `crypto.createHash`, from the real module (loaded on first call). */
export function createHash(algorithm: string, options?: NodeCrypto.HashOptions): NodeCrypto.Hash {
  return crypto().createHash(algorithm, options);
}

/** `crypto.hash` (one-shot digest), from the real module (loaded on first call). */
export function hash(
  algorithm: string,
  data: NodeCrypto.BinaryLike,
  outputEncoding: NodeCrypto.BinaryToTextEncoding,
): string {
  return crypto().hash(algorithm, data, outputEncoding);
}
