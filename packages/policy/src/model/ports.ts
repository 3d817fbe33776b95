import { PolicyError, PolicyErrorCode } from "../errors.js";
import type { PortRange } from "@margay/dataplane-contract";
import type { Port } from "@margay/api";

/** Ports of an entity rule split into numeric ranges and named ports. */
export interface ParsedPorts {
  readonly ranges: readonly PortRange[];
  readonly names: readonly string[];
}

const EMPTY: ParsedPorts = { ranges: [], names: [] };

function checkPort(n: number, path: string, value: unknown): number {
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new PolicyError(PolicyErrorCode.InvalidInput, `invalid port ${JSON.stringify(value)}`, {
      path,
      value,
    });
  }
  return n;
}

/**
 * Parses Calico port specs: a number, `"80"`, a range `"8000:8080"`, or a port name.
 *
 * @throws {@link PolicyError} `invalid-input` for an out-of-range number or an inverted range.
 */
export function parsePorts(specs: readonly Port[] | undefined, path = "ports"): ParsedPorts {
  if (specs === undefined || specs.length === 0) return EMPTY;
  const ranges: PortRange[] = [];
  const names: string[] = [];
  specs.forEach((spec, i) => {
    const p = `${path}[${i}]`;
    if (typeof spec === "number") {
      const n = checkPort(spec, p, spec);
      ranges.push({ first: n, last: n });
      return;
    }
    const m = /^(\d+)(?::(\d+))?$/.exec(spec);
    if (m !== null) {
      const first = checkPort(Number(m[1]), p, spec);
      const last = m[2] === undefined ? first : checkPort(Number(m[2]), p, spec);
      if (last < first) {
        throw new PolicyError(PolicyErrorCode.InvalidInput, `inverted port range ${JSON.stringify(spec)}`, {
          path: p,
          value: spec,
        });
      }
      ranges.push({ first, last });
      return;
    }
    if (spec.length === 0) {
      throw new PolicyError(PolicyErrorCode.InvalidInput, "empty port name", { path: p, value: spec });
    }
    names.push(spec);
  });
  return { ranges, names };
}

/** True if `port` is inside one of `ranges`. */
export function portInRanges(port: number, ranges: readonly PortRange[]): boolean {
  for (const r of ranges) if (port >= r.first && port <= r.last) return true;
  return false;
}
