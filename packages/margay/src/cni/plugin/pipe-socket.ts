/**
 * The `node:net` of the plugin's bundle (bundle-plugins.ts resolves the workload client's `node:net` here):
 * `connect(path)` to a unix socket, with the few events and methods the client uses (`connect`, `data`,
 * `end`, `error`; `write`, `destroy`). A CNI plugin is a fresh process per call and makes one exchange on
 * one socket; loading `node:net` and the stream stack it requires cost about as much CPU as the rest of
 * the plugin together (measured in bench/cni-plugin.ts: a 15-line script posting one request over
 * `node:net` costs ~10 ms over `node -e 0`, the same over libuv's pipe handle ~0).
 *
 * So on the Node majors it was written and tested against, it drives libuv's pipe handle as `node:net`
 * itself does (`process.binding("pipe_wrap")`/`("stream_wrap")`, allowed by Node without a warning
 * unless `--pending-deprecation`), and falls back to `node:net` when anything about those bindings is
 * not as expected, on any other major, or when a deprecation flag is set. The choice is made before
 * connecting, never after a byte was sent. Errors carry the `code` `node:net` gives (`ENOENT`,
 * `ECONNREFUSED`, `EPIPE`, ...), so the client maps them the same way on both paths.
 *
 * @packageDocumentation
 */
import { EventEmitter } from "node:events";
import { connect as netConnect } from "node:net";
import { getSystemErrorName } from "node:util";

/** What the workload client uses of a `net.Socket`. */
export interface PipeSocket {
  once(event: "connect" | "end", listener: () => void): this;
  once(event: "error", listener: (e: NodeJS.ErrnoException) => void): this;
  on(event: "data", listener: (chunk: Buffer) => void): this;
  write(text: string): boolean;
  destroy(): this;
}

/** Node majors whose pipe_wrap/stream_wrap shape this module was tested against. */
const TESTED_MAJORS: readonly string[] = ["20"];

interface Bindings {
  Pipe: new (type: number) => PipeHandle;
  PipeConnectWrap: new () => { oncomplete?: (status: number) => void; address?: string };
  SOCKET: number;
  WriteWrap: new () => { handle?: unknown; oncomplete?: (status: number) => void; async?: boolean };
  state: Int32Array;
  kReadBytesOrError: number;
  kArrayBufferOffset: number;
  kLastWriteWasAsync: number;
  UV_EOF: number;
}
interface PipeHandle {
  connect(req: object, path: string): number;
  writeUtf8String(req: object, text: string): number;
  readStart(): number;
  close(): void;
  onread?: (buf: ArrayBuffer | undefined) => void;
}

let bindings: Bindings | null | undefined;

/** libuv's pipe bindings when they are as this module expects, else null (then `node:net` is used). */
export function pipeBindings(): Bindings | null {
  if (bindings !== undefined) return bindings;
  bindings = null;
  const flags = `${process.execArgv.join(" ")} ${process.env.NODE_OPTIONS ?? ""}`;
  if (!TESTED_MAJORS.includes(process.versions.node.split(".")[0]!) || /deprecation/.test(flags))
    return bindings;
  try {
    const binding = (process as unknown as { binding(name: string): Record<string, unknown> }).binding;
    const pw = binding("pipe_wrap");
    const sw = binding("stream_wrap");
    const uv = binding("uv");
    const pipe = pw.Pipe as ((...a: unknown[]) => unknown) | undefined;
    const proto = pipe?.prototype as Record<string, unknown> | undefined;
    const constants = pw.constants as { SOCKET?: unknown } | undefined;
    const ok =
      typeof pipe === "function" &&
      ["connect", "writeUtf8String", "readStart", "close"].every((m) => typeof proto?.[m] === "function") &&
      typeof pw.PipeConnectWrap === "function" &&
      typeof constants?.SOCKET === "number" &&
      typeof sw.WriteWrap === "function" &&
      sw.streamBaseState instanceof Int32Array &&
      ["kReadBytesOrError", "kArrayBufferOffset", "kLastWriteWasAsync"].every(
        (k) => typeof sw[k] === "number",
      ) &&
      typeof uv.UV_EOF === "number";
    if (ok)
      bindings = {
        Pipe: pw.Pipe as Bindings["Pipe"],
        PipeConnectWrap: pw.PipeConnectWrap as Bindings["PipeConnectWrap"],
        SOCKET: constants.SOCKET as number,
        WriteWrap: sw.WriteWrap as Bindings["WriteWrap"],
        state: sw.streamBaseState as Int32Array,
        kReadBytesOrError: sw.kReadBytesOrError as number,
        kArrayBufferOffset: sw.kArrayBufferOffset as number,
        kLastWriteWasAsync: sw.kLastWriteWasAsync as number,
        UV_EOF: uv.UV_EOF as number,
      };
  } catch {
    bindings = null;
  }
  return bindings;
}

