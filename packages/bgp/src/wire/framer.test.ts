import { describe, expect, it } from "vitest";
import {
  createFramer,
  encodeMessage,
  isBgpEncodeError,
  isBgpWireError,
  KEEPALIVE_BYTES,
  createCodecContext,
} from "./index.js";

const hdr = (len: number, type: number) => {
  const b = new Uint8Array(len);
  b.fill(0xff, 0, 16);
  b[16] = len >>> 8;
  b[17] = len & 255;
  b[18] = type;
  return b;
};

function catchWire(f: () => unknown) {
  try {
    f();
  } catch (e) {
    if (isBgpWireError(e)) return e;
    throw e;
  }
  throw new Error("expected a BgpWireError");
}

describe("createFramer", () => {
  it("returns nothing until a message is complete, then exactly that message", () => {
    const f = createFramer();
    expect(f.push(KEEPALIVE_BYTES.subarray(0, 10))).toEqual([]);
    expect(f.buffered).toBe(10);
    expect(f.push(KEEPALIVE_BYTES.subarray(10))).toEqual([KEEPALIVE_BYTES]);
    expect(f.buffered).toBe(0);
  });

  it("splits coalesced messages and keeps the partial tail", () => {
    const f = createFramer();
    const two = new Uint8Array([...KEEPALIVE_BYTES, ...KEEPALIVE_BYTES, ...KEEPALIVE_BYTES.subarray(0, 5)]);
    expect(f.push(two)).toHaveLength(2);
    expect(f.buffered).toBe(5);
    expect(f.push(KEEPALIVE_BYTES.subarray(5))).toEqual([KEEPALIVE_BYTES]);
  });

  it("returns copies the caller may keep while the input buffer is reused", () => {
    const f = createFramer();
    const chunk = Uint8Array.from(KEEPALIVE_BYTES);
    const [m] = f.push(chunk);
    chunk.fill(0);
    expect(m).toEqual(KEEPALIVE_BYTES);
  });

  it("rejects a bad marker as soon as the header is complete (Connection Not Synchronized)", () => {
    const bad = hdr(19, 4);
    bad[3] = 0;
    const e = catchWire(() => createFramer().push(bad));
    expect(e.notification).toMatchObject({ code: 1, subcode: 1 });
    expect(e.action).toBe("session-reset");
  });

  it("bounds the length at 4096, or 65535 once extended messages are negotiated (RFC 8654)", () => {
    const big = hdr(5000, 2);
    big[19] = 0;
    big[20] = 0;
    big[21] = (5000 - 23) >>> 8;
    big[22] = (5000 - 23) & 255;
    const e = catchWire(() => createFramer().push(big.subarray(0, 19)));
    expect(e.notification).toMatchObject({ code: 1, subcode: 2, data: new Uint8Array([0x13, 0x88]) });
    const f = createFramer();
    f.setMaxMessageSize(65535);
    expect(f.push(big)).toHaveLength(1);
  });

  it("rejects an unknown type with Bad Message Type and the type as data", () => {
    const e = catchWire(() => createFramer().push(hdr(19, 9)));
    expect(e.notification).toEqual({ code: 1, subcode: 3, data: new Uint8Array([9]) });
  });

  it("refuses an impossible size limit with a typed error", () => {
    try {
      createFramer({ maxMessageSize: 70000 });
      throw new Error("no error");
    } catch (e) {
      expect(isBgpEncodeError(e)).toBe(true);
    }
  });

  it("frames a large stream fed in 1 KiB chunks", () => {
    const ctx = createCodecContext();
    const msg = encodeMessage({ type: 3, code: 6, subcode: 2, data: new Uint8Array(3000).fill(7) }, ctx);
    const stream = new Uint8Array(msg.length * 50);
    for (let i = 0; i < 50; i++) stream.set(msg, i * msg.length);
    const f = createFramer();
    let n = 0;
    for (let i = 0; i < stream.length; i += 1024) n += f.push(stream.subarray(i, i + 1024)).length;
    expect(n).toBe(50);
    expect(f.buffered).toBe(0);
  });
});
