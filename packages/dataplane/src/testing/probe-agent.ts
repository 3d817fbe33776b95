import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { type NetnsHandle, inNetns } from "../kernel/netns.js";

// Runs inside a namespace: TCP servers that accept, UDP servers that echo, and a stdin loop of probes.
const AGENT_SOURCE = `
const net = require("node:net"), dgram = require("node:dgram"), rl = require("node:readline");
const { tcp, udp } = JSON.parse(process.argv[1]);
let pending = tcp.length + udp.length;
const ready = () => { if (--pending <= 0) process.stdout.write(JSON.stringify({ ready: true }) + "\\n"); };
if (pending === 0) { pending = 1; ready(); }
for (const p of tcp) net.createServer((s) => { s.on("error", () => {}); s.end(String(s.remoteAddress).replace(/^::ffff:/, "")); }).listen(p, "::", ready);
for (const p of udp) { const s = dgram.createSocket("udp6"); s.on("message", (m, r) => s.send(m, r.port, r.address)); s.bind(p, "::", ready); }
process.on("uncaughtException", (e) => { process.stderr.write(String(e.stack) + "\\n"); });
// One answer per probe. A timeout is judged only after pending I/O has run (setImmediate follows the poll
// phase): on a starved machine the timer and the connect completion can be due in the same loop turn,
// and the timer phase comes first.
const answer = (id) => { let done = false; return (ok, data) => { if (!done) { done = true; process.stdout.write(JSON.stringify({ id, ok, data }) + "\\n"); } }; };
const after = (ms, fn) => setTimeout(() => setImmediate(fn), ms);
rl.createInterface({ input: process.stdin }).on("line", (line) => {
  const q = JSON.parse(line);
  const out = answer(q.id);
  if (q.proto === "peer") {
    const s = net.connect({ host: q.host, port: q.port });
    let data = "";
    const t = after(q.timeout, () => { s.destroy(); out(false); });
    s.on("data", (b) => { data += b; });
    s.on("end", () => { clearTimeout(t); out(true, data); });
    s.on("error", () => { clearTimeout(t); out(false); });
  } else if (q.proto === "tcp") {
    const s = net.connect({ host: q.host, port: q.port });
    const t = after(q.timeout, () => { s.destroy(); out(false); });
    s.on("connect", () => { clearTimeout(t); s.destroy(); out(true); });
    s.on("error", () => { clearTimeout(t); out(false); });
  } else {
    const s = dgram.createSocket(net.isIPv6(q.host) ? "udp6" : "udp4");
    const t = after(q.timeout, () => { out(false); s.close(); });
    s.on("message", () => { clearTimeout(t); out(true); s.close(); });
    s.on("error", () => { clearTimeout(t); out(false); try { s.close(); } catch {} });
    s.send("probe", q.port, q.host);
  }
});
`;

/** Options of {@link startProbeAgent}. */
export interface ProbeAgentOptions {
  /** TCP ports to accept on. */
  readonly tcp?: readonly number[] | undefined;
  /** UDP ports to echo on. */
  readonly udp?: readonly number[] | undefined;
}

/** A process inside a namespace that serves ports and probes others. */
export interface ProbeAgent {
  /** Resolves true if a TCP connect (or a UDP echo round trip) to `host:port` succeeds within `timeoutMs`. */
  probe(proto: "tcp" | "udp", host: string, port: number, timeoutMs?: number): Promise<boolean>;
  /** The source address a TCP server at `host:port` saw for us (NAT checks), or undefined if unreachable. */
  peerAddress(host: string, port: number, timeoutMs?: number): Promise<string | undefined>;
  /** Stops the agent. */
  close(): Promise<void>;
  /** Same as close. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts a probe agent in `ns` (`ip netns exec` + `node -e`): no `nc`/`ping` needed, and one process
 * serves all probes from that namespace, so a table of hundreds of probes stays quick.
 */
export async function startProbeAgent(ns: NetnsHandle, options: ProbeAgentOptions = {}): Promise<ProbeAgent> {
  const argv = inNetns(ns, [
    process.execPath,
    "-e",
    AGENT_SOURCE,
    JSON.stringify({ tcp: options.tcp ?? [], udp: options.udp ?? [] }),
  ]);
  const child: ChildProcessWithoutNullStreams = spawn(argv[0]!, argv.slice(1), {
    stdio: ["pipe", "pipe", "pipe"],
  });
  const waiters = new Map<number, (ok: boolean, data?: string) => void>();
  let nextId = 1;
  let stderr = "";
  child.stderr.on("data", (b: Buffer) => {
    stderr += b.toString();
  });
  const lines = createInterface({ input: child.stdout });
  await new Promise<void>((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`probe agent exited (${code}): ${stderr}`));
    child.once("exit", onExit);
    lines.once("line", () => {
      child.off("exit", onExit);
      resolve();
    });
  });
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
  const close = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    child.kill("SIGTERM");
    await exited;
  };
  return {
    probe(proto, host, port, timeoutMs = 500) {
      const id = nextId++;
      if (dead) return Promise.reject(new Error(`probe agent is gone: ${stderr}`));
      return new Promise<boolean>((resolve) => {
        waiters.set(id, resolve);
        child.stdin.write(`${JSON.stringify({ id, proto, host, port, timeout: timeoutMs })}\n`);
      });
    },
    peerAddress(host, port, timeoutMs = 1000) {
      const id = nextId++;
      if (dead) return Promise.reject(new Error(`probe agent is gone: ${stderr}`));
      return new Promise<string | undefined>((resolve) => {
        waiters.set(id, (ok, data) => resolve(ok ? data : undefined));
        child.stdin.write(`${JSON.stringify({ id, proto: "peer", host, port, timeout: timeoutMs })}\n`);
      });
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
