/**
 * Captures golden BGP messages from real BIRD 2 and GoBGP peers.
 *
 * A tiny passive "speaker" listens on 127.0.0.x (a port chosen free at run time), lets the peer connect,
 * answers its OPEN with ours, and records the raw bytes of every message the peer sends: OPEN, UPDATEs
 * (IPv4 and IPv6 via MP_REACH_NLRI, communities, large communities, 4-octet ASNs), End-of-RIB,
 * KEEPALIVE, and the NOTIFICATIONs it sends on an administrative shutdown and on an OPEN it refuses.
 * Each message is written as `packages/bgp/testdata/golden/<peer>-<name>.hex` with a provenance header.
 *
 * Run (root, BIRD 2 and GoBGP installed):  npx tsx packages/bgp/testdata/capture/capture.ts
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { type Server, type Socket, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import {
  type Capability,
  createCodecContext,
  createFramer,
  encodeMessage,
  KEEPALIVE_BYTES,
  messageType,
} from "../../src/wire/index.js";

const run = promisify(execFile);
const GOLDEN = fileURLToPath(new URL("../golden/", import.meta.url));
const DATE = new Date().toISOString().slice(0, 10);
const ctx = createCodecContext({ maxMessageSize: 4096 });

const OUR_AS = 65001;
const OUR_CAPS: Capability[] = [
  { code: 1, kind: "multiprotocol", afi: 1, safi: 1 },
  { code: 1, kind: "multiprotocol", afi: 2, safi: 1 },
  { code: 2, kind: "route-refresh" },
  { code: 65, kind: "four-octet-as", asn: OUR_AS },
  {
    code: 64,
    kind: "graceful-restart",
    restartState: false,
    notification: false,
    restartTime: 120,
    families: [
      { afi: 1, safi: 1, forwardingPreserved: false },
      { afi: 2, safi: 1, forwardingPreserved: false },
    ],
  },
];

interface Recorded {
  type: number;
  bytes: Uint8Array;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Listens once; answers OPEN with ours (holdTime as given) and records what the peer sends. */
function listen(host: string, holdTime: number): Promise<{ server: Server; port: number; messages: Recorded[]; sockets: Socket[] }> {
  const messages: Recorded[] = [];
  const sockets: Socket[] = [];
  const server = createServer((sock) => {
    sockets.push(sock);
    const framer = createFramer();
    sock.on("data", (chunk) => {
      for (const m of framer.push(chunk)) {
        messages.push({ type: messageType(m), bytes: m });
        if (messageType(m) === 1) {
          sock.write(
            encodeMessage(
              { type: 1, version: 4, myAs: OUR_AS, holdTime, bgpId: "10.255.0.1", capabilities: OUR_CAPS },
              ctx,
            ),
          );
          if (holdTime >= 3) sock.write(KEEPALIVE_BYTES);
        } else if (messageType(m) === 4) sock.write(KEEPALIVE_BYTES);
      }
    });
    sock.on("error", () => {});
  });
  return new Promise((resolve) => server.listen(0, host, () => {
    const addr = server.address();
    resolve({ server, port: typeof addr === "object" && addr ? addr.port : 0, messages, sockets });
  }));
}

async function waitFor(pred: () => boolean, ms: number): Promise<void> {
  const t0 = Date.now();
  while (!pred() && Date.now() - t0 < ms) await sleep(100);
}

function header(peer: string, version: string, config: string, name: string): string {
  return [
    `# ${name} sent by ${peer} ${version}`,
    `# captured ${DATE} by packages/bgp/testdata/capture/capture.ts over TCP on 127.0.0.x`,
    "# regenerate: npx tsx packages/bgp/testdata/capture/capture.ts (root; bird 2 and gobgpd installed)",
    `# peer configuration: ${config}`,
    `# our side: AS ${OUR_AS}, BGP ID 10.255.0.1, capabilities MP ipv4+ipv6 unicast, route refresh, 4-octet AS, graceful restart 120 s`,
  ].join("\n");
}

function writeGolden(prefix: string, name: string, head: string, bytes: Uint8Array): void {
  const hex = Buffer.from(bytes).toString("hex").replace(/(.{64})/g, "$1\n").trim();
  writeFileSync(join(GOLDEN, `${prefix}-${name}.hex`), `${head}\n${hex}\n`);
}

/** Names messages: open, keepalive, update-N (in arrival order), notification-<what>. */
function store(prefix: string, head: (name: string) => string, msgs: Recorded[], notificationName: string): void {
  let u = 0;
  let sawKeepalive = false;
  let sawOpen = false;
  for (const m of msgs) {
    if (m.type === 1 && !sawOpen) {
      sawOpen = true;
      writeGolden(prefix, "open", head("OPEN"), m.bytes);
    } else if (m.type === 4 && !sawKeepalive) {
      sawKeepalive = true;
      writeGolden(prefix, "keepalive", head("KEEPALIVE"), m.bytes);
    } else if (m.type === 2) {
      u++;
      writeGolden(prefix, `update-${u}`, head(`UPDATE #${u}`), m.bytes);
    } else if (m.type === 3) {
      writeGolden(prefix, `notification-${notificationName}`, head(`NOTIFICATION (${notificationName})`), m.bytes);
    }
  }
}

async function killProc(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null) return;
  p.kill("SIGTERM");
  await new Promise((r) => p.once("exit", r));
}

