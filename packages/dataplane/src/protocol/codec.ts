import { DATAPLANE_DESCRIPTOR } from "@margay/dataplane-contract";
import protobuf from "protobufjs/light.js";
import type { DataplaneSnapshot } from "../driver.js";
import { DataplaneError, DataplaneErrorCode } from "../errors.js";
import { type DataplaneUpdate, POLICY_KINDS } from "../stream.js";
import { ROUTE_SIDE_KINDS } from "../updates.js";

/** Protocol version spoken by this implementation. */
export const PROTOCOL_VERSION = 1;
/** Default upper bound of one frame (64 MiB): a full sync of a large node fits, garbage does not. */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024;

// The light build plus the descriptor @margay/dataplane-contract generates from its .proto: no .proto
// parser at run time.
const root = protobuf.Root.fromJSON(DATAPLANE_DESCRIPTOR as protobuf.INamespace);
const Envelope = root.lookupType("margay.dataplane.v1.Envelope");

// Every update kind travels as the camelCase oneof field of its name: `route-update` as `routeUpdate`.
const UPDATE_KINDS = [...ROUTE_SIDE_KINDS, ...POLICY_KINDS];
const camel = (kind: string) => kind.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
const FIELD_TO_KIND = new Map<string, string>(UPDATE_KINDS.map((k) => [camel(k), k]));
const KIND_TO_FIELD = new Map<string, string>(UPDATE_KINDS.map((k) => [k, camel(k)]));
// The bodies of the `Envelope.body` oneof, read from the descriptor rather than listed again.
const ENVELOPE_BODIES: readonly string[] = Envelope.oneofs?.body?.oneof ?? [];

/** A request or response of the protocol, as plain objects. */
export type Envelope =
  | { readonly id: number; readonly hello: { readonly version: number; readonly implementation: string } }
  | { readonly id: number; readonly helloAck: { readonly version: number; readonly implementation: string } }
  | { readonly id: number; readonly apply: { readonly updates: readonly DataplaneUpdate[] } }
  | {
      readonly id: number;
      readonly applied: {
        readonly inSync: boolean;
        readonly programmed: boolean;
        readonly warnings: readonly string[];
      };
    }
  | { readonly id: number; readonly snapshot: Record<string, never> }
  | { readonly id: number; readonly snapshotResult: DataplaneSnapshot }
  | { readonly id: number; readonly close: Record<string, never> }
  | { readonly id: number; readonly closed: Record<string, never> }
  | {
      readonly id: number;
      readonly error: {
        readonly code: string;
        readonly message: string;
        readonly retryable: boolean;
        readonly detailsJson: string;
      };
    };

function protocolError(message: string, cause?: unknown): DataplaneError {
  return new DataplaneError(DataplaneErrorCode.Protocol, message, { cause });
}

function updateToWire(u: DataplaneUpdate): Record<string, unknown> {
  const { kind, ...rest } = u as { kind: string } & Record<string, unknown>;
  // The map spares the regex per update; the fallback keeps accepting what `camel` maps onto a field.
  const field = KIND_TO_FIELD.get(kind) ?? camel(kind);
  if (!FIELD_TO_KIND.has(field)) {
    throw new DataplaneError(DataplaneErrorCode.InvalidUpdate, "unknown update kind", { details: { kind } });
  }
  return { [field]: rest };
}

function updateFromWire(o: Record<string, unknown>): DataplaneUpdate {
  for (const [field, value] of Object.entries(o)) {
    const kind = FIELD_TO_KIND.get(field);
    if (kind !== undefined && value !== undefined && value !== null) {
      const payload = { ...(value as Record<string, unknown>) };
      // proto3 cannot tell an absent list from an empty one; `nodes` is optional in the TypeScript type.
      if (kind === "route-update") {
        for (const list of ["nodes", "nextHops"]) {
          if (Array.isArray(payload[list]) && (payload[list] as unknown[]).length === 0) delete payload[list];
        }
      }
      return { kind, ...payload } as DataplaneUpdate;
    }
  }
  throw protocolError("update without a payload");
}

/** Encodes one envelope as a frame: 4-byte big-endian length, then the protobuf bytes. */
export function encodeFrame(envelope: Envelope): Uint8Array {
  let wire: Record<string, unknown> = envelope as unknown as Record<string, unknown>;
  if ("apply" in envelope)
    wire = { id: envelope.id, apply: { updates: envelope.apply.updates.map(updateToWire) } };
  const err = Envelope.verify(wire);
  if (err !== null) throw protocolError(`cannot encode envelope: ${err}`);
  const body = Envelope.encode(Envelope.fromObject(wire)).finish();
  const frame = new Uint8Array(4 + body.length);
  new DataView(frame.buffer).setUint32(0, body.length, false);
  frame.set(body, 4);
  return frame;
}

/** Decodes the protobuf bytes of one frame (without the length prefix). */
export function decodeEnvelope(body: Uint8Array): Envelope {
  let o: Record<string, unknown>;
  try {
    o = Envelope.toObject(Envelope.decode(body), { defaults: true, arrays: true, longs: Number }) as Record<
      string,
      unknown
    >;
  } catch (e) {
    throw protocolError("malformed envelope", e);
  }
  const present = ENVELOPE_BODIES.filter((b) => o[b] !== undefined && o[b] !== null);
  if (present.length !== 1) throw protocolError("envelope must carry exactly one body");
  const id = typeof o.id === "number" ? o.id : 0;
  if (present[0] === "apply") {
    const updates = ((o.apply as { updates?: Record<string, unknown>[] }).updates ?? []).map(updateFromWire);
    return { id, apply: { updates } };
  }
  return { id, [present[0]!]: o[present[0]!] } as unknown as Envelope;
}

/** Sans-IO frame splitter: `push(chunk)` returns every complete frame body the bytes so far contain. */
export interface FrameDecoder {
  /** Feeds bytes; returns complete frame bodies (length prefix removed). */
  push(chunk: Uint8Array): Uint8Array[];
  /** Bytes held for an incomplete frame. */
  readonly buffered: number;
}

/** Creates a {@link FrameDecoder}; a declared length above `maxFrameBytes` throws `protocol`. */
export function createFrameDecoder(maxFrameBytes = DEFAULT_MAX_FRAME_BYTES): FrameDecoder {
  let buf: Uint8Array = new Uint8Array(0);
  return {
    get buffered() {
      return buf.length;
    },
    push(chunk) {
      if (buf.length === 0) buf = chunk;
      else {
        const joined = new Uint8Array(buf.length + chunk.length);
        joined.set(buf, 0);
        joined.set(chunk, buf.length);
        buf = joined;
      }
      const frames: Uint8Array[] = [];
      let off = 0;
      while (buf.length - off >= 4) {
        const len = new DataView(buf.buffer, buf.byteOffset + off, 4).getUint32(0, false);
        if (len > maxFrameBytes)
          throw protocolError(`frame of ${len} bytes exceeds the limit of ${maxFrameBytes}`);
        if (buf.length - off - 4 < len) break;
        frames.push(buf.slice(off + 4, off + 4 + len));
        off += 4 + len;
      }
      buf = off === 0 ? buf : buf.slice(off);
      return frames;
    },
  };
}
