/**
 * BGP growth curves (`npm run bench:scale`, or `npx tsx packages/bgp/bench/scale.ts`): a route reflector
 * (`@margay/bgp` in this process) with N route-reflector clients (10 → 500) that each announce R host
 * routes (default 100). Every client must receive every other client's routes: the reflected work is
 * N·(N−1)·R prefixes, so the total grows as N²; what should not grow is the cost per reflected route.
 *
 * The clients are mini peers (wire codec only, no RIB) in ONE child process (`rr-clients.ts`), so this
 * process holds only the speaker. A run: all N sessions Established → every client sends its routes at
 * once (one packed UPDATE each) → converged when every client has counted (N−1)·R prefixes.
 *
 * Curves (each point the median over `--runs` runs, default 3, and ONE run above 200 clients, where a run
 * takes minutes; BENCH_QUICK=1: one run, up to 200):
 * - `rr-converge-vs-reflected`: wall seconds to convergence against the reflected routes N·(N−1)·R
 *   (so linear is slope 1; goal: < 2 s at 200 clients, x = 3,980,000);
 * - `rr-cpu-vs-reflected`: the reflector's CPU seconds (user + system of this process) over the same
 *   span: on a shared machine wall time mostly measures the wait for a core;
 * - `rr-cpu-per-route-vs-clients`: the reflector's CPU µs per reflected route (N·(N−1)·R): should fall
 *   or stay flat as N grows (fixed per-UPDATE and per-peer costs spread over more routes).
 *
 *   npx tsx packages/bgp/bench/scale.ts [--max 500] [--runs 3] [--routes 100] [--sizes 10,50,100,200,500]
 *                                       [--profile DIR]
 *
 * `--profile DIR` writes a V8 CPU profile of the reflector over each run's measured span (go →
 * converged, not the set-up or teardown) to DIR/rr-<clients>-<run>.cpuprofile.
 */
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { quick } from "../../../scripts/bench-kit.js";
import { argValue, emitCurve, makeCurve } from "../../../scripts/scale-kit.js";
import { createSpeaker } from "../src/index.js";
import { clientAddress } from "./rr-clients.js";

const SIZES = argValue("sizes", quick ? "10,50,100,200" : "10,50,100,200,500")
  .split(",")
  .map(Number)
  .filter((x) => x <= Number(argValue("max", "Infinity")));
const RUNS = Number(argValue("runs", quick ? "1" : "3"));
const ROUTES = Number(argValue("routes", "100"));
const ASN = 64512;
/** A run that has not converged by then failed (a sample is never invented). */
const TIMEOUT_MS = 180_000;
const PROFILE_DIR = argValue("profile", "");

interface Sample {
  wallS: number;
  cpuS: number;
  clientCpuS: number;
}

async function oneRun(clients: number, run: number): Promise<Sample> {
  const speaker = await createSpeaker({
    asn: ASN,
    routerId: "10.255.0.1",
    clusterId: "10.255.0.1",
    listen: [{ host: "127.0.0.1", port: 0 }],
    holdTime: 240,
    peers: Array.from({ length: clients }, (_, i) => ({
      address: clientAddress(i),
      asn: ASN,
      passive: true,
      routeReflectorClient: true,
    })),
  });
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      join(import.meta.dirname, "rr-clients.ts"),
      JSON.stringify({ port: speaker.listening[0]!.port, clients, routes: ROUTES, asn: ASN }),
    ],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  try {
    const lines = createInterface({ input: child.stdout });
    const next = () =>
      new Promise<{ event: string; cpuMs?: number }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no answer in ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
        const onExit = (code: number | null) => reject(new Error(`clients exited (${code})`));
        child.once("exit", onExit);
        lines.once("line", (l) => {
          clearTimeout(timer);
          child.off("exit", onExit);
          resolve(JSON.parse(l) as { event: string; cpuMs?: number });
        });
      });
    const established = await next();
    if (established.event !== "established") throw new Error(`unexpected ${established.event}`);
    const profiler = PROFILE_DIR ? new Session() : undefined;
    if (profiler) {
      profiler.connect();
      await profiler.post("Profiler.enable");
      await profiler.post("Profiler.start");
    }
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    child.stdin.write("go\n");
    const done = await next();
    const wallS = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    if (profiler) {
      const { profile } = await profiler.post("Profiler.stop");
      mkdirSync(PROFILE_DIR, { recursive: true });
      writeFileSync(join(PROFILE_DIR, `rr-${clients}-${run}.cpuprofile`), JSON.stringify(profile));
      profiler.disconnect();
    }
    if (done.event !== "converged") throw new Error(`unexpected ${done.event}`);
    return { wallS, cpuS: (cpu.user + cpu.system) / 1e6, clientCpuS: (done.cpuMs ?? 0) / 1000 };
  } finally {
    child.kill();
    await speaker.close();
  }
}

