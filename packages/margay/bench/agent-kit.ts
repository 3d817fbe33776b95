/**
 * Instruments of the margay-node benchmark (bench/agent.ts): a ping stream whose replies carry ping's own
 * receive timestamps (`ping -D`), a route monitor whose events carry the kernel-side wall clock of
 * `ip -ts monitor route`, a Prometheus text scrape, and an agent's RSS and CPU from /proc. Every
 * timestamp is wall-clock milliseconds (`Date.now()`'s clock), so the bench subtracts them from its own.
 *
 * @packageDocumentation
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { createInterface } from "node:readline";

const PATH = process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin";

/** min, median, p99 (nearest rank), max of samples, with the samples. */
export interface Stats {
  readonly n: number;
  readonly min: number;
  readonly median: number;
  readonly p99: number;
  readonly max: number;
  readonly samples: readonly number[];
}

/** Nearest-rank percentile `p` (0–100) of `xs`. */
export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** {@link Stats} of samples (the median of an even count is the mean of the middle two). */
export function stats(samples: readonly number[]): Stats {
  if (samples.length === 0) return { n: 0, min: NaN, median: NaN, p99: NaN, max: NaN, samples: [] };
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { n: s.length, min: s[0]!, median, p99: percentile(s, 99), max: s[s.length - 1]!, samples };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function killQuietly(child: ChildProcess) {
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
}

/** A `ping -D` running inside a namespace: every echo reply with ping's receive time. */
export interface PingStream {
  /** Resolves once ping printed its header (it is sending). */
  readonly started: Promise<void>;
  /** Receive times (ms, wall clock) of the replies so far. */
  readonly replies: readonly number[];
  /** The first reply received at or after `t` (ms), or undefined after `timeoutMs`. */
  firstReplyAfter(t: number, timeoutMs: number): Promise<number | undefined>;
  close(): void;
}

/** Pings `ip` from namespace `ns` every `intervalS` seconds until closed. */
export function startPing(ns: string, ip: string, intervalS: number): PingStream {
  // stdbuf: ping's stdout is a pipe, so without it lines would arrive in 4 KiB chunks.
  const child = spawn(
    "nsenter",
    [`--net=/run/netns/${ns}`, "--", "stdbuf", "-oL", "ping", "-n", "-D", "-i", String(intervalS), ip],
    { stdio: ["ignore", "pipe", "ignore"], env: { PATH, LC_ALL: "C" } },
  );
  child.on("error", () => undefined);
  const replies: number[] = [];
  const wakers = new Set<() => void>();
  let onStart: () => void = () => undefined;
  const started = new Promise<void>((resolve, reject) => {
    onStart = resolve;
    child.once("exit", (code) => reject(new Error(`ping ${ip} in ${ns} exited (${code}) before starting`)));
  });
  started.catch(() => undefined);
  createInterface({ input: child.stdout! }).on("line", (line) => {
    if (line.startsWith("PING ")) onStart();
    const m = /^\[(\d+\.\d+)\] \d+ bytes from /.exec(line);
    if (m === null) return;
    replies.push(Number(m[1]) * 1000);
    for (const w of wakers) w();
  });
  return {
    started,
    replies,
    async firstReplyAfter(t, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = replies.find((r) => r >= t);
        if (hit !== undefined) return hit;
        const left = deadline - Date.now();
        if (left <= 0 || child.exitCode !== null) return undefined;
        await new Promise<void>((resolve) => {
          const wake = () => {
            wakers.delete(wake);
            clearTimeout(timer);
            resolve();
          };
          const timer = setTimeout(wake, Math.min(left, 1_000));
          wakers.add(wake);
        });
      }
    },
    close: () => killQuietly(child),
  };
}

/** One route the kernel reported as added. */
export interface RouteEvent {
  /** Wall-clock ms of the kernel event as `ip -ts` stamped it. */
  readonly ts: number;
  readonly dst: string;
  readonly proto: string | undefined;
  readonly line: string;
}

/** `ip -ts monitor route` of one namespace. */
export interface RouteMonitor {
  /** Resolves once the netlink socket is open (events from then on are seen). */
  readonly ready: Promise<void>;
  /** Unicast routes added so far (deletions and blackhole/unreachable routes left out). */
  readonly events: readonly RouteEvent[];
  /** The first added route covering `ip` stamped at or after `t`, or undefined after `timeoutMs`. */
  covering(ip: string, t: number, timeoutMs: number): Promise<RouteEvent | undefined>;
  close(): void;
}

