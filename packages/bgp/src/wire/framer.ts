/**
 * Splits a TCP byte stream into complete BGP messages (sans-IO): `push(chunk)` returns the messages
 * completed by that chunk, however the stream was split or coalesced.
 *
 * @packageDocumentation
 */
import { HEADER_LENGTH, MAX_EXTENDED_MESSAGE_SIZE, MAX_MESSAGE_SIZE } from "./constants.js";
import { BgpEncodeError } from "./errors.js";
import { checkHeaderFields } from "./header.js";

/** Options of {@link createFramer}. */
export interface FramerOptions {
  /**
   * Largest accepted message: 4096 (default) or 65535 once RFC 8654 extended messages are negotiated.
   * Can be raised later with {@link Framer.setMaxMessageSize}.
   */
  maxMessageSize?: number;
}

/** A stateful stream splitter. After it throws, the stream is unusable (the session must be reset). */
export interface Framer {
  /**
   * Appends `chunk` and returns every message it completes, each a standalone `Uint8Array` starting with
   * the marker. Throws a Message Header Error {@link BgpWireError} (subcode 1 bad marker, 2 bad length,
   * 3 bad type) as soon as a header is complete and wrong.
   */
  push(chunk: Uint8Array): Uint8Array[];
  /** Changes the size limit (after OPEN negotiation). */
  setMaxMessageSize(max: number): void;
  /** Bytes received but not yet part of a complete message. */
  readonly buffered: number;
}

/** Creates a {@link Framer}. */
export function createFramer(options: FramerOptions = {}): Framer {
  let max = checkMax(options.maxMessageSize ?? MAX_MESSAGE_SIZE);
  let buf = new Uint8Array(0);
  let start = 0;
  let end = 0;

  return {
    push(chunk: Uint8Array): Uint8Array[] {
      const out: Uint8Array[] = [];
      // Fast path: nothing buffered, parse messages straight out of the chunk.
      let src = chunk;
      let s = 0;
      let e = chunk.length;
      if (end > start) {
        if (buf.length - end < chunk.length) {
          const pending = end - start;
          if (pending + chunk.length <= buf.length) buf.copyWithin(0, start, end);
          else {
            const next = new Uint8Array(Math.max(pending + chunk.length, 8192));
            next.set(buf.subarray(start, end));
            buf = next;
          }
          start = 0;
          end = pending;
        }
        buf.set(chunk, end);
        end += chunk.length;
        src = buf;
        s = start;
        e = end;
      }
      while (e - s >= HEADER_LENGTH) {
        const { length } = checkHeaderFields(src, s, max);
        if (e - s < length) break;
        out.push(src.slice(s, s + length));
        s += length;
      }
      if (src === buf) {
        start = s;
        if (start === end) start = end = 0;
      } else if (s < e) {
        // Keep the partial tail; a header already seen has been validated, so it is bounded by `max`.
        if (buf.length < e - s) buf = new Uint8Array(Math.max(e - s, 8192));
        buf.set(src.subarray(s, e), 0);
        start = 0;
        end = e - s;
      }
      return out;
    },
    setMaxMessageSize(m: number): void {
      max = checkMax(m);
    },
    get buffered() {
      return end - start;
    },
  };
}

function checkMax(m: number): number {
  if (!Number.isInteger(m) || m < HEADER_LENGTH || m > MAX_EXTENDED_MESSAGE_SIZE)
    throw new BgpEncodeError("encode-invalid", `maxMessageSize must be an integer in 19..65535, got ${m}`, {
      reason: "max-message-size",
    });
  return m;
}
