/**
 * `ipam show | check | release | configure`: calicoctl's IPAM commands over `@margay/ipam`.
 *
 * Which handles are live (for `check` and leak candidates) is read from the datastore as Calico reads it
 * from Kubernetes: an allocation is in use while the workload it was made for exists (a
 * WorkloadEndpoint whose container id ends the handle, or whose namespace and pod the allocation's
 * attributes name); an allocation made for no workload (a tunnel address) while its node exists.
 *
 * @packageDocumentation
 */

import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { formatIp, IPAM_CONFIG_NAME, tryParseIp } from "@margay/api";
import type { Datastore, StoredObject } from "@margay/datastore";
import {
  addressOrdinal,
  affinityNode,
  allocationNode,
  type IpamBlockObject,
  type IpamCheckReport,
  IpamKind,
  parseCidr,
} from "@margay/ipam";
import type { CommandContext } from "../context.js";
import { CtlError, CtlErrorCode } from "../errors.js";
import { json, renderTable } from "../output.js";
import { tryGet } from "./resources.js";

/** Version of the report file `ipam check -o` writes and `ipam release --from-report` reads. */
export const REPORT_VERSION = "margay.io/ipam-check/v1";

/** The report file. */
export interface IpamReportFile {
  version: typeof REPORT_VERSION;
  /** How many handles were found in use (the rest of the allocations are leak candidates). */
  handlesLive: number;
  report: IpamCheckReport;
}

async function openIpam(ctx: CommandContext) {
  const { datastore } = await ctx.session();
  const { createIpam } = await import("@margay/ipam");
  return { datastore, ipam: createIpam({ datastore }) };
}

async function listAll<T extends StoredObject>(ds: Datastore, kind: string): Promise<T[]> {
  return (await ds.list<T>(kind)).items;
}

/** One allocated address, read from the blocks. */
interface Allocation {
  ip: string;
  block: string;
  blockNode: string | undefined;
  node: string | undefined;
  handleId: string | null;
  attrs: Record<string, string>;
}

function allocationsOf(blocks: readonly IpamBlockObject[]): Allocation[] {
  const out: Allocation[] = [];
  for (const b of blocks) {
    const cidr = parseCidr(b.spec.cidr);
    for (const [ordinal, idx] of b.spec.allocations.entries()) {
      if (idx === null) continue;
      const attr = b.spec.attributes[idx];
      out.push({
        ip: formatIp(cidr.version, cidr.network + BigInt(ordinal)),
        block: b.spec.cidr,
        blockNode: affinityNode(b.spec.affinity),
        node: allocationNode(b.spec, attr),
        handleId: attr?.handleId ?? null,
        attrs: { ...(attr?.secondary ?? {}) },
      });
    }
  }
  return out;
}

/** The handles in use, by the rule of the module comment. */
export async function liveHandles(ds: Datastore, allocations: readonly Allocation[]): Promise<Set<string>> {
  const [weps, nodes] = await Promise.all([
    listAll<StoredObject & { spec?: Record<string, unknown> }>(ds, "WorkloadEndpoint"),
    listAll(ds, "Node"),
  ]);
  const containers = new Set<string>();
  const pods = new Set<string>();
  for (const w of weps) {
    const s = w.spec ?? {};
    if (typeof s.containerID === "string") containers.add(s.containerID);
    for (const p of [s.pod, s.workload])
      if (typeof p === "string") pods.add(`${w.metadata.namespace ?? ""}/${p}`);
  }
  const nodeNames = new Set(nodes.map((n) => n.metadata.name));
  const live = new Set<string>();
  for (const a of allocations) {
    if (a.handleId === null) continue;
    const suffix = a.handleId.slice(a.handleId.lastIndexOf(".") + 1);
    const pod = a.attrs.pod;
    if (containers.has(suffix) || containers.has(a.handleId)) live.add(a.handleId);
    else if (pod !== undefined && pods.has(`${a.attrs.namespace ?? ""}/${pod}`)) live.add(a.handleId);
    else if (pod === undefined && a.node !== undefined && nodeNames.has(a.node)) live.add(a.handleId);
  }
  return live;
}

