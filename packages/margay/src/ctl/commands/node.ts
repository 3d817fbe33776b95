/**
 * `node list` and `node status [NODE]`: nodes and what their agents report in the `NodeStatus`
 * resource (BGP sessions, addresses, MTU, dataplane sync, component health), readable from any
 * machine with datastore access, not only as root on the host. The status is read as stored data (its
 * fields are those of `@margay/api`'s NodeStatus); a node whose agent never reported says so.
 *
 * @packageDocumentation
 */

import { hostname } from "node:os";
import type { StoredObject } from "@margay/datastore";
import type { CommandContext } from "../context.js";
import { CtlError, CtlErrorCode } from "../errors.js";
import { cell, json, renderTable, yaml } from "../output.js";

interface Peer {
  address?: string;
  asNumber?: number;
  type?: string;
  state?: string;
  since?: string;
  lastError?: string;
  routesImported?: number;
  routesExported?: number;
}

/** The stored NodeStatus, read loosely (it is whatever the agent wrote). */
type NodeStatusObject = StoredObject & {
  spec?: { node?: string };
  status?: {
    agent?: {
      version?: string;
      startedAt?: string;
      ready?: boolean;
      components?: { name?: string; live?: boolean; ready?: boolean; reason?: string }[];
    };
    addresses?: { ipv4?: string; ipv6?: string; interface?: string };
    mtu?: number;
    dataplane?: { inSync?: boolean; lastApply?: string; lastError?: string };
    bgp?: { peers?: Peer[] };
    updatedAt?: string;
  };
};

type NodeObject = StoredObject & {
  spec?: { bgp?: { asNumber?: number; ipv4Address?: string; ipv6Address?: string } };
};

async function statuses(ctx: CommandContext): Promise<Map<string, NodeStatusObject>> {
  const { datastore } = await ctx.session();
  const out = new Map<string, NodeStatusObject>();
  for (const s of (await datastore.list<NodeStatusObject>("NodeStatus")).items)
    out.set(s.spec?.node ?? s.metadata.name, s);
  return out;
}

/** `node list [-o table|wide|yaml|json|name]`. */
export async function nodeList(ctx: CommandContext, opts: { output?: string | undefined }): Promise<void> {
  const output = opts.output ?? "table";
  if (!["table", "wide", "yaml", "json", "name"].includes(output))
    throw new CtlError(
      CtlErrorCode.Usage,
      `-o: table, wide, yaml, json or name, got ${JSON.stringify(output)}`,
    );
  const { datastore } = await ctx.session();
  const nodes = (await datastore.list<NodeObject>("Node")).items;
  const st = await statuses(ctx);
  const view = nodes.map((n) => {
    const s = st.get(n.metadata.name)?.status;
    return {
      name: n.metadata.name,
      asNumber: n.spec?.bgp?.asNumber,
      ipv4: n.spec?.bgp?.ipv4Address,
      ipv6: n.spec?.bgp?.ipv6Address,
      status: s?.agent === undefined ? "no status reported" : s.agent.ready ? "Ready" : "NotReady",
      version: s?.agent?.version,
      updated: s?.updatedAt,
    };
  });
  if (output === "json") return ctx.io.out(json(view));
  if (output === "yaml") return ctx.io.out(yaml(view));
  if (output === "name") return ctx.io.out(view.map((v) => `node/${v.name}\n`).join(""));
  if (view.length === 0) return ctx.io.err("No nodes.\n");
  const wide = output === "wide";
  ctx.io.out(
    renderTable(
      ["NAME", "STATUS", "ASN", "IPV4", ...(wide ? ["IPV6", "VERSION", "UPDATED"] : [])],
      view.map((v) => [
        v.name,
        v.status,
        cell(v.asNumber),
        cell(v.ipv4),
        ...(wide ? [cell(v.ipv6), cell(v.version), cell(v.updated)] : []),
      ]),
      ctx.io.style,
    ),
  );
}

function yes(b: boolean | undefined): string {
  return b === undefined ? "?" : b ? "yes" : "no";
}

/** `node status [NODE] [-o text|yaml|json]`. NODE defaults to this host's name. */
export async function nodeStatus(
  ctx: CommandContext,
  node: string | undefined,
  opts: { output?: string | undefined },
): Promise<void> {
  const output = opts.output ?? "text";
  if (!["text", "yaml", "json"].includes(output))
    throw new CtlError(CtlErrorCode.Usage, `-o: text, yaml or json, got ${JSON.stringify(output)}`);
  const name = node ?? hostname();
  const s = (await statuses(ctx)).get(name);
  if (s === undefined || s.status === undefined)
    throw new CtlError(
      CtlErrorCode.NotFound,
      `node ${name}: no status reported (is margay-node running there?)`,
      {
        node: name,
      },
    );
  if (output === "json") return ctx.io.out(json(s));
  if (output === "yaml") return ctx.io.out(yaml(s));
  const st = s.status;
  const { style } = ctx.io;
  const out: string[] = [];
  const agent = st.agent;
  out.push(`Node:        ${name}`);
  if (agent !== undefined)
    out.push(
      `Agent:       margay-node ${agent.version ?? "?"}, ${agent.ready ? style.green("ready") : style.red("not ready")}, started ${agent.startedAt ?? "?"}`,
    );
  out.push(`Updated:     ${st.updatedAt ?? "?"}`);
  if (st.addresses !== undefined)
    out.push(
      `Addresses:   ${[st.addresses.ipv4 && `IPv4 ${st.addresses.ipv4}`, st.addresses.ipv6 && `IPv6 ${st.addresses.ipv6}`, st.addresses.interface && `on ${st.addresses.interface}`].filter(Boolean).join(", ") || "<none>"}`,
    );
  if (st.mtu !== undefined) out.push(`MTU:         ${st.mtu}`);
  if (st.dataplane !== undefined)
    out.push(
      `Dataplane:   ${st.dataplane.inSync ? "in sync" : style.red("not in sync")}${st.dataplane.lastApply ? `, last apply ${st.dataplane.lastApply}` : ""}${st.dataplane.lastError ? `, last error: ${st.dataplane.lastError}` : ""}`,
    );
  ctx.io.out(`${out.join("\n")}\n`);
  const comps = agent?.components ?? [];
  if (comps.length > 0) {
    ctx.io.out("\nComponents:\n");
    ctx.io.out(
      renderTable(
        ["NAME", "LIVE", "READY", "REASON"],
        comps.map((c) => [c.name ?? "?", yes(c.live), yes(c.ready), cell(c.reason)]),
        style,
      ),
    );
  }
  const peers = st.bgp?.peers;
  if (peers !== undefined) {
    ctx.io.out("\nBGP peers:\n");
    if (peers.length === 0) ctx.io.out("No BGP peers.\n");
    else
      ctx.io.out(
        renderTable(
          ["PEER ADDRESS", "ASN", "TYPE", "STATE", "SINCE", "ROUTES IN", "ROUTES OUT", "LAST ERROR"],
          peers.map((p) => [
            p.address ?? "?",
            cell(p.asNumber),
            cell(p.type),
            p.state === "Established" ? style.green(p.state) : cell(p.state),
            cell(p.since),
            cell(p.routesImported),
            cell(p.routesExported),
            cell(p.lastError),
          ]),
          style,
        ),
      );
  }
}
