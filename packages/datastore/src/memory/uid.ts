/**
 * Object uids for the memory backend: random (version 4) UUIDs, as `crypto.randomUUID` makes, but as
 * flat strings. Node builds `randomUUID()`'s result by concatenating 20 pieces, which V8 keeps as a
 * tree of some 15 concatenation nodes (about 500 bytes) until something flattens it; a stored uid is
 * kept as long as its object, and a store of a million IPAM handles held half a gigabyte of such trees
 * (#20). Here the text is written into a buffer and read out once: one 36-character string.
 */

import { randomFillSync } from "node:crypto";

/** Random bytes drawn at once (256 uids), as Node's own uid cache does. */
const POOL_BYTES = 16 * 256;
const HEX = "0123456789abcdef";
/** Buffer offset of each of the 16 bytes' two hex digits in the text (dashes at 8, 13, 18 and 23). */
const AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

let pool: Buffer | undefined;
let next = POOL_BYTES;
const text = Buffer.alloc(36, "-");

/** A new random UUID (RFC 9562 version 4, lower case), as a flat string. */
export function flatUuid(): string {
  if (next >= POOL_BYTES) {
    pool ??= Buffer.allocUnsafe(POOL_BYTES);
    randomFillSync(pool);
    next = 0;
  }
  const p = pool!;
  for (let i = 0; i < 16; i++) {
    let b = p[next + i]!;
    // Byte 6 carries the version (4), byte 8 the RFC 9562 variant.
    if (i === 6) b = (b & 0x0f) | 0x40;
    else if (i === 8) b = (b & 0x3f) | 0x80;
    text[AT[i]!] = HEX.charCodeAt(b >> 4);
    text[AT[i]! + 1] = HEX.charCodeAt(b & 15);
  }
  next += 16;
  return text.toString("latin1", 0, 36);
}
