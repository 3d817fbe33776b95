/**
 * The BGP peerings of one node, derived from the model the way calico-node's BGP daemon configuration
 * derives them (confd's `bird.cfg` templates and `bgp_processor`): the node-to-node mesh, `BGPPeer`
 * resources (global, per node, by selectors), route reflectors (`Node.spec.bgp.routeReflectorClusterID`)
 * and `BGPConfiguration` (`default`, and the overrides Calico allows in `node.<name>`). Pure: resources
 * in, the desired speaker settings and peers out, plus every field that is set but not honoured.
 *
 * Semantics (each from Calico's documentation and templates):
 * - the mesh (`nodeToNodeMeshEnabled`, default true) peers this node with every other node that has a
 *   BGP address of the same family; a route reflector (a node with `routeReflectorClusterID`) ignores the
 *   mesh setting ("this node is configured as a route reflector; ignore node-to-node mesh"), and other
 *   nodes leave route reflectors out of their mesh so no half-configured sessions remain;
 * - mesh and selector peerings between two nodes are unidirectional: the node with the lower address is
 *   passive and waits for the other (Calico's fix for a graceful-restart race between two dialers);
 * - a `BGPPeer` applies to this node when `node` names it, `nodeSelector` matches its labels, or neither
 *   is set (global); `peerSelector` peers with the selected nodes at their BGP addresses and AS numbers,
 *   and the peering holds both ways (a node selected by `peerSelector` peers back with the nodes that
 *   `nodeSelector`/`node` select);
 * - a node never peers with itself (a `peerIP` that is one of this node's addresses is skipped);
 * - when this node is a route reflector, an iBGP peer whose cluster ID differs from ours (every non-node
 *   peer, and nodes of another cluster or none) is a route-reflector client; nodes of the same cluster
 *   are ordinary iBGP peers;
 * - a `peerIP` without a port that is a node's address uses that node's `listenPort`;
 * - in `node.<name>` only `listenPort`, `logSeverityScreen` and `prefixAdvertisements` override the
 *   default (the other fields are reported as not valid there);
 * - local AS: `Node.spec.bgp.asNumber`, else the `default` BGPConfiguration's `asNumber`, else 64512.
 *
 * @packageDocumentation
 */
import {
  type BGPConfiguration,
  type BGPPeer,
  type Node,
  parseGoDuration,
  parsePeerIP,
  tryParseCidr,
  tryParseCommunity,
  tryParseIp,
  tryParseSelector,
} from "@margay/api";

/** Calico's default AS number of a cluster. */
export const DEFAULT_AS_NUMBER = 64512;
/** Calico's default BGP port. */
export const DEFAULT_LISTEN_PORT = 179;
/** Largest restart time the graceful-restart capability carries (12 bits). */
export const MAX_RESTART_SECONDS = 4095;

/** Where a peering comes from. */
export type BgpPeerScope = "mesh" | "global" | "node";

/** One peering this node should have. */
export interface DesiredBgpPeer {
  /** `address`, or `address:port` / `[address]:port` when the port is not 179 (the speaker's peer id). */
  readonly id: string;
  /** Peer address (canonical text). */
  readonly address: string;
  readonly port: number;
  readonly family: 4 | 6;
  /** The peer's AS. */
  readonly asNumber: number;
  /** Our AS on this session (the node's). */
  readonly localAsNumber: number;
  /** mesh, global (`BGPPeer` without node/nodeSelector) or node (`node` / `nodeSelector`). */
  readonly scope: BgpPeerScope;
  /** This node reflects routes to the peer (RFC 4456 client). */
  readonly routeReflectorClient: boolean;
  /** Wait for the peer to connect (unidirectional node-to-node peerings). */
  readonly passive: boolean;
  readonly keepOriginalNextHop: boolean;
  /** Source address of the session (`sourceAddress: UseNodeIP`), undefined: the kernel's choice. */
  readonly localAddress: string | undefined;
  /** Restart time advertised to this peer, seconds. */
  readonly gracefulRestartSeconds: number;
  /** The node at the other end, when the peer is one of the cluster's nodes. */
  readonly peerNode: string | undefined;
  /** `node-to-node mesh` or `BGPPeer <name>`. */
  readonly source: string;
}

/** A field that is set but not honoured (or not valid where it is set). */
export interface UnsupportedBgpField {
  /** `BGPConfiguration default`, `BGPPeer tor1`, ... */
  readonly resource: string;
  /** Field path, e.g. `spec.password`. */
  readonly field: string;
  /** What happens instead, in operator words. */
  readonly message: string;
}

