/**
 * The pure core of a block: state in, new state out, no I/O. Every function returns a fresh spec and
 * never mutates its input, so a caller can keep the old state for a compare-and-swap retry.
 */
import { appendShared } from "@margay/datastore";
import { type Cidr, type IpAddr, cidrContains, cidrSize, familyBits } from "./cidr.js";
import { IpamError, IpamErrorCode } from "./errors.js";
import type { BlockAttribute, IpamBlockSpec, IpamHandleSpec } from "./types.js";

/**
 * A mutable copy of a list. A loop, not `slice` or a spread: the datastore may hand out its stored
 * blocks frozen (the memory backend does), and V8 copies a frozen array on a slow path, some 30 times
 * slower than this (an allocation copies three lists of its block).
 */
function copyList<T>(a: readonly T[]): T[] {
  const n = a.length;
  const out = new Array<T>(n);
  for (let i = 0; i < n; i++) out[i] = a[i]!;
  return out;
}

/** A mutable copy of a record (a loop, for the same reason as {@link copyList}). */
function copyRecord<V>(r: Readonly<Record<string, V>> | undefined): Record<string, V> {
  const out: Record<string, V> = {};
  if (r !== undefined) for (const k of Object.keys(r)) out[k] = r[k]!;
  return out;
}

/** Largest block the core accepts (2^12 addresses): blocks are stored as one object each. */
export const MAX_BLOCK_ADDRESSES = 4096;

/** Affinity string of a node (`host:<node>`), as Calico writes it. */
export function hostAffinity(node: string): string {
  return `host:${node}`;
}

/** The node named by an affinity string, or undefined if it is not a host affinity. */
export function affinityNode(affinity: string | null | undefined): string | undefined {
  return affinity?.startsWith("host:") ? affinity.slice(5) : undefined;
}

/** Number of addresses of a block, checked against {@link MAX_BLOCK_ADDRESSES}. */
export function blockCapacity(cidr: Cidr): number {
  const size = cidrSize(cidr);
  if (size > BigInt(MAX_BLOCK_ADDRESSES)) {
    throw new IpamError(IpamErrorCode.Invalid, "block too large", {
      details: { prefix: cidr.prefixLength, family: cidr.version, max: MAX_BLOCK_ADDRESSES },
    });
  }
  return Number(size);
}

/**
 * A new, empty block: every ordinal free, in address order. `sequenceStart` is the block's first
 * sequence number: give each incarnation of a block a different one (Calico derives it from the
 * clock), or a release guarded by the sequence number of an address in a deleted block could free the
 * same address, handed out again at the same number, in the block created in its place. Default 0.
 */
export function newBlock(
  cidr: Cidr,
  affinity: string | null,
  now: number,
  formatted: string,
  sequenceStart = 0,
): IpamBlockSpec {
  const n = blockCapacity(cidr);
  const unallocated = new Array<number>(n);
  for (let i = 0; i < n; i++) unallocated[i] = i;
  return {
    cidr: formatted,
    affinity,
    allocations: new Array<number | null>(n).fill(null),
    unallocated,
    attributes: [],
    sequenceNumber: sequenceStart,
    sequenceNumberForAllocation: {},
    deleted: false,
    emptySince: now,
  };
}

/** The address of an ordinal. */
export function ordinalAddress(cidr: Cidr, ordinal: number): bigint {
  return cidr.network + BigInt(ordinal);
}

/** The ordinal of an address inside a block, or -1 when outside. */
export function addressOrdinal(cidr: Cidr, addr: IpAddr): number {
  if (!cidrContains(cidr, addr)) return -1;
  return Number(addr.value - cidr.network);
}

/** What an allocation needs besides the block. */
export interface AllocateRequest {
  /** How many addresses at most. */
  num: number;
  handleId: string | null;
  secondary: Record<string, string> | null;
  /** Current time, ms. */
  now: number;
  /** Addresses automatic assignment must skip (IP reservations). */
  isReserved?: ((value: bigint) => boolean) | undefined;
  /** A freed address is not reused until this many ms have passed. Default 0. */
  cooldownMs?: number | undefined;
}

/** Outcome of {@link allocateFromBlock}. */
export interface AllocateResult {
  spec: IpamBlockSpec;
  /** The ordinals taken, in free-list order (may be fewer than asked for). */
  ordinals: number[];
  /** The sequence number recorded for these ordinals. */
  sequenceNumber: number;
}

function usable(
  spec: IpamBlockSpec,
  cidr: Cidr,
  ordinal: number,
  req: Pick<AllocateRequest, "now" | "isReserved" | "cooldownMs">,
): boolean {
  if (req.isReserved?.(ordinalAddress(cidr, ordinal))) return false;
  const cooldown = req.cooldownMs ?? 0;
  if (cooldown > 0) {
    const at = spec.releasedAt?.[ordinal];
    if (at !== undefined && req.now - at < cooldown) return false;
  }
  return true;
}

