/**
 * A probe process inside one namespace: serves TCP (answers with the address it saw) and UDP echo ports,
 * and runs probes (TCP connect, UDP round trip, "which source address did the server see", HTTP GET) that
 * the lab sends it over stdin. One long-lived process per namespace keeps hundreds of probes cheap.
 *
 * @packageDocumentation
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { ClusterLabError } from "./errors.js";
import { nsArgv, terminate } from "./process.js";

// Runs inside the namespace. `node -e` with the settings as argv[1]; one JSON answer per request line.
const PROBE_SOURCE = `
const net = require("node:net"), dgram = require("node:dgram"), http = require("node:http"), rl = require("node:readline");
const { tcp, udp } = JSON.parse(process.argv[1]);
let pending = tcp.length + udp.length;
const ready = () => { if (--pending <= 0) process.stdout.write(JSON.stringify({ ready: true }) + "\\n"); };
if (pending === 0) { pending = 1; ready(); }
const fam = (h) => (net.isIPv6(h) ? "udp6" : "udp4");
for (const p of tcp) net.createServer((s) => { s.on("error", () => {}); s.end(String(s.remoteAddress).replace(/^::ffff:/, "")); }).listen(p, "::", ready);
for (const p of udp) { const s = dgram.createSocket({ type: "udp6" }); s.on("message", (m, r) => s.send(m, r.port, r.address)); s.bind(p, "::", ready); }
process.on("uncaughtException", (e) => { process.stderr.write(String(e.stack) + "\\n"); });
const answer = (id) => { let done = false; return (ok, data) => { if (!done) { done = true; process.stdout.write(JSON.stringify({ id, ok, data }) + "\\n"); } }; };
// A timeout is judged after pending I/O has run, so a starved machine does not turn a late success into a loss.
const after = (ms, fn) => setTimeout(() => setImmediate(fn), ms);
rl.createInterface({ input: process.stdin }).on("line", (line) => {
  const q = JSON.parse(line);
  const out = answer(q.id);
  if (q.op === "peer" || q.op === "tcp") {
    const s = net.connect({ host: q.host, port: q.port });
    let data = "";
    const t = after(q.timeout, () => { s.destroy(); out(false); });
    s.on("connect", () => { if (q.op === "tcp") { clearTimeout(t); s.destroy(); out(true); } });
    s.on("data", (b) => { data += b; });
    s.on("end", () => { clearTimeout(t); out(true, data); });
    s.on("error", () => { clearTimeout(t); out(false); });
  } else if (q.op === "udp") {
    const s = dgram.createSocket(fam(q.host));
    const t = after(q.timeout, () => { out(false); s.close(); });
    s.on("message", () => { clearTimeout(t); out(true); s.close(); });
    s.on("error", () => { clearTimeout(t); out(false); try { s.close(); } catch {} });
    s.send("probe", q.port, q.host);
  } else if (q.op === "http") {
    const req = http.get(q.url, { timeout: q.timeout }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => { body += c; });
      res.on("end", () => out(true, JSON.stringify({ status: res.statusCode, body })));
      res.on("error", () => out(false));
    });
    req.on("timeout", () => { req.destroy(); out(false); });
    req.on("error", () => out(false));
  } else out(false);
});
`;

/** An HTTP answer a {@link Probe} got. */
export interface ProbeHttpResponse {
  readonly status: number;
  readonly body: string;
}

/** A probe process inside one namespace. */
export interface Probe {
  /** The namespace it runs in. */
  readonly ns: string;
  /** True if a TCP connect (`tcp`) or a UDP echo round trip (`udp`) to `host:port` succeeds in time. */
  probe(proto: "tcp" | "udp", host: string, port: number, timeoutMs?: number): Promise<boolean>;
  /** The source address a lab TCP server at `host:port` saw for this connection; undefined if unreachable. */
  peerAddress(host: string, port: number, timeoutMs?: number): Promise<string | undefined>;
  /** HTTP GET from inside the namespace; undefined when no answer came. */
  httpGet(url: string, timeoutMs?: number): Promise<ProbeHttpResponse | undefined>;
  /** Stops the process. */
  close(): Promise<void>;
}

/** The ports every lab probe serves: TCP answers with the peer's address, UDP echoes. */
export const PROBE_PORTS = Object.freeze({ tcp: 8080, udp: 9090 });

/** Starts a probe in the named namespace `ns`, serving {@link PROBE_PORTS} unless `serve` is false. */
export async function startProbe(ns: string, options: { readonly serve?: boolean } = {}): Promise<Probe> {
  const serve = options.serve ?? true;
  const settings = JSON.stringify(
    serve ? { tcp: [PROBE_PORTS.tcp], udp: [PROBE_PORTS.udp] } : { tcp: [], udp: [] },
  );
  const argv = nsArgv(ns, [process.execPath, "-e", PROBE_SOURCE, settings]);
  const child: ChildProcessWithoutNullStreams = spawn(argv[0]!, argv.slice(1), {
    stdio: ["pipe", "pipe", "pipe"],
    env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin" },
  });
  let stderr = "";
  child.stderr.on("data", (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-4000);
  });
  const lines = createInterface({ input: child.stdout });
  await new Promise<void>((resolve, reject) => {
    const onExit = (code: number | null) =>
      reject(
        new ClusterLabError("command-failed", `probe in ${ns} exited (${code}): ${stderr.trim()}`, {
          details: { ns },
        }),
      );
    child.once("exit", onExit);
    lines.once("line", () => {
      child.off("exit", onExit);
      resolve();
    });
  });
  const waiters = new Map<number, (ok: boolean, data?: string) => void>();
  let nextId = 1;
  let dead = false;
  child.once("exit", () => {
    dead = true;
    for (const w of waiters.values()) w(false);
    waiters.clear();
  });
  lines.on("line", (line) => {
    const m = JSON.parse(line) as { id: number; ok: boolean; data?: string };
    waiters.get(m.id)?.(m.ok, m.data);
    waiters.delete(m.id);
  });
  const ask = (q: Record<string, unknown>) =>
    new Promise<{ ok: boolean; data?: string | undefined }>((resolve, reject) => {
      if (dead) {
        reject(
          new ClusterLabError("closed", `probe in ${ns} is gone: ${stderr.trim()}`, { details: { ns } }),
        );
        return;
      }
      const id = nextId++;
      waiters.set(id, (ok, data) => resolve({ ok, data }));
      child.stdin.write(`${JSON.stringify({ id, ...q })}\n`);
    });
  return {
    ns,
    async probe(proto, host, port, timeoutMs = 1_000) {
      return (await ask({ op: proto, host, port, timeout: timeoutMs })).ok;
    },
    async peerAddress(host, port, timeoutMs = 2_000) {
      const r = await ask({ op: "peer", host, port, timeout: timeoutMs });
      return r.ok ? r.data : undefined;
    },
    async httpGet(url, timeoutMs = 2_000) {
      const r = await ask({ op: "http", url, timeout: timeoutMs });
      return r.ok && r.data !== undefined ? (JSON.parse(r.data) as ProbeHttpResponse) : undefined;
    },
    async close() {
      child.stdin.end();
      await terminate(child, "SIGTERM", 2_000);
    },
  };
}