function pct(n: bigint | number, of: bigint | number): string {
  const d = BigInt(of);
  if (d === 0n) return "0%";
  return `${(BigInt(n) * 100n) / d}%`;
}

/** Options of `ipam show`. */
export interface ShowOptions {
  showBlocks?: boolean | undefined;
  showBorrowed?: boolean | undefined;
  showConfiguration?: boolean | undefined;
  byNode?: boolean | undefined;
  showLeaks?: boolean | undefined;
  ip?: string | undefined;
  output?: string | undefined;
}

/** `ipam show`. */
export async function ipamShow(ctx: CommandContext, opts: ShowOptions): Promise<void> {
  const output = opts.output ?? "table";
  if (output !== "table" && output !== "json")
    throw new CtlError(
      CtlErrorCode.Usage,
      `-o: ipam show prints table or json, got ${JSON.stringify(output)}`,
    );
  if (opts.ip !== undefined) return showIp(ctx, opts.ip, output);
  const { datastore: ds, ipam } = await openIpam(ctx);
  try {
    if (opts.showConfiguration) {
      const cfg = (await tryGet(ds, { kind: "IPAMConfig", name: IPAM_CONFIG_NAME })) as
        | (StoredObject & { spec?: Record<string, unknown> })
        | undefined;
      const spec = cfg?.spec ?? {};
      const view = {
        strictAffinity: spec.strictAffinity ?? false,
        autoAllocateBlocks: spec.autoAllocateBlocks ?? true,
        maxBlocksPerHost: spec.maxBlocksPerHost ?? 0,
      };
      if (output === "json") ctx.io.out(json(view));
      else
        ctx.io.out(
          renderTable(
            ["PROPERTY", "VALUE"],
            [
              ["StrictAffinity", String(view.strictAffinity)],
              ["AutoAllocateBlocks", String(view.autoAllocateBlocks)],
              ["MaxBlocksPerHost", String(view.maxBlocksPerHost)],
            ],
            ctx.io.style,
          ),
        );
      return;
    }
    const pools = await ipam.utilisation();
    const blocks = await listAll<IpamBlockObject>(ds, IpamKind.Block);
    const allocations = allocationsOf(blocks);
    const borrowed = allocations.filter((a) => a.node !== undefined && a.node !== a.blockNode);
    let leaks: Allocation[] = [];
    if (opts.showLeaks) {
      const live = await liveHandles(ds, allocations);
      leaks = allocations.filter((a) => a.handleId !== null && !live.has(a.handleId));
    }
    const byNode = new Map<string, { blocks: number; inUse: number; borrowed: number }>();
    if (opts.byNode) {
      for (const b of blocks) {
        const n = affinityNode(b.spec.affinity) ?? "(unaffine)";
        const e = byNode.get(n) ?? { blocks: 0, inUse: 0, borrowed: 0 };
        e.blocks++;
        byNode.set(n, e);
      }
      for (const a of allocations) {
        const n = a.node ?? "(none)";
        const e = byNode.get(n) ?? { blocks: 0, inUse: 0, borrowed: 0 };
        e.inUse++;
        if (a.node !== undefined && a.node !== a.blockNode) e.borrowed++;
        byNode.set(n, e);
      }
    }
    if (output === "json") {
      ctx.io.out(
        json({
          pools: pools.map((p) => ({ ...p, blocks: opts.showBlocks ? p.blocks : undefined })),
          ...(opts.showBorrowed ? { borrowed } : {}),
          ...(opts.byNode
            ? { nodes: Object.fromEntries([...byNode].sort(([a], [b]) => (a < b ? -1 : 1))) }
            : {}),
          ...(opts.showLeaks ? { leakCandidates: leaks } : {}),
        }),
      );
      return;
    }
    const rows: string[][] = [];
    for (const p of pools) {
      rows.push([
        "IP Pool",
        p.cidr,
        p.capacity.toString(),
        `${p.inUse} (${pct(p.inUse, p.capacity)})`,
        `${p.free} (${pct(p.free, p.capacity)})`,
      ]);
      if (opts.showBlocks)
        for (const b of [...p.blocks].sort((x, y) => (x.cidr < y.cidr ? -1 : 1)))
          rows.push([
            "Block",
            b.cidr,
            String(b.capacity),
            `${b.inUse} (${pct(b.inUse, b.capacity)})`,
            `${b.free} (${pct(b.free, b.capacity)})`,
          ]);
    }
    if (rows.length === 0) ctx.io.err("No IP pools.\n");
    else
      ctx.io.out(
        renderTable(["GROUPING", "CIDR", "IPS TOTAL", "IPS IN USE", "IPS FREE"], rows, ctx.io.style),
      );
    if (opts.byNode) {
      ctx.io.out("\n");
      ctx.io.out(
        renderTable(
          ["NODE", "BLOCKS", "IPS IN USE", "BORROWED"],
          [...byNode]
            .sort(([a], [b]) => (a < b ? -1 : 1))
            .map(([n, e]) => [n, String(e.blocks), String(e.inUse), String(e.borrowed)]),
          ctx.io.style,
        ),
      );
    }
    if (opts.showBorrowed) {
      ctx.io.out("\n");
      if (borrowed.length === 0) ctx.io.out("No borrowed addresses.\n");
      else
        ctx.io.out(
          renderTable(
            ["IP", "BORROWING-NODE", "BLOCK", "BLOCK OWNER", "TYPE", "ALLOCATED-TO"],
            borrowed.map((a) => [
              a.ip,
              a.node ?? "",
              a.block,
              a.blockNode ?? "(unaffine)",
              a.attrs.type ?? (a.attrs.pod !== undefined ? "pod" : "<none>"),
              a.attrs.pod !== undefined
                ? `${a.attrs.namespace ?? ""}/${a.attrs.pod}`
                : (a.handleId ?? "<none>"),
            ]),
            ctx.io.style,
          ),
        );
    }
    if (opts.showLeaks) {
      ctx.io.out("\n");
      if (leaks.length === 0) ctx.io.out("No leak candidates.\n");
      else
        ctx.io.out(
          renderTable(
            ["IP", "HANDLE", "NODE", "ALLOCATED-TO"],
            leaks.map((a) => [
              a.ip,
              a.handleId ?? "<none>",
              a.node ?? "<none>",
              a.attrs.pod !== undefined ? `${a.attrs.namespace ?? ""}/${a.attrs.pod}` : "<none>",
            ]),
            ctx.io.style,
          ),
        );
    }
  } finally {
    await ipam.close();
  }
}