/** Number of ordinals an automatic allocation could take now. */
export function availableCount(
  spec: IpamBlockSpec,
  cidr: Cidr,
  req: Omit<AllocateRequest, "num" | "handleId" | "secondary">,
): number {
  if (spec.deleted) return 0;
  let n = 0;
  // Indexed: a stored block is frozen, and `for...of` over a frozen array makes an iterator result per
  // element (most of an allocation's garbage, #20).
  const free = spec.unallocated;
  for (let i = 0; i < free.length; i++) if (usable(spec, cidr, free[i]!, req)) n++;
  return n;
}

/** True when an automatic allocation could take an ordinal now ({@link availableCount} > 0, sooner). */
export function hasAvailable(
  spec: IpamBlockSpec,
  cidr: Cidr,
  req: Omit<AllocateRequest, "num" | "handleId" | "secondary">,
): boolean {
  if (spec.deleted) return false;
  const free = spec.unallocated;
  for (let i = 0; i < free.length; i++) if (usable(spec, cidr, free[i]!, req)) return true;
  return false;
}

/**
 * Takes up to `num` free ordinals from the head of the free list (the longest-free first), skipping
 * reserved and cooling-down ones, and records them under one new attribute entry.
 */
export function allocateFromBlock(spec: IpamBlockSpec, cidr: Cidr, req: AllocateRequest): AllocateResult {
  if (spec.deleted) return { spec, ordinals: [], sequenceNumber: spec.sequenceNumber };
  const free = spec.unallocated;
  // The ordinals taken and those not taken, in order: both sized for the common case (every one
  // looked at usable) and trimmed (a push onto an empty list would reserve room for 16).
  const want = Math.min(req.num, free.length);
  const taken = new Array<number>(want);
  let t = 0;
  const kept = new Array<number>(Math.max(0, free.length - req.num));
  let k = 0;
  for (let i = 0; i < free.length; i++) {
    const o = free[i]!;
    if (t < want && usable(spec, cidr, o, req)) taken[t++] = o;
    else kept[k++] = o;
  }
  if (t === 0) return { spec, ordinals: [], sequenceNumber: spec.sequenceNumber };
  taken.length = t;
  kept.length = k;
  return {
    spec: commitOrdinals(spec, taken, kept, req),
    ordinals: taken,
    sequenceNumber: spec.sequenceNumber,
  };
}

function commitOrdinals(
  spec: IpamBlockSpec,
  taken: number[],
  kept: number[],
  req: Pick<AllocateRequest, "handleId" | "secondary" | "now">,
): IpamBlockSpec {
  const attrIndex = spec.attributes.length;
  const attribute: BlockAttribute = {
    handleId: req.handleId,
    secondary: req.secondary,
    allocatedAt: req.now,
  };
  const allocations = copyList(spec.allocations);
  const seqs = copyRecord(spec.sequenceNumberForAllocation);
  let releasedAt = spec.releasedAt;
  for (const o of taken) {
    allocations[o] = attrIndex;
    seqs[o] = spec.sequenceNumber;
    if (releasedAt?.[o] !== undefined) {
      releasedAt = copyRecord(releasedAt);
      delete releasedAt[o];
    }
  }
  // Exactly as long as needed (a push would leave spare capacity in every stored block), and frozen
  // for the datastore without reading the entries again when the old list was frozen by it.
  const attributes = appendShared(spec.attributes, attribute);
  const next: IpamBlockSpec = {
    ...spec,
    allocations,
    unallocated: kept,
    attributes,
    sequenceNumber: spec.sequenceNumber + 1,
    sequenceNumberForAllocation: seqs,
    emptySince: null,
  };
  if (releasedAt === undefined || Object.keys(releasedAt).length === 0) delete next.releasedAt;
  else next.releasedAt = releasedAt;
  return next;
}

/** Allocates one specific ordinal. Throws `already-allocated` if it is taken. */
export function assignOrdinal(
  spec: IpamBlockSpec,
  ordinal: number,
  req: Pick<AllocateRequest, "handleId" | "secondary" | "now">,
): AllocateResult {
  if (ordinal < 0 || ordinal >= spec.allocations.length) {
    throw new IpamError(IpamErrorCode.Invalid, "ordinal outside block", {
      details: { block: spec.cidr, ordinal },
    });
  }
  if (spec.allocations[ordinal] !== null || spec.deleted) {
    throw new IpamError(IpamErrorCode.AlreadyAllocated, "address already allocated", {
      details: { block: spec.cidr, ordinal, handleId: handleOf(spec, ordinal) },
    });
  }
  const kept = spec.unallocated.filter((o) => o !== ordinal);
  return {
    spec: commitOrdinals(spec, [ordinal], kept, req),
    ordinals: [ordinal],
    sequenceNumber: spec.sequenceNumber,
  };
}

