/**
 * IP address text: which family a string is, without `node:net`. Loading `node:net` pulls in the whole
 * stream stack (~30 internal modules, several ms), which every plugin built on the skeleton would pay
 * at start only to validate a few addresses.
 *
 * Accepted forms are those of Go's `net.ParseIP`, which libcni and the reference plugins use: dotted
 * decimal IPv4 without leading zeros, and RFC 4291 IPv6 text (one `::`, an optional dotted IPv4 tail).
 * Zone suffixes (`fe80::1%eth0`) are not addresses in CNI configurations or results and are rejected.
 *
 * @packageDocumentation
 */

function isDecimalOctet(s: string): boolean {
  const n = s.length;
  if (n === 0 || n > 3) return false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  if (n > 1 && s.charCodeAt(0) === 48) return false;
  return Number(s) <= 255;
}

function isIpv4(s: string): boolean {
  const parts = s.split(".");
  return parts.length === 4 && parts.every(isDecimalOctet);
}

function isHexGroup(s: string): boolean {
  const n = s.length;
  if (n === 0 || n > 4) return false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    const hex = (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
    if (!hex) return false;
  }
  return true;
}

/** Number of 16-bit groups a `:`-separated run stands for, or -1 if malformed. */
function groupCount(run: string, ipv4TailAllowed: boolean): number {
  if (run === "") return 0;
  const parts = run.split(":");
  let count = 0;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (ipv4TailAllowed && i === parts.length - 1 && p.includes(".")) {
      if (!isIpv4(p)) return -1;
      count += 2;
    } else if (isHexGroup(p)) {
      count += 1;
    } else {
      return -1;
    }
  }
  return count;
}

function isIpv6(s: string): boolean {
  const gap = s.indexOf("::");
  if (gap === -1) return groupCount(s, true) === 8;
  if (s.indexOf("::", gap + 1) !== -1) return false;
  const head = groupCount(s.slice(0, gap), false);
  const tail = groupCount(s.slice(gap + 2), true);
  // `::` stands for at least one zero group.
  return head >= 0 && tail >= 0 && head + tail <= 7;
}

/** The family of an IP address string: 4, 6, or 0 when it is not an address. */
export function ipFamily(s: string): 0 | 4 | 6 {
  if (s.includes(":")) return isIpv6(s) ? 6 : 0;
  return isIpv4(s) ? 4 : 0;
}
