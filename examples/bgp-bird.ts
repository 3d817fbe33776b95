/**
 * @margay/bgp: a Margay speaker peering with BIRD 2 (Debian `bird2`) on loopback, eBGP.
 *
 * BIRD announces a static route (what a top-of-rack router would send); the Margay speaker announces a
 * pod block (what `margay-node` announces for each block its host owns). Each side sees the other's
 * route: Margay through its `best-path` event, BIRD in `birdc show route`. Both stop at the end and the
 * temp directory is removed, also on failure.
 *
 * Run as a user that may start bird (root here): `npx tsx examples/bgp-bird.ts` (after `npm run build`);
 * `packages/margay/src/guides/examples.interop.test.ts` runs it.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createSpeaker } from "@margay/bgp";

const run = promisify(execFile);
const MARGAY = "127.0.0.21"; // the Margay speaker's address
const BIRD = "127.0.0.22"; // BIRD's address

/** A free TCP port on `host` (the OS picks it). */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, host, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const dir = mkdtempSync(join(tmpdir(), "margay-example-bird-"));
const speaker = await createSpeaker({
  asn: 64512,
  routerId: "10.255.0.21",
  listen: [{ host: MARGAY, port: 0 }],
});
let bird: ChildProcess | undefined;
try {
  const birdPort = await freePort(BIRD);
  const sock = join(dir, "bird.ctl");
  writeFileSync(
    join(dir, "bird.conf"),
    `router id 10.255.0.22;
protocol device { }
protocol static tor { ipv4; route 198.51.100.0/24 blackhole; }
protocol bgp margay {
  local ${BIRD} port ${birdPort} as 65010;
  neighbor ${MARGAY} port ${speaker.listening[0]!.port} as 64512;
  multihop; # loopback: the peer is not on a directly connected network BIRD scans
  connect delay time 1; connect retry time 1;
  ipv4 { import all; export where proto = "tor"; };
}
`,
  );
  bird = spawn("bird", ["-f", "-c", join(dir, "bird.conf"), "-s", sock, "-P", join(dir, "bird.pid")], {
    stdio: "ignore",
  });
  const birdc = async (...args: string[]) => (await run("birdc", ["-s", sock, ...args])).stdout;

  const learned = new Promise<string>((resolve) => {
    speaker.on((e) => {
      // Our own originated block is a best path too (no next hop): wait for BIRD's.
      if (e.type === "best-path" && !e.withdrawn && e.prefix === "198.51.100.0/24")
        resolve(`${e.prefix} via ${e.nextHops.join(", ")}`);
    });
  });
  speaker.addPeer({ address: BIRD, port: birdPort, asn: 65010, localAddress: MARGAY });
  speaker.originate("10.244.7.0/26");

  console.log(`margay learned ${await learned}`);
  const route = await until("BIRD to learn 10.244.7.0/26", async () => {
    const text = await birdc("show", "route", "for", "10.244.7.0/26", "all").catch(() => "");
    return /10\.244\.7\.0\/26/.test(text) ? text : undefined;
  });
  // (BIRD shows it "unreachable": on loopback its next hop 127.0.0.21 is not on a network BIRD routes.)
  const from = /from (\S+)\]/.exec(route)?.[1];
  const asPath = /BGP\.as_path: (.*)/.exec(route)?.[1]?.trim();
  console.log(`bird learned 10.244.7.0/26 from ${from}, AS path ${asPath}`);
  const peer = speaker.peers()[0]!;
  console.log(`session ${peer.state}`);
} finally {
  await speaker.close();
  bird?.kill("SIGTERM");
  rmSync(dir, { recursive: true, force: true });
}