async function showIp(ctx: CommandContext, text: string, output: string): Promise<void> {
  const ip = tryParseIp(text);
  if (ip === undefined)
    throw new CtlError(CtlErrorCode.InvalidInput, `--ip: not an IP address: ${JSON.stringify(text)}`);
  const { datastore: ds } = await ctx.session();
  const blocks = await listAll<IpamBlockObject>(ds, IpamKind.Block);
  for (const b of blocks) {
    const cidr = parseCidr(b.spec.cidr);
    const ord = addressOrdinal(cidr, ip);
    if (ord < 0) continue;
    const idx = b.spec.allocations[ord];
    if (idx === null || idx === undefined) break;
    const attr = b.spec.attributes[idx];
    const view = {
      ip: ip.text,
      inUse: true,
      block: b.spec.cidr,
      blockAffinity: affinityNode(b.spec.affinity) ?? null,
      node: allocationNode(b.spec, attr) ?? null,
      handle: attr?.handleId ?? null,
      attributes: attr?.secondary ?? {},
    };
    if (output === "json") ctx.io.out(json(view));
    else {
      ctx.io.out(`IP ${ip.text} is in use\n`);
      ctx.io.out(`  Block: ${view.block} (affine to ${view.blockAffinity ?? "no node"})\n`);
      ctx.io.out(`  Node: ${view.node ?? "<none>"}\n`);
      ctx.io.out(`  Handle: ${view.handle ?? "<none>"}\n`);
      const attrs = Object.entries(view.attributes).sort(([a], [b2]) => (a < b2 ? -1 : 1));
      if (attrs.length > 0)
        ctx.io.out(`  Attributes:\n${attrs.map(([k, v]) => `    ${k}: ${v}`).join("\n")}\n`);
    }
    return;
  }
  throw new CtlError(CtlErrorCode.NotFound, `IP ${ip.text} is not assigned`, { ip: ip.text });
}

