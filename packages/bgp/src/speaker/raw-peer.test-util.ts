/**
 * A scripted BGP peer for speaker tests, built from the wire codec only: it completes the OPEN exchange,
 * records every UPDATE it receives and lets the test write raw bytes. It keeps no RIB and runs no loop
 * check, so a test sees exactly what the speaker sent.
 */
import { connect, type Socket } from "node:net";
import { waitFor } from "../interop/util.js";
import {
  createCodecContext,
  createFramer,
  decodeUpdate,
  encodeMessage,
  formatPrefix,
  messageType,
} from "../wire/index.js";
import type { Capability, PathAttributes } from "../wire/types.js";

/** The codec context of a raw peer (4,096-byte messages, 4-octet ASNs). */
export const rawCtx = createCodecContext();

/** A connected raw peer. */
export interface RawPeer {
  readonly socket: Socket;
  /** Types of the messages received, in order. */
  readonly received: number[];
  /** The UPDATEs received, in order. */
  readonly updates: Uint8Array[];
}

/** Options of {@link rawPeer}. */
export interface RawPeerOptions {
  afis?: readonly number[];
  extraCaps?: readonly Capability[];
  /** BGP identifier (default 10.9.9.9). */
  bgpId?: string;
}

/** Connects from `local` to a speaker at `host:port` as AS `asn`; `cleanups` gets its teardown. */
export async function rawPeer(
  cleanups: (() => unknown)[],
  port: number,
  host: string,
  local: string,
  asn: number,
  o: RawPeerOptions = {},
): Promise<RawPeer> {
  const socket: Socket = connect({ host, port, localAddress: local });
  cleanups.push(() => socket.destroy());
  const framer = createFramer();
  const received: number[] = [];
  const updates: Uint8Array[] = [];
  let established = false;
  socket.on("data", (chunk: Buffer) => {
    for (const m of framer.push(chunk)) {
      const t = messageType(m);
      received.push(t);
      if (t === 2) updates.push(m);
      if (t === 1) socket.write(encodeMessage({ type: 4 }, rawCtx));
      if (t === 4) established = true;
    }
  });
  socket.on("error", () => {});
  await new Promise<void>((r) => socket.once("connect", () => r()));
  socket.write(
    encodeMessage(
      {
        type: 1,
        version: 4,
        myAs: asn,
        holdTime: 90,
        bgpId: o.bgpId ?? "10.9.9.9",
        capabilities: [
          ...(o.afis ?? [1]).map((afi) => ({
            code: 1 as const,
            kind: "multiprotocol" as const,
            afi,
            safi: 1,
          })),
          { code: 65, kind: "four-octet-as", asn },
          ...(o.extraCaps ?? []),
        ],
      },
      rawCtx,
    ),
  );
  await waitFor(() => established, "raw peer established");
  return { socket, received, updates };
}

/** What a peer holds after `updates`: prefix → the attributes it was last announced with. */
export function heldRoutes(updates: readonly Uint8Array[]): Map<string, PathAttributes> {
  const held = new Map<string, PathAttributes>();
  for (const u of updates) {
    const d = decodeUpdate(u, rawCtx).update;
    for (const p of d.withdrawn) held.delete(formatPrefix(p));
    if (d.attributes.mpUnreach)
      for (const p of d.attributes.mpUnreach.withdrawn) held.delete(formatPrefix(p));
    for (const p of d.nlri) held.set(formatPrefix(p), d.attributes);
    if (d.attributes.mpReach)
      for (const p of d.attributes.mpReach.nlri) held.set(formatPrefix(p), d.attributes);
  }
  return held;
}

/** Every prefix `updates` announced or withdrew, each time it did, in order (`+p` / `-p`). */
export function prefixEvents(updates: readonly Uint8Array[]): string[] {
  const out: string[] = [];
  for (const u of updates) {
    const d = decodeUpdate(u, rawCtx).update;
    for (const p of d.withdrawn) out.push(`-${formatPrefix(p)}`);
    if (d.attributes.mpUnreach)
      for (const p of d.attributes.mpUnreach.withdrawn) out.push(`-${formatPrefix(p)}`);
    for (const p of d.nlri) out.push(`+${formatPrefix(p)}`);
    if (d.attributes.mpReach) for (const p of d.attributes.mpReach.nlri) out.push(`+${formatPrefix(p)}`);
  }
  return out;
}