/** The handle holding an ordinal (null when free or held without a handle). */
export function handleOf(spec: IpamBlockSpec, ordinal: number): string | null {
  const idx = spec.allocations[ordinal];
  if (idx === null || idx === undefined) return null;
  return spec.attributes[idx]?.handleId ?? null;
}

/** One ordinal to release, optionally guarded by the handle and sequence number it was allocated with. */
export interface ReleaseItem {
  ordinal: number;
  /** Release only if the address still belongs to this handle. */
  handleId?: string | undefined;
  /** Release only if the address still carries this sequence number (see `AssignedAddress`). */
  sequenceNumber?: number | undefined;
}

/** Why an ordinal was not released. */
export type ReleaseSkipReason = "not-allocated" | "sequence-mismatch" | "handle-mismatch";

/** Outcome of {@link releaseFromBlock}. */
export interface ReleaseResult {
  spec: IpamBlockSpec;
  released: { ordinal: number; handleId: string | null }[];
  skipped: { ordinal: number; reason: ReleaseSkipReason }[];
}

/**
 * Frees ordinals: each goes to the tail of the free list (so it is reused last). A guard that does not
 * match (stale sequence number, other handle) leaves the ordinal alone: a stale release can never free
 * an address somebody else now holds.
 */
export function releaseFromBlock(
  spec: IpamBlockSpec,
  items: readonly ReleaseItem[],
  now: number,
  cooldownMs = 0,
): ReleaseResult {
  const allocations = copyList(spec.allocations);
  const unallocated = copyList(spec.unallocated);
  const seqs = copyRecord(spec.sequenceNumberForAllocation);
  const releasedAt = copyRecord(spec.releasedAt);
  const released: ReleaseResult["released"] = [];
  const skipped: ReleaseResult["skipped"] = [];
  const seen = new Set<number>();
  for (const item of items) {
    const o = item.ordinal;
    const idx = allocations[o];
    if (idx === null || idx === undefined || seen.has(o)) {
      skipped.push({ ordinal: o, reason: "not-allocated" });
      continue;
    }
    const handleId = spec.attributes[idx]?.handleId ?? null;
    if (item.sequenceNumber !== undefined && seqs[o] !== item.sequenceNumber) {
      skipped.push({ ordinal: o, reason: "sequence-mismatch" });
      continue;
    }
    if (item.handleId !== undefined && item.handleId !== handleId) {
      skipped.push({ ordinal: o, reason: "handle-mismatch" });
      continue;
    }
    seen.add(o);
    allocations[o] = null;
    unallocated.push(o);
    delete seqs[o];
    if (cooldownMs > 0) releasedAt[o] = now;
    released.push({ ordinal: o, handleId });
  }
  if (released.length === 0) return { spec, released, skipped };
  const compacted = compactAttributes(allocations, spec.attributes);
  const next: IpamBlockSpec = {
    ...spec,
    allocations: compacted.allocations,
    unallocated,
    attributes: compacted.attributes,
    sequenceNumberForAllocation: seqs,
    emptySince: compacted.attributes.length === 0 ? now : null,
  };
  if (Object.keys(releasedAt).length > 0) next.releasedAt = releasedAt;
  else delete next.releasedAt;
  return { spec: next, released, skipped };
}

/** Frees every ordinal of a handle in a block. */
export function releaseHandleFromBlock(
  spec: IpamBlockSpec,
  handleId: string,
  now: number,
  cooldownMs = 0,
): ReleaseResult {
  const items: ReleaseItem[] = [];
  spec.allocations.forEach((idx, o) => {
    if (idx !== null && spec.attributes[idx]?.handleId === handleId) items.push({ ordinal: o });
  });
  return releaseFromBlock(spec, items, now, cooldownMs);
}

/** Drops attribute entries no ordinal references any more and renumbers the rest. */
function compactAttributes(
  allocations: (number | null)[],
  attributes: BlockAttribute[],
): { allocations: (number | null)[]; attributes: BlockAttribute[] } {
  const used = new Map<number, number>();
  const kept: BlockAttribute[] = [];
  const out = allocations.map((idx) => {
    if (idx === null) return null;
    let mapped = used.get(idx);
    if (mapped === undefined) {
      mapped = kept.length;
      used.set(idx, mapped);
      kept.push(attributes[idx]!);
    }
    return mapped;
  });
  return { allocations: out, attributes: kept };
}