function errnoError(status: number, syscall: string, path: string): NodeJS.ErrnoException {
  let code: string;
  try {
    code = getSystemErrorName(status);
  } catch {
    code = `E${-status}`;
  }
  const e: NodeJS.ErrnoException = new Error(`${syscall} ${code} ${path}`);
  e.code = code;
  e.errno = status;
  e.syscall = syscall;
  return e;
}

/** One connection over libuv's pipe handle; events as `net.Socket` emits them for this use. */
class Pipe extends EventEmitter implements PipeSocket {
  readonly #b: Bindings;
  readonly #handle: PipeHandle;
  readonly #path: string;
  #destroyed = false;
  #ended = false;
  // Held until libuv completes them (they must not be collected while pending).
  #pending = new Set<object>();

  constructor(b: Bindings, path: string) {
    super();
    this.#b = b;
    this.#path = path;
    this.#handle = new b.Pipe(b.SOCKET);
    const req = new b.PipeConnectWrap();
    req.address = path;
    req.oncomplete = (status) => {
      this.#pending.delete(req);
      if (this.#destroyed) return; // destroyed while connecting: libuv cancels, nothing to report
      if (status < 0) return this.#fail(errnoError(status, "connect", path));
      this.#handle.onread = (buf) => this.#onread(buf);
      const err = this.#handle.readStart();
      if (err < 0) return this.#fail(errnoError(err, "read", path));
      this.emit("connect");
    };
    this.#pending.add(req);
    const err = this.#handle.connect(req, path);
    // As net.Socket: a synchronous failure is still reported asynchronously.
    if (err < 0) {
      this.#pending.delete(req);
      process.nextTick(() => this.#fail(errnoError(err, "connect", path)));
    }
  }

  write(text: string): boolean {
    if (this.#destroyed) return false;
    const b = this.#b;
    const req = new b.WriteWrap();
    req.handle = this.#handle;
    req.async = false;
    req.oncomplete = (status) => {
      this.#pending.delete(req);
      if (status < 0 && !this.#destroyed) this.#fail(errnoError(status, "write", this.#path));
    };
    const err = this.#handle.writeUtf8String(req, text);
    if (err < 0) {
      process.nextTick(() => this.#fail(errnoError(err, "write", this.#path)));
      return false;
    }
    if (b.state[b.kLastWriteWasAsync] !== 0) this.#pending.add(req);
    return true;
  }

  destroy(): this {
    if (!this.#destroyed) {
      this.#destroyed = true;
      this.#handle.close();
    }
    return this;
  }

  #onread(buf: ArrayBuffer | undefined): void {
    if (this.#destroyed) return;
    const b = this.#b;
    const n = b.state[b.kReadBytesOrError]!;
    if (n > 0 && buf !== undefined) {
      this.emit("data", Buffer.from(buf, b.state[b.kArrayBufferOffset]!, n));
      return;
    }
    if (n === b.UV_EOF) {
      if (this.#ended) return;
      this.#ended = true;
      this.emit("end");
      this.destroy();
      return;
    }
    if (n < 0) this.#fail(errnoError(n, "read", this.#path));
  }

  #fail(e: NodeJS.ErrnoException): void {
    if (this.#destroyed) return;
    this.destroy();
    this.emit("error", e);
  }
}

/** Options of {@link connect}; for tests. */
export interface PipeConnectOptions {
  /** Use `node:net` even where libuv's pipe handle is usable. */
  readonly forceNet?: boolean | undefined;
}

/**
 * Connects to the unix socket `path`: over libuv's pipe handle where {@link pipeBindings} finds it as
 * expected, else with `node:net`.
 */
export function connect(path: string, options: PipeConnectOptions = {}): PipeSocket {
  const b = options.forceNet === true ? null : pipeBindings();
  return b === null ? netConnect(path) : new Pipe(b, path);
}