/** Communities attached to the advertisements of prefixes within `cidr`. */
export interface PrefixAdvertisementRule {
  readonly cidr: string;
  /** RFC 1997 communities, `aa:nn`. */
  readonly communities: readonly string[];
  /** RFC 8092 large communities, `aa:nn:mm`. */
  readonly largeCommunities: readonly string[];
}

/** What {@link deriveBgpPeers} derives for one node. */
export interface BgpDerivation {
  /** False when this node has no Node resource or no BGP address: it runs no BGP. */
  readonly enabled: boolean;
  readonly localAsNumber: number;
  /** BGP identifier: the node's IPv4 address, else one derived from its name. */
  readonly routerId: string;
  /** Addresses to listen on (this node's BGP addresses). */
  readonly listenAddresses: readonly string[];
  readonly listenPort: number;
  /** Set when this node is a route reflector. */
  readonly routeReflectorClusterId: string | undefined;
  readonly nodeToNodeMesh: boolean;
  /** Sorted by id. */
  readonly peers: readonly DesiredBgpPeer[];
  readonly prefixAdvertisements: readonly PrefixAdvertisementRule[];
  /** Fields set but not honoured, in a stable order. */
  readonly unsupported: readonly UnsupportedBgpField[];
  /** Peerings that could not be configured, with why (operator words). */
  readonly skipped: readonly string[];
}

/** Input of {@link deriveBgpPeers}. */
export interface DeriveBgpPeersInput {
  /** This node's name. */
  readonly nodeName: string;
  /** Every Node. */
  readonly nodes: readonly Node[];
  /** Every BGPConfiguration (`default`, `node.<name>`, others are ignored). */
  readonly configurations: readonly BGPConfiguration[];
  /** Every BGPPeer. */
  readonly peers: readonly BGPPeer[];
  /** Restart time when no `maxRestartTime` / `nodeMeshMaxRestartTime` applies (agent config). Default 120. */
  readonly defaultRestartSeconds?: number | undefined;
}

interface NodeInfo {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly v4: string | undefined;
  readonly v6: string | undefined;
  readonly asNumber: number;
  readonly clusterId: string | undefined;
  readonly listenPort: number;
}

function hostOf(addressWithPrefix: string | undefined): string | undefined {
  if (addressWithPrefix === undefined) return undefined;
  const c = tryParseCidr(addressWithPrefix);
  return c === undefined ? undefined : c.addressText;
}

