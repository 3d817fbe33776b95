/**
 * Sans-IO framer of a watch stream: the API server writes one JSON document per line. `push(chunk)`
 * returns the complete lines the chunk finishes; partial lines wait for the next chunk.
 *
 * @packageDocumentation
 */

/** Splits a byte stream into newline-terminated lines, decoded as UTF-8 (split-safe). */
export class JsonLineFramer {
  private readonly decoder = new TextDecoder("utf-8");
  private pending = "";

  /** Feeds a chunk; returns the non-empty lines it completes, in order. */
  push(chunk: Uint8Array): string[] {
    const text = this.pending + this.decoder.decode(chunk, { stream: true });
    const lines = text.split("\n");
    this.pending = lines.pop()!;
    return lines.filter((l) => l.trim() !== "");
  }

  /** Bytes received after the last complete line (a stream that ends here was cut mid-event). */
  get buffered(): string {
    return this.pending;
  }
}