async function main(): Promise<void> {
  // Keyed by reflected routes N·(N−1)·R (the totals) and by N (the per-route cost).
  const wall = new Map<number, number[]>();
  const cpu = new Map<number, number[]>();
  const perRoute = new Map<number, number[]>();
  const failures: string[] = [];
  for (const n of SIZES) {
    const reflected = n * (n - 1) * ROUTES;
    for (const m of [wall, cpu]) m.set(reflected, []);
    perRoute.set(n, []);
    for (let r = 0; r < (n > 200 ? 1 : RUNS); r++) {
      try {
        const s = await oneRun(n, r);
        wall.get(reflected)!.push(s.wallS);
        cpu.get(reflected)!.push(s.cpuS);
        perRoute.get(n)!.push((s.cpuS * 1e6) / reflected);
        process.stderr.write(
          `bgp rr ${n} clients: ${s.wallS.toFixed(2)} s wall, ${s.cpuS.toFixed(2)} s reflector CPU, ${s.clientCpuS.toFixed(2)} s clients CPU\n`,
        );
      } catch (e) {
        failures.push(`${n} clients: ${(e as Error).message}`);
      }
    }
  }
  const method = `route reflector (@margay/bgp, this process) with N passive iBGP route-reflector clients on loopback; clients = mini peers (wire codec, no RIB) in one child process, each announcing ${ROUTES} /32s with itself as next hop in one UPDATE, all at once after every session is Established; converged = every client counted (N-1)·${ROUTES} prefixes; reflector CPU = this process's user+system over that span; point = median over ${RUNS} runs (1 run above 200 clients)`;
  const meta = {
    package: "bgp",
    x: `reflected routes N·(N−1)·${ROUTES} (N = ${SIZES.join(", ")} clients)`,
    method,
    failures: failures.length ? failures : undefined,
  };
  emitCurve(
    makeCurve(
      {
        ...meta,
        name: "rr-converge-vs-reflected",
        title: `route reflector convergence, N clients × ${ROUTES} routes (reflected work N²)`,
        y: "seconds to convergence (wall)",
        expectedSlope: 1,
        goal: "< 2 s at 200 clients (3,980,000 reflected routes); 500 clients measured",
      },
      wall,
    ),
  );
  emitCurve(
    makeCurve(
      {
        ...meta,
        name: "rr-cpu-vs-reflected",
        title: `route reflector CPU to convergence, N clients × ${ROUTES} routes`,
        y: "reflector CPU seconds",
        expectedSlope: 1,
      },
      cpu,
    ),
  );
  emitCurve(
    makeCurve(
      {
        ...meta,
        x: "route-reflector clients",
        name: "rr-cpu-per-route-vs-clients",
        title: "route reflector CPU per reflected route (N·(N−1)·R routes)",
        y: "reflector CPU µs per reflected route",
        expectedSlope: 0,
        goal: "falls or stays flat as N grows",
      },
      perRoute,
    ),
  );
}

if (process.argv[1]?.endsWith("scale.ts")) await main();
