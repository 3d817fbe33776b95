import { createHash } from "node:crypto";

// Hashing dominates rendering at scale, so names are memoised; the cache is dropped wholesale when it
// grows past a bound (ids of deleted objects would otherwise accumulate).
const memo = new Map<string, string>();
const h = (ns: string, id: string) => {
  const key = `${ns}\0${id}`;
  let v = memo.get(key);
  if (v === undefined) {
    if (memo.size > 200_000) memo.clear();
    v = createHash("sha1").update(key).digest("hex").slice(0, 16);
    memo.set(key, v);
  }
  return v;
};

/**
 * nftables object names. Stream ids can hold any character, so names are a short kind tag plus 16 hex
 * digits of SHA-1 (collisions need 2^32 objects); `nft list` output maps back through the model.
 */
export const nftNames = {
  /**
   * IPv4 / IPv6 address sets of an `ip` or `net` IP set: `s4-`/`s6-` with the interval flag (some member
   * is a prefix), `a4-`/`a6-` without (every member one address). The flag is in the name because nft
   * cannot change it in place, and a set without it costs nft far less: before each command that needs
   * its cache, nft 1.0 reads back the elements of EVERY interval set in the table.
   */
  addrSet: (id: string, family: 4 | 6, interval = true) => `${interval ? "s" : "a"}${family}-${h("set", id)}`,
  /** IPv4 / IPv6 `address . protocol . port` sets of an `ip-and-port` IP set. */
  portSet: (id: string, family: 4 | 6) => `n${family}-${h("set", id)}`,
  /** Policy chain (inbound `pi-`, outbound `po-`). */
  policy: (id: string, dir: "in" | "out") => `p${dir === "in" ? "i" : "o"}-${h("policy", id)}`,
  /** Profile chain. */
  profile: (id: string, dir: "in" | "out") => `r${dir === "in" ? "i" : "o"}-${h("profile", id)}`,
  /** Workload endpoint chain: `wi-` traffic to the workload (its ingress), `wo-` from it (egress). */
  workload: (id: string, dir: "in" | "out") => `w${dir === "in" ? "i" : "o"}-${h("workload", id)}`,
  /**
   * A workload endpoint chain named by its rules (`ei-`/`eo-`): endpoints whose chains are the same
   * (the pods of one deployment) share one, so adding such a pod adds no chain. nft re-reads every chain
   * of the table before each command that needs its cache, at a cost that grows faster than the count.
   */
  workloadShared: (dir: "in" | "out", rules: readonly string[]) =>
    `e${dir === "in" ? "i" : "o"}-${createHash("sha1").update(rules.join("\n")).digest("hex").slice(0, 16)}`,
  /** Host endpoint chain: `hi-` traffic to the host, `ho-` from it. */
  host: (id: string, dir: "in" | "out") => `h${dir === "in" ? "i" : "o"}-${h("host", id)}`,
  /**
   * Host endpoint stage chains outside the filter hooks: `ui-`/`uo-` untracked (raw priority), `di-`
   * pre-DNAT (ingress only), `fi-`/`fo-` applyOnForward (forward hook).
   */
  hostStage: (id: string, stage: "untracked" | "pre-dnat" | "forward", dir: "in" | "out") =>
    `${stage === "untracked" ? "u" : stage === "pre-dnat" ? "d" : "f"}${dir === "in" ? "i" : "o"}-${h("host", id)}`,
} as const;