async function captureBird(dir: string): Promise<void> {
  const version = (await run("bird", ["--version"]).catch((e) => e)).stderr?.toString().trim() ?? "BIRD 2";
  for (const scenario of ["session", "bad-hold-time"] as const) {
    const l = await listen("127.0.0.12", scenario === "session" ? 90 : 1);
    const conf = join(dir, `bird-${scenario}.conf`);
    const config = `router id 10.0.0.11;
protocol device {}
protocol static s4 {
  ipv4;
  route 10.1.0.0/16 blackhole { bgp_community.add((65011,100)); bgp_large_community.add((4200000011,1,2)); bgp_med = 50; };
  route 10.2.0.0/24 blackhole;
  route 10.2.1.0/24 blackhole;
  route 192.0.2.128/25 blackhole { bgp_community.add((65011,200)); bgp_community.add((65535,65281)); };
}
protocol static s6 {
  ipv6;
  route 2001:db8:1::/48 blackhole { bgp_large_community.add((4200000011,6,6)); };
  route 2001:db8:2:3::/64 blackhole;
}
protocol bgp peer {
  local 127.0.0.11 as 4200000011;
  neighbor 127.0.0.12 port ${l.port} as ${OUR_AS};
  multihop;
  hold time 90;
  graceful restart on;
  ipv4 { import all; export all; };
  ipv6 { import all; export all; next hop address 2001:db8::11; };
}
`;
    writeFileSync(conf, config);
    const sock = join(dir, `bird-${scenario}.ctl`);
    const bird = spawn("bird", ["-f", "-c", conf, "-s", sock, "-P", join(dir, `bird-${scenario}.pid`)], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    try {
      if (scenario === "session") {
        await waitFor(() => l.messages.filter((m) => m.type === 2).length >= 4, 20_000);
        await sleep(1500);
        await run("birdc", ["-s", sock, "disable", "peer", "\"maintenance window\""]);
        await waitFor(() => l.messages.some((m) => m.type === 3), 5_000);
      } else {
        await waitFor(() => l.messages.some((m) => m.type === 3), 20_000);
      }
    } finally {
      await killProc(bird);
      for (const s of l.sockets) s.destroy();
      l.server.close();
    }
    const oneLine = config.replace(/\s+/g, " ").trim();
    const head = (name: string) => header("BIRD", version, oneLine, name);
    if (scenario === "session") store("bird", head, l.messages, "cease");
    else store("bird-badhold", head, l.messages.filter((m) => m.type === 3), "open-hold-time");
    console.log(`bird ${scenario}: ${l.messages.map((m) => m.type).join(",")}`);
  }
}

async function captureGobgp(dir: string): Promise<void> {
  const version = (await run("gobgpd", ["--version"])).stdout.trim();
  const api = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a ? a.port : 0));
    });
  });
  const l = await listen("127.0.0.22", 90);
  const conf = join(dir, "gobgpd.toml");
  const config = `[global.config]
  as = 65001
  router-id = "10.0.0.21"
  port = -1
  local-address-list = ["127.0.0.21"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "127.0.0.22"
    peer-as = 65001
  [neighbors.transport.config]
    local-address = "127.0.0.21"
    remote-port = ${l.port}
  [neighbors.graceful-restart.config]
    enabled = true
    restart-time = 120
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
`;
  writeFileSync(conf, config);
  const g = spawn("gobgpd", ["-f", conf, "--api-hosts", `127.0.0.1:${api}`, "--pprof-disable"], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  const cli = (...args: string[]) => run("gobgp", ["-p", String(api), ...args]);
  const routes = [
    ["global", "rib", "add", "10.3.0.0/24", "nexthop", "127.0.0.21", "community", "65001:7", "large-community", "65001:1:2", "local-pref", "200", "med", "10", "-a", "ipv4"],
    ["global", "rib", "add", "10.3.1.0/24", "nexthop", "127.0.0.21", "aspath", "4200000001,65500", "origin", "egp", "-a", "ipv4"],
    ["global", "rib", "add", "2001:db8:3::/48", "nexthop", "2001:db8::21", "community", "65001:6", "-a", "ipv6"],
  ];
  try {
    for (let i = 0; i < 50; i++) {
      if (await cli("global").then(() => true, () => false)) break;
      await sleep(200);
    }
    for (const r of routes) await cli(...r);
    await waitFor(() => l.messages.filter((m) => m.type === 2).length >= 5, 30_000);
    await sleep(1500);
    await cli("neighbor", "127.0.0.22", "shutdown", "-m", "maintenance window");
    await waitFor(() => l.messages.some((m) => m.type === 3), 5_000);
  } finally {
    await killProc(g);
    for (const s of l.sockets) s.destroy();
    l.server.close();
  }
  const head = (name: string) =>
    header("GoBGP", version, `${config.replace(/\s+/g, " ").trim()} routes: ${routes.map((r) => `gobgp ${r.join(" ")}`).join("; ")}`, name);
  store("gobgp", head, l.messages, "cease");
  console.log(`gobgp: ${l.messages.map((m) => m.type).join(",")}`);
}

const dir = mkdtempSync(join(tmpdir(), "mgbgp-capture-"));
try {
  const only = process.argv[2];
  if (!only || only === "bird") await captureBird(dir);
  if (!only || only === "gobgp") await captureGobgp(dir);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
