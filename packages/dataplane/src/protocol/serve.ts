import type { Readable, Writable } from "node:stream";
import type { DataplaneDriver } from "../driver.js";
import { DataplaneErrorCode, isDataplaneError } from "../errors.js";
import { type Envelope, PROTOCOL_VERSION, createFrameDecoder, decodeEnvelope, encodeFrame } from "./codec.js";

/** Options of {@link serveDataplane}. */
export interface ServeDataplaneOptions {
  /** Where requests arrive (a child's `process.stdin`, or a socket). */
  readonly input: Readable;
  /** Where responses go (`process.stdout`, or the same socket). */
  readonly output: Writable;
  /** Name reported in the handshake. Default `margay`. */
  readonly implementation?: string | undefined;
  /** Frame size limit. Default 64 MiB. */
  readonly maxFrameBytes?: number | undefined;
}

/** The wire form of an error response. */
interface ErrorBody {
  code: string;
  message: string;
  retryable: boolean;
  detailsJson: string;
}

function errorBody(e: unknown): ErrorBody {
  if (isDataplaneError(e)) {
    let detailsJson = "{}";
    try {
      detailsJson = JSON.stringify(e.details);
    } catch {
      // Details that do not serialise are dropped; code and message still cross.
    }
    return { code: e.code, message: e.message, retryable: e.retryable, detailsJson };
  }
  return {
    code: DataplaneErrorCode.Remote,
    message: e instanceof Error ? e.message : String(e),
    retryable: false,
    detailsJson: "{}",
  };
}

/**
 * The child side of the protocol: reads framed requests from `input`, runs them against `driver` one at a
 * time (the stream is ordered), writes one framed response per request. Resolves when the host sends
 * `close` (after closing the driver) or `input` ends; rejects on a framing error.
 */
export function serveDataplane(driver: DataplaneDriver, options: ServeDataplaneOptions): Promise<void> {
  const decoder = createFrameDecoder(options.maxFrameBytes);
  const implementation = options.implementation ?? "margay";
  let chain: Promise<void> = Promise.resolve();
  let done = false;
  return new Promise<void>((resolve, reject) => {
    const send = (env: Envelope) => {
      options.output.write(encodeFrame(env));
    };
    const finish = (err?: unknown) => {
      if (done) return;
      done = true;
      options.input.off("data", onData);
      if (err === undefined) resolve();
      else reject(err);
    };
    const handle = async (env: Envelope): Promise<void> => {
      const id = env.id;
      try {
        if ("hello" in env) send({ id, helloAck: { version: PROTOCOL_VERSION, implementation } });
        else if ("apply" in env) {
          const r = await driver.apply(env.apply.updates);
          send({ id, applied: { inSync: r.inSync, programmed: r.programmed, warnings: [...r.warnings] } });
        } else if ("snapshot" in env) send({ id, snapshotResult: await driver.snapshot() });
        else if ("close" in env) {
          await driver.close();
          send({ id, closed: {} });
          finish();
        } else send({ id, error: errorBody(new Error("unexpected message")) });
      } catch (e) {
        send({ id, error: errorBody(e) });
      }
    };
    const onData = (chunk: Buffer) => {
      let frames: Uint8Array[];
      try {
        frames = decoder.push(chunk);
      } catch (e) {
        finish(e);
        return;
      }
      for (const f of frames) {
        let env: Envelope;
        try {
          env = decodeEnvelope(f);
        } catch (e) {
          send({ id: 0, error: errorBody(e) });
          continue;
        }
        chain = chain.then(() => handle(env));
      }
    };
    options.input.on("data", onData);
    options.input.once("end", () => {
      chain.then(() => finish());
    });
  });
}