/** `ipam check [-o report.json]`: prints a summary; exit 0 even with findings (like calicoctl). */
export async function ipamCheck(ctx: CommandContext, opts: { output?: string | undefined }): Promise<void> {
  const { datastore: ds, ipam } = await openIpam(ctx);
  try {
    const blocks = await listAll<IpamBlockObject>(ds, IpamKind.Block);
    const live = await liveHandles(ds, allocationsOf(blocks));
    const report = await ipam.check(live);
    const out = ctx.io.out;
    out(`Checking IPAM for inconsistencies...\n`);
    out(`Found ${report.blocks} IPAM blocks with ${report.allocated} allocated addresses.\n`);
    const leakedIps = report.leaks.reduce((n, l) => n + l.ips.length, 0);
    out(`Found ${leakedIps} addresses leaked (handle not in use) under ${report.leaks.length} handles.\n`);
    for (const l of report.leaks) out(`  leaked: ${l.ips.join(", ")} handle ${l.handleId ?? "<none>"}\n`);
    const sections: [string, unknown[]][] = [
      ["handles holding no address", report.handlesWithoutIps],
      ["allocations whose handle object is missing", report.missingHandles],
      ["handles whose counts disagree with the blocks", report.handleMismatches],
      ["malformed blocks", report.malformedBlocks],
      ["invalid pools", report.invalidPools],
      ["blocks outside every pool", report.orphanBlocks],
      ["addresses allocated twice", report.duplicateAddresses],
      ["dangling affinities", report.danglingAffinities],
    ];
    for (const [what, list] of sections)
      if (list.length > 0)
        out(
          `Found ${list.length} ${what}: ${list.map((x) => (typeof x === "string" ? x : JSON.stringify(x))).join(", ")}\n`,
        );
    out(report.ok ? "IPAM is consistent.\n" : "IPAM has inconsistencies (see above).\n");
    if (opts.output !== undefined) {
      const file: IpamReportFile = { version: REPORT_VERSION, handlesLive: live.size, report };
      const path = resolve(ctx.io.cwd, opts.output);
      try {
        writeFileSync(path, json(file));
      } catch (e) {
        throw new CtlError(
          CtlErrorCode.Io,
          `-o ${opts.output}: cannot write it (${(e as NodeJS.ErrnoException).code})`,
          {
            file: opts.output,
          },
        );
      }
      out(`Report written to ${opts.output}\n`);
    }
  } finally {
    await ipam.close();
  }
}

function readReport(path: string, text: string): IpamReportFile {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new CtlError(CtlErrorCode.InvalidInput, `--from-report ${path}: not JSON`, { file: path });
  }
  const d = doc as Partial<IpamReportFile>;
  if (d?.version !== REPORT_VERSION)
    throw new CtlError(
      CtlErrorCode.InvalidInput,
      `--from-report ${path}: not an ipam check report (version must be ${REPORT_VERSION})`,
      { file: path },
    );
  const leaks = d.report?.leaks;
  if (!Array.isArray(leaks))
    throw new CtlError(CtlErrorCode.InvalidInput, `--from-report ${path}: report.leaks must be an array`, {
      file: path,
    });
  for (const [i, l] of leaks.entries()) {
    if (
      !Array.isArray(l?.ips) ||
      !l.ips.every((ip: unknown) => typeof ip === "string" && tryParseIp(ip) !== undefined)
    )
      throw new CtlError(
        CtlErrorCode.InvalidInput,
        `--from-report ${path}: report.leaks[${i}].ips must be IP addresses`,
        {
          file: path,
        },
      );
  }
  return d as IpamReportFile;
}

