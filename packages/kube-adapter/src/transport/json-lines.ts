/**
 * Sans-IO framer of a watch stream: the API server writes one JSON document per line. `push(chunk)`
 * returns the complete lines the chunk finishes; partial lines wait for the next chunk.
 *
 * Lines are cut on the newline byte before any decoding: UTF-8 never uses 0x0A inside a multi-byte
 * sequence, so each line decodes on its own, and a chunk of many events costs one decode per event
 * rather than a decode of the chunk, a concatenation with the previous remainder and a split.
 *
 * @packageDocumentation
 */

const NEWLINE = 0x0a;

/** True for a line of only JSON whitespace (blank lines between events are allowed). */
function isBlank(line: string): boolean {
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c !== 0x20 && c !== 0x09 && c !== 0x0d && c !== 0x0a) return false;
  }
  return true;
}

/** Splits a byte stream into newline-terminated lines, decoded as UTF-8 (split-safe). */
export class JsonLineFramer {
  /** Bytes of the line under way, in arrival order (usually at most one piece). */
  private pending: Buffer[] = [];

  /** Feeds a chunk; returns the non-empty lines it completes, in order. */
  push(chunk: Uint8Array): string[] {
    const buf = Buffer.isBuffer(chunk)
      ? chunk
      : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const out: string[] = [];
    let start = 0;
    for (let nl = buf.indexOf(NEWLINE); nl !== -1; nl = buf.indexOf(NEWLINE, start)) {
      let line: string;
      if (this.pending.length === 0) {
        line = buf.toString("utf8", start, nl);
      } else {
        this.pending.push(buf.subarray(0, nl));
        line = Buffer.concat(this.pending).toString("utf8");
        this.pending = [];
      }
      // Real events start with `{`; anything else is checked for being blank before it is kept.
      if (line.charCodeAt(0) === 0x7b || !isBlank(line)) out.push(line);
      start = nl + 1;
    }
    // A copy, so the remainder does not pin the whole chunk (or a pooled buffer) until the line ends.
    if (start < buf.length) this.pending.push(Buffer.from(buf.subarray(start)));
    return out;
  }

  /** Bytes received after the last complete line (a stream that ends here was cut mid-event). */
  get buffered(): string {
    return Buffer.concat(this.pending).toString("utf8");
  }
}