/** Number of allocated ordinals. */
export function inUseCount(spec: IpamBlockSpec): number {
  let n = 0;
  for (const a of spec.allocations) if (a !== null) n++;
  return n;
}

/** Handle id → number of its addresses in this block (allocations without a handle are not counted). */
export function handleCounts(spec: IpamBlockSpec): Map<string, number> {
  const out = new Map<string, number>();
  for (const idx of spec.allocations) {
    if (idx === null) continue;
    const h = spec.attributes[idx]?.handleId;
    if (h == null) continue;
    out.set(h, (out.get(h) ?? 0) + 1);
  }
  return out;
}

/** Structural problems of a block (empty when well-formed). */
export function validateBlock(spec: IpamBlockSpec, cidr: Cidr): string[] {
  const problems: string[] = [];
  const bits = familyBits(cidr.version);
  const n = 2 ** (bits - cidr.prefixLength);
  if (!Array.isArray(spec.allocations) || spec.allocations.length !== n) {
    problems.push(`allocations has ${spec.allocations?.length} entries, block has ${n} addresses`);
    return problems;
  }
  // A negative or fractional sequence number would make release guards compare against nonsense.
  if (!Number.isSafeInteger(spec.sequenceNumber) || spec.sequenceNumber < 0)
    problems.push(`sequenceNumber ${spec.sequenceNumber} is not an integer >= 0`);
  for (const [o, seq] of Object.entries(spec.sequenceNumberForAllocation ?? {})) {
    if (!Number.isSafeInteger(seq) || seq < 0)
      problems.push(`sequenceNumberForAllocation[${o}] ${seq} is not an integer >= 0`);
  }
  const free = new Set<number>();
  for (const o of spec.unallocated ?? []) {
    if (!Number.isInteger(o) || o < 0 || o >= n) problems.push(`free ordinal ${o} out of range`);
    else if (free.has(o)) problems.push(`free ordinal ${o} listed twice`);
    else free.add(o);
  }
  spec.allocations.forEach((idx, o) => {
    if (idx === null) {
      if (!free.has(o)) problems.push(`ordinal ${o} neither allocated nor free`);
    } else {
      if (free.has(o)) problems.push(`ordinal ${o} both allocated and free`);
      if (!Number.isInteger(idx) || idx < 0 || idx >= spec.attributes.length) {
        problems.push(`ordinal ${o} references missing attribute ${idx}`);
      }
    }
  });
  return problems;
}

/** Adds `count` addresses in `blockCidr` to a handle (creating the handle spec when absent). */
export function handleAdd(
  spec: IpamHandleSpec | undefined,
  handleId: string,
  blockCidr: string,
  count: number,
): IpamHandleSpec {
  if (spec === undefined || spec.block === undefined) {
    return { handleId, block: countRecord(blockCidr, count), deleted: false };
  }
  const block = copyRecord(spec.block);
  block[blockCidr] = (block[blockCidr] ?? 0) + count;
  return { handleId, block, deleted: false };
}

/**
 * Constructors of plain objects (their prototype is `Object.prototype`, as `{}`'s), each with a hidden
 * class tree of its own: see {@link countRecord}.
 */
const COUNT_ROOTS: (new () => Record<string, number>)[] = [];
for (let i = 0; i < 64; i++) {
  // A function, not a class: its instances' prototype is Object.prototype itself.
  function CountRecord() {}
  CountRecord.prototype = Object.prototype;
  COUNT_ROOTS.push(CountRecord as unknown as new () => Record<string, number>);
}

/**
 * `{ [key]: count }`, a new handle's per-block record. Its one key is a block CIDR, a different one
 * every 64 handles or so, and V8 keeps at most 1,536 hidden-class transitions from one map: once `{}`
 * has that many, each such record is made (and frozen for the datastore) with hidden classes of its
 * own, which took several µs per allocation and ~85 bytes per stored handle at 16,000 blocks (#20).
 * Spread over 64 private roots (chosen by the key, so the records of one block share their hidden
 * class) the transitions are cached up to ~98,000 blocks.
 */
function countRecord(key: string, count: number): Record<string, number> {
  let h = 0;
  for (let i = 0; i < key.length; i++) h = (h * 31 + key.charCodeAt(i)) | 0;
  const out = new COUNT_ROOTS[h & 63]!();
  out[key] = count;
  return out;
}

/** Removes `count` addresses in `blockCidr` from a handle; null when the handle is then empty. */
export function handleRemove(spec: IpamHandleSpec, blockCidr: string, count: number): IpamHandleSpec | null {
  const block = copyRecord(spec.block);
  const left = (block[blockCidr] ?? 0) - count;
  if (left > 0) block[blockCidr] = left;
  else delete block[blockCidr];
  return Object.keys(block).length === 0 ? null : { ...spec, block };
}
