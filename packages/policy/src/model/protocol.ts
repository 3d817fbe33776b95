import { PolicyError, PolicyErrorCode } from "../errors.js";

/** IP protocol numbers of the names Calico accepts. */
export const PROTOCOL_NUMBERS: Readonly<Record<string, number>> = {
  icmp: 1,
  tcp: 6,
  udp: 17,
  icmpv6: 58,
  sctp: 132,
  udplite: 136,
};

const NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(PROTOCOL_NUMBERS).map(([k, v]) => [v, k]),
);

/** Protocols whose packets carry ports (so port matches and named ports apply). */
export const PORT_PROTOCOLS: ReadonlySet<number> = new Set([6, 17, 132, 136]);

/**
 * The protocol number of a name (`TCP`, `udp`, `ICMPv6`, ...) or number (0–255, also as a string).
 *
 * @throws {@link PolicyError} `invalid-input` otherwise.
 */
export function protocolNumber(p: string | number, path = "protocol"): number {
  if (typeof p === "number") {
    if (Number.isInteger(p) && p >= 0 && p <= 255) return p;
  } else {
    const n = PROTOCOL_NUMBERS[p.toLowerCase()];
    if (n !== undefined) return n;
    if (/^\d{1,3}$/.test(p) && Number(p) <= 255) return Number(p);
  }
  throw new PolicyError(PolicyErrorCode.InvalidInput, `invalid protocol ${JSON.stringify(p)}`, {
    path,
    value: p,
  });
}

/** Lower-case name of a protocol number (`tcp`), or the number as a string when it has no name. */
export function protocolName(n: number): string {
  return NAMES[n] ?? String(n);
}