/** The speaker's peer id of an address and port. */
export function bgpPeerId(address: string, port: number): string {
  if (port === DEFAULT_LISTEN_PORT) return address;
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

function compareAddresses(a: string, b: string): number {
  const x = tryParseIp(a);
  const y = tryParseIp(b);
  if (x === undefined || y === undefined || x.version !== y.version) return a < b ? -1 : a > b ? 1 : 0;
  return x.value < y.value ? -1 : x.value > y.value ? 1 : 0;
}

/** A BGP identifier for a node without IPv4: 4 bytes of an FNV-1a hash of its name (Calico's `hash` router id). */
function routerIdFromName(name: string): string {
  let h = 0x811c9dc5;
  for (const ch of Buffer.from(name, "utf8")) {
    h ^= ch;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  if (h === 0) h = 1;
  return [h >>> 24, (h >>> 16) & 255, (h >>> 8) & 255, h & 255].join(".");
}

function restartSeconds(text: string | undefined, fallback: number): number | undefined {
  if (text === undefined) return fallback;
  const ms = parseGoDuration(text);
  if (ms === undefined) return undefined;
  return Math.min(MAX_RESTART_SECONDS, Math.max(0, Math.round(ms / 1000)));
}

function parseAdvertisements(
  list: BGPConfiguration["spec"]["prefixAdvertisements"],
  named: BGPConfiguration["spec"]["communities"],
  resource: string,
  unsupported: UnsupportedBgpField[],
): PrefixAdvertisementRule[] {
  const names = new Map((named ?? []).map((c) => [c.name, c.value]));
  const out: PrefixAdvertisementRule[] = [];
  (list ?? []).forEach((pa, i) => {
    const cidr = tryParseCidr(pa.cidr);
    if (cidr === undefined) return;
    const communities: string[] = [];
    const large: string[] = [];
    for (const raw of pa.communities) {
      const value = names.get(raw) ?? raw;
      const parsed = tryParseCommunity(value);
      if (parsed === undefined) {
        unsupported.push({
          resource,
          field: `spec.prefixAdvertisements[${i}].communities`,
          message: `community ${JSON.stringify(raw)} is neither a value nor a defined name; not attached`,
        });
      } else if (parsed.kind === "standard") communities.push(value);
      else large.push(value);
    }
    out.push({ cidr: cidr.text, communities, largeCommunities: large });
  });
  return out;
}

/**
 * Derives this node's BGP peerings and speaker settings from the model. Pure and deterministic: the
 * same resources give the same result, peers sorted by id.
 */
export function deriveBgpPeers(input: DeriveBgpPeersInput): BgpDerivation {
  const unsupported: UnsupportedBgpField[] = [];
  const skipped: string[] = [];
  const defaultRestart = input.defaultRestartSeconds ?? 120;
  const configs = new Map(input.configurations.map((c) => [c.metadata.name, c]));
  const global = configs.get("default")?.spec ?? {};
  const clusterAs = global.asNumber ?? DEFAULT_AS_NUMBER;
  const meshEnabled = global.nodeToNodeMeshEnabled ?? true;
  const globalPort = global.listenPort ?? DEFAULT_LISTEN_PORT;
  const portOf = (node: string) => configs.get(`node.${node}`)?.spec.listenPort ?? globalPort;

  // BGPConfiguration fields: honoured, or reported.
  const checkConfig = (name: string, isDefault: boolean) => {
    const spec = configs.get(name)?.spec;
    if (spec === undefined) return;
    const resource = `BGPConfiguration ${name}`;
    if (spec.logSeverityScreen !== undefined && spec.logSeverityScreen !== "Info") {
      unsupported.push({
        resource,
        field: "spec.logSeverityScreen",
        message: "BGP logs follow the agent's logLevel (MARGAY_LOG_LEVEL)",
      });
    }
    if (isDefault) {
      if (spec.nodeMeshPassword !== undefined) {
        unsupported.push({
          resource,
          field: "spec.nodeMeshPassword",
          message:
            "BGP session passwords (TCP MD5) are not supported and secrets are not read; mesh sessions run without a password",
        });
      }
      if (
        spec.nodeMeshMaxRestartTime !== undefined &&
        parseGoDuration(spec.nodeMeshMaxRestartTime) === undefined
      ) {
        unsupported.push({
          resource,
          field: "spec.nodeMeshMaxRestartTime",
          message: "not a duration; ignored",
        });
      }
      return;
    }
    // Calico: only prefixAdvertisements, listenPort and logSeverityScreen can be overridden per node.
    for (const f of [
      "nodeToNodeMeshEnabled",
      "asNumber",
      "serviceClusterIPs",
      "serviceExternalIPs",
      "serviceLoadBalancerIPs",
      "nodeMeshPassword",
      "nodeMeshMaxRestartTime",
    ] as const) {
      if (spec[f] !== undefined) {
        unsupported.push({
          resource,
          field: `spec.${f}`,
          message: "only valid on the default BGPConfiguration; ignored here",
        });
      }
    }
  };
  checkConfig("default", true);
  checkConfig(`node.${input.nodeName}`, false);

  const nodeConfig = configs.get(`node.${input.nodeName}`)?.spec;
  const prefixAdvertisements =
    nodeConfig?.prefixAdvertisements !== undefined
      ? parseAdvertisements(
          nodeConfig.prefixAdvertisements,
          [...(global.communities ?? []), ...(nodeConfig.communities ?? [])],
          `BGPConfiguration node.${input.nodeName}`,
          unsupported,
        )
      : parseAdvertisements(
          global.prefixAdvertisements,
          global.communities,
          "BGPConfiguration default",
          unsupported,
        );

  const infos = new Map<string, NodeInfo>();
  for (const n of input.nodes) {
    const bgp = n.spec?.bgp;
    infos.set(n.metadata.name, {
      name: n.metadata.name,
      labels: n.metadata.labels ?? {},
      v4: hostOf(bgp?.ipv4Address),
      v6: hostOf(bgp?.ipv6Address),
      asNumber: bgp?.asNumber ?? clusterAs,
      clusterId: bgp?.routeReflectorClusterID,
      listenPort: portOf(n.metadata.name),
    });
  }
  const self = infos.get(input.nodeName);
  const listenPort = portOf(input.nodeName);
  if (self === undefined || (self.v4 === undefined && self.v6 === undefined)) {
    return {
      enabled: false,
      localAsNumber: self?.asNumber ?? clusterAs,
      routerId: routerIdFromName(input.nodeName),
      listenAddresses: [],
      listenPort,
      routeReflectorClusterId: self?.clusterId,
      nodeToNodeMesh: meshEnabled,
      peers: [],
      prefixAdvertisements,
      unsupported,
      skipped: [
        self === undefined
          ? `node ${input.nodeName} has no Node resource`
          : `node ${input.nodeName} has no BGP address (spec.bgp.ipv4Address / ipv6Address)`,
      ],
    };
  }
  const localAs = self.asNumber;
  const ownAddresses = new Set([self.v4, self.v6].filter((a): a is string => a !== undefined));
  const byAddress = new Map<string, NodeInfo>();
  for (const n of infos.values()) {
    if (n.v4 !== undefined) byAddress.set(n.v4, n);
    if (n.v6 !== undefined) byAddress.set(n.v6, n);
  }

  const peers = new Map<string, DesiredBgpPeer>();
  const add = (
    p: Omit<DesiredBgpPeer, "id" | "localAsNumber" | "routeReflectorClient" | "localAddress">,
    opts: {
      clusterId: string | undefined;
      useNodeIp: boolean;
    },
  ) => {
    const local = p.family === 4 ? self.v4 : self.v6;
    if (local === undefined) {
      skipped.push(
        `${p.source}: peer ${p.address} is IPv${p.family} but this node has no IPv${p.family} BGP address`,
      );
      return;
    }
    if (ownAddresses.has(p.address)) return; // never peer with ourselves
    const id = bgpPeerId(p.address, p.port);
    const existing = peers.get(id);
    if (existing !== undefined) {
      skipped.push(`${p.source}: peer ${id} is already configured by ${existing.source}`);
      return;
    }
    const rrClient =
      self.clusterId !== undefined && p.asNumber === localAs && opts.clusterId !== self.clusterId;
    peers.set(id, {
      ...p,
      id,
      localAsNumber: localAs,
      routeReflectorClient: rrClient,
      localAddress: opts.useNodeIp ? local : undefined,
    });
  };
  const nodePeer = (
    other: NodeInfo,
    scope: BgpPeerScope,
    source: string,
    extra: { keepOriginalNextHop: boolean; restart: number; useNodeIp: boolean },
  ) => {
    for (const family of [4, 6] as const) {
      const mine = family === 4 ? self.v4 : self.v6;
      const theirs = family === 4 ? other.v4 : other.v6;
      if (mine === undefined || theirs === undefined) continue;
      add(
        {
          address: theirs,
          port: other.listenPort,
          family,
          asNumber: other.asNumber,
          scope,
          passive: compareAddresses(mine, theirs) < 0,
          keepOriginalNextHop: extra.keepOriginalNextHop,
          gracefulRestartSeconds: extra.restart,
          peerNode: other.name,
          source,
        },
        { clusterId: other.clusterId, useNodeIp: extra.useNodeIp },
      );
    }
  };

  // Explicit peers first (node-scoped before global), then the mesh: an explicit peering of the same
  // address wins over the mesh's.
  const explicit = [...input.peers].sort((a, b) => {
    const rank = (p: BGPPeer) => (p.spec.node !== undefined || p.spec.nodeSelector !== undefined ? 0 : 1);
    return (
      rank(a) - rank(b) ||
      (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0)
    );
  });
  const selects = (expr: string | undefined, n: NodeInfo, resource: string, field: string): boolean => {
    if (expr === undefined) return true;
    const r = tryParseSelector(expr);
    if (!r.ok) {
      unsupported.push({
        resource,
        field,
        message: `invalid selector: ${r.error.message}; the peering is skipped`,
      });
      return false;
    }
    return r.selector.matches(n.labels);
  };
  for (const bp of explicit) {
    const spec = bp.spec;
    const resource = `BGPPeer ${bp.metadata.name}`;
    const appliesTo = (n: NodeInfo) =>
      spec.node !== undefined
        ? spec.node === n.name
        : selects(spec.nodeSelector, n, resource, "spec.nodeSelector");
    const scope: BgpPeerScope =
      spec.node !== undefined || spec.nodeSelector !== undefined ? "node" : "global";
    if (spec.password !== undefined) {
      unsupported.push({
        resource,
        field: "spec.password",
        message:
          "BGP session passwords (TCP MD5) are not supported and secrets are not read; this BGPPeer is not configured",
      });
      continue;
    }
    if ((spec.numAllowedLocalASNumbers ?? 0) > 0) {
      unsupported.push({
        resource,
        field: "spec.numAllowedLocalASNumbers",
        message: "allowing our own AS in received AS paths is not supported; such routes are rejected",
      });
    }
    const restart = restartSeconds(spec.maxRestartTime, defaultRestart);
    if (restart === undefined) {
      unsupported.push({
        resource,
        field: "spec.maxRestartTime",
        message: "not a duration; the default applies",
      });
    }
    const extra = {
      keepOriginalNextHop: spec.keepOriginalNextHop ?? false,
      restart: restart ?? defaultRestart,
      useNodeIp: (spec.sourceAddress ?? "UseNodeIP") === "UseNodeIP",
    };
    if (spec.peerSelector !== undefined) {
      const sel = tryParseSelector(spec.peerSelector);
      if (!sel.ok) {
        unsupported.push({
          resource,
          field: "spec.peerSelector",
          message: `invalid selector: ${sel.error.message}; the peering is skipped`,
        });
        continue;
      }
      const targets = new Map<string, NodeInfo>();
      // Forward: we match node/nodeSelector, peer with the nodes peerSelector selects.
      if (appliesTo(self)) {
        for (const n of infos.values())
          if (n.name !== self.name && sel.selector.matches(n.labels)) targets.set(n.name, n);
      }
      // Reverse: peerSelector selects us, peer back with the nodes node/nodeSelector select.
      if (sel.selector.matches(self.labels)) {
        for (const n of infos.values()) if (n.name !== self.name && appliesTo(n)) targets.set(n.name, n);
      }
      for (const n of [...targets.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
        nodePeer(n, scope, resource, extra);
      }
      continue;
    }
    if (!appliesTo(self)) continue;
    if (spec.peerIP === undefined) {
      skipped.push(`${resource}: neither peerIP nor peerSelector is set`);
      continue;
    }
    const parsed = parsePeerIP(spec.peerIP);
    if (parsed === undefined) {
      unsupported.push({
        resource,
        field: "spec.peerIP",
        message: `invalid peer address ${spec.peerIP}; skipped`,
      });
      continue;
    }
    const peerNode = byAddress.get(parsed.ip);
    if (spec.asNumber === undefined && peerNode === undefined) {
      skipped.push(`${resource}: asNumber is required for a peer that is not a node`);
      continue;
    }
    const asNumber = spec.asNumber ?? peerNode!.asNumber;
    if (extra.keepOriginalNextHop && asNumber !== localAs) {
      unsupported.push({
        resource,
        field: "spec.keepOriginalNextHop",
        message:
          "keeping the original next hop toward an eBGP peer is not supported by the speaker; routes are sent with this node as next hop",
      });
    }
    add(
      {
        address: parsed.ip,
        port: parsed.port ?? peerNode?.listenPort ?? DEFAULT_LISTEN_PORT,
        family: parsed.version,
        asNumber,
        scope,
        passive: false,
        keepOriginalNextHop: extra.keepOriginalNextHop,
        gracefulRestartSeconds: extra.restart,
        peerNode: peerNode?.name,
        source: resource,
      },
      { clusterId: peerNode?.clusterId, useNodeIp: extra.useNodeIp },
    );
  }

  if (meshEnabled && self.clusterId === undefined) {
    const meshRestart = restartSeconds(global.nodeMeshMaxRestartTime, defaultRestart) ?? defaultRestart;
    const others = [...infos.values()]
      .filter((n) => n.name !== self.name && n.clusterId === undefined)
      .sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const n of others) {
      nodePeer(n, "mesh", "node-to-node mesh", {
        keepOriginalNextHop: false,
        restart: meshRestart,
        useNodeIp: true,
      });
    }
  }

  // The mesh may repeat an explicit peering: that is Calico's normal case (explicit wins), not news.
  const reported = skipped.filter(
    (s) => !s.startsWith("node-to-node mesh: peer ") || !s.includes("already configured"),
  );
  return {
    enabled: true,
    localAsNumber: localAs,
    routerId: self.v4 ?? routerIdFromName(self.name),
    listenAddresses: [...ownAddresses],
    listenPort,
    routeReflectorClusterId: self.clusterId,
    nodeToNodeMesh: meshEnabled,
    peers: [...peers.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
    prefixAdvertisements,
    unsupported,
    skipped: reported,
  };
}