const v4 = (ip: string) => ip.split(".").reduce((n, o) => n * 256 + Number(o), 0);

/** True if the IPv4 route destination `dst` (`a.b.c.d[/len]`) covers `ip`. */
export function covers(dst: string, ip: string): boolean {
  const [net, lenText] = dst.split("/");
  if (net === undefined || !/^\d+\.\d+\.\d+\.\d+$/.test(net)) return false;
  const len = lenText === undefined ? 32 : Number(lenText);
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return (v4(net) & mask) >>> 0 === (v4(ip) & mask) >>> 0;
}

const NOT_FORWARDING = new Set(["blackhole", "unreachable", "prohibit", "local", "broadcast", "multicast"]);

/** Starts `ip -ts monitor route` in namespace `ns`. */
export function startRouteMonitor(ns: string): RouteMonitor {
  const child = spawn("ip", ["-n", ns, "-ts", "monitor", "route"], {
    stdio: ["ignore", "pipe", "ignore"],
    env: { PATH, TZ: "UTC", LC_ALL: "C" },
  });
  child.on("error", () => undefined);
  const events: RouteEvent[] = [];
  const wakers = new Set<() => void>();
  createInterface({ input: child.stdout! }).on("line", (line) => {
    const m = /^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)\] (.*)$/.exec(line);
    if (m === null) return;
    const words = m[2]!.trim().split(/\s+/);
    if (words[0] === "Deleted" || NOT_FORWARDING.has(words[0]!) || words[0] === "default") return;
    const proto = words[words.indexOf("proto") + 1];
    events.push({
      ts: Date.parse(`${m[1]!.slice(0, 23)}Z`),
      dst: words[0]!,
      proto: words.includes("proto") ? proto : undefined,
      line: m[2]!,
    });
    for (const w of wakers) w();
  });
  // The monitor is subscribed once `ip` holds its netlink socket.
  const ready = (async () => {
    for (let i = 0; i < 200; i++) {
      try {
        const fds = readdirSync(`/proc/${child.pid}/fd`);
        if (fds.some((fd) => readlinkSync(`/proc/${child.pid}/fd/${fd}`).startsWith("socket:"))) return;
      } catch {}
      await sleep(25);
    }
    throw new Error(`ip monitor route in ${ns} did not start`);
  })();
  return {
    ready,
    events,
    async covering(ip, t, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = events.find((e) => e.ts >= t && covers(e.dst, ip));
        if (hit !== undefined) return hit;
        const left = deadline - Date.now();
        if (left <= 0 || child.exitCode !== null) return undefined;
        await new Promise<void>((resolve) => {
          const wake = () => {
            wakers.delete(wake);
            clearTimeout(timer);
            resolve();
          };
          const timer = setTimeout(wake, Math.min(left, 1_000));
          wakers.add(wake);
        });
      }
    },
    close: () => killQuietly(child),
  };
}

/** Prometheus text format → `name{labels}` → value (comments left out). */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/** The pid of the `margay-node` process whose environment names `socket` as its workload API socket. */
export function findAgentPid(socket: string): number | undefined {
  const want = `MARGAY_AGENT_SOCKET=${socket}\0`;
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (!readFileSync(`/proc/${e}/cmdline`, "utf8").includes("margay-node")) continue;
      if (readFileSync(`/proc/${e}/environ`, "utf8").includes(want)) return Number(e);
    } catch {}
  }
  return undefined;
}

const CLK_TCK = (() => {
  const r = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
  const n = Number(r.stdout?.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/** Resident memory now and its peak (VmRSS, VmHWM; bytes) and CPU used so far (utime+stime; seconds). */
export interface ProcSample {
  readonly rssBytes: number;
  readonly hwmBytes: number;
  readonly cpuSeconds: number;
}

/** Reads {@link ProcSample} of `pid` from /proc. */
export function procSample(pid: number): ProcSample {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN) * 1024;
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // After the comm: f[0] is field 3 (state), so utime (14) and stime (15) are f[11] and f[12].
  return {
    rssBytes: kb("VmRSS"),
    hwmBytes: kb("VmHWM"),
    cpuSeconds: (Number(f[11]) + Number(f[12])) / CLK_TCK,
  };
}

/** Runs `tasks` with at most `limit` in flight. */
export async function inParallel<T>(items: readonly T[], limit: number, f: (x: T) => Promise<unknown>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await f(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