/** `ipam release --ip X... | --from-report F`. */
export async function ipamRelease(
  ctx: CommandContext,
  opts: { ip?: string[] | undefined; fromReport?: string | undefined },
): Promise<void> {
  const ips = opts.ip ?? [];
  if ((ips.length === 0) === (opts.fromReport === undefined))
    throw new CtlError(
      CtlErrorCode.Usage,
      "ipam release: give --ip ADDRESS (repeatable) or --from-report FILE",
    );
  let requests: { ip: string; handleId?: string }[];
  if (opts.fromReport !== undefined) {
    const { readFileSync } = await import("node:fs");
    let text: string;
    try {
      text = readFileSync(resolve(ctx.io.cwd, opts.fromReport), "utf8");
    } catch (e) {
      throw new CtlError(
        CtlErrorCode.Io,
        `--from-report ${opts.fromReport}: cannot read it (${(e as NodeJS.ErrnoException).code})`,
        { file: opts.fromReport },
      );
    }
    const report = readReport(opts.fromReport, text);
    // Guarded by the handle: an address reallocated since the report is left alone.
    requests = report.report.leaks.flatMap((l) =>
      l.ips.map((ip) => (l.handleId !== null ? { ip, handleId: l.handleId } : { ip })),
    );
  } else {
    for (const ip of ips)
      if (tryParseIp(ip) === undefined)
        throw new CtlError(CtlErrorCode.InvalidInput, `--ip: not an IP address: ${JSON.stringify(ip)}`);
    requests = ips.map((ip) => ({ ip }));
  }
  const { ipam } = await openIpam(ctx);
  try {
    const r = await ipam.releaseIPs(requests);
    for (const x of r.released) ctx.io.out(`released ${x.ip} (handle ${x.handleId ?? "<none>"})\n`);
    for (const x of r.skipped) ctx.io.out(`skipped ${x.ip}: ${x.reason}\n`);
    for (const ip of r.unallocated) ctx.io.out(`not assigned: ${ip}\n`);
    if (opts.fromReport === undefined && r.unallocated.length > 0 && r.released.length === 0)
      throw new CtlError(CtlErrorCode.NotFound, `not assigned: ${r.unallocated.join(", ")}`, {
        ips: r.unallocated,
      });
  } finally {
    await ipam.close();
  }
}

function parseBool(v: string, flag: string): boolean {
  if (v === "true") return true;
  if (v === "false") return false;
  throw new CtlError(CtlErrorCode.Usage, `${flag}: expected true or false, got ${JSON.stringify(v)}`);
}

/** `ipam configure --strictaffinity=true|false [--max-blocks-per-host N] [--autoallocateblocks=...]`. */
export async function ipamConfigure(
  ctx: CommandContext,
  opts: { strictaffinity?: string; maxBlocksPerHost?: string; autoallocateblocks?: string },
): Promise<void> {
  const change: Record<string, unknown> = {};
  if (opts.strictaffinity !== undefined)
    change.strictAffinity = parseBool(opts.strictaffinity, "--strictaffinity");
  if (opts.autoallocateblocks !== undefined)
    change.autoAllocateBlocks = parseBool(opts.autoallocateblocks, "--autoallocateblocks");
  if (opts.maxBlocksPerHost !== undefined) {
    const n = Number(opts.maxBlocksPerHost);
    if (!Number.isInteger(n) || n < 0)
      throw new CtlError(
        CtlErrorCode.Usage,
        `--max-blocks-per-host: expected an integer >= 0, got ${JSON.stringify(opts.maxBlocksPerHost)}`,
      );
    change.maxBlocksPerHost = n;
  }
  if (Object.keys(change).length === 0)
    throw new CtlError(
      CtlErrorCode.Usage,
      "ipam configure: nothing to change (--strictaffinity, --autoallocateblocks, --max-blocks-per-host)",
    );
  const { datastore: ds } = await ctx.session();
  const key = { kind: "IPAMConfig", name: IPAM_CONFIG_NAME };
  for (let attempt = 0; ; attempt++) {
    const cur = (await tryGet(ds, key)) as (StoredObject & { spec?: Record<string, unknown> }) | undefined;
    try {
      if (cur === undefined)
        await ds.create({
          apiVersion: "margay.io/v1",
          kind: "IPAMConfig",
          metadata: { name: IPAM_CONFIG_NAME },
          spec: change,
        } as StoredObject);
      else await ds.update({ ...cur, spec: { ...(cur.spec ?? {}), ...change } } as StoredObject);
      break;
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if ((code === "conflict" || code === "already-exists") && attempt < 4) continue;
      throw e;
    }
  }
  ctx.io.out(
    `IPAM configuration updated: ${Object.entries(change)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(", ")}\n`,
  );
}
