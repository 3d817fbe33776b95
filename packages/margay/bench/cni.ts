/**
 * CNI benchmark: ADD+DEL cycle time of Debian's bridge with margay-ipam against bridge with host-local,
 * measured in the same run, plus each IPAM plugin called alone and a bare `node -e 0` start as the floor.
 * The plugins run inside a namespace standing in for the host (`ip netns exec`), so the real host is
 * never touched; that wrapper is the same for both sides. Needs root.
 *
 * Every figure: min/median/p90/max of CYCLES interleaved cycles (each call a fresh process on both
 * sides). Writes `margay-cni.json` where scripts/bench-kit.ts says. `BENCH_QUICK=1`: 3 cycles.
 */

import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createCniRuntime, DEFAULT_PLUGIN_ENV, execPlugin, type NetConfList } from "@margay/cni";
import { createNetns } from "@margay/cni/testing";
import { buildMargayIpamBundle } from "../src/cni/ipam/build-bundle.js";
import { size, summarize, writeResult } from "../../../scripts/bench-kit.js";

const run = promisify(execFile);
const DEBIAN = "/usr/lib/cni";
const CYCLES = Number(process.env.BENCH_CYCLES ?? size(30, 3));

/** bench-kit's min/median/max (the median every other benchmark uses) plus the 90th percentile. */
function stats(xs: number[]) {
  const sorted = [...xs].sort((a, b) => a - b);
  return { ...summarize(xs), p90: sorted[Math.min(sorted.length - 1, Math.floor(0.9 * sorted.length))]! };
}

async function time(f: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

async function main() {
  const dir = await mkdtemp(join(tmpdir(), "mgcni-bench-"));
  const host = await createNetns("mgcni-benchhost");
  const ctr = await createNetns("mgcni-bench");
  try {
    const binDir = join(dir, "bin");
    await mkdir(binDir);
    // The shipped executable itself; its V8 code cache is written next to it by the warm-up ADDs.
    await buildMargayIpamBundle(join(binDir, "margay-ipam"));
    const launcher = ["ip", "netns", "exec", host.name];
    const path = [binDir, DEBIAN];
    const runtime = createCniRuntime({ path, cacheDir: join(dir, "cache"), launcher });
    const list = (name: string, bridge: string, ipam: Record<string, unknown>): NetConfList => ({
      cniVersion: "1.0.0",
      name,
      plugins: [
        {
          type: "bridge",
          bridge,
          isGateway: true,
          ipam: { type: "", ...ipam } as { type: string },
        },
      ],
    });
    const hostLocal = list("bench-hl", "mgbench0", {
      type: "host-local",
      dataDir: join(dir, "hl"),
      ranges: [[{ subnet: "10.248.0.0/24" }]],
    });
    const margay = list("bench-mg", "mgbench1", {
      type: "margay-ipam",
      datastore: { type: "memory", snapshotPath: join(dir, "mg", "ipam.json") },
      node: "bench",
      pools: [{ cidr: "10.248.1.0/24", blockSize: 26 }],
    });
    const rt = { containerId: "bench-ctr", netns: ctr.path, ifname: "eth0" };
    const cycle = (l: NetConfList) =>
      time(async () => {
        await runtime.addNetworkList(l, rt);
        await runtime.delNetworkList(l, rt);
      });
    // IPAM alone: the same ADD+DEL the bridge delegates, exec'd directly (no netns wrapper).
    const ipamCycle = (l: NetConfList) => {
      const conf = JSON.stringify({ ...l.plugins[0], cniVersion: l.cniVersion, name: l.name });
      const bin = join(l === margay ? binDir : DEBIAN, String((l.plugins[0]!.ipam as { type: string }).type));
      const params = { containerId: "bench-ipam", netns: ctr.path, ifname: "eth0", path };
      return [
        () => time(() => execPlugin(bin, { command: "ADD", ...params }, conf)),
        () => time(() => execPlugin(bin, { command: "DEL", ...params }, conf)),
      ] as const;
    };
    // Warm-up: page cache, bridge creation, pools in the snapshot.
    for (let i = 0; i < 3; i++) {
      await cycle(hostLocal);
      await cycle(margay);
    }
    const r = {
      hostLocal: [] as number[],
      margay: [] as number[],
      node: [] as number[],
      hlAdd: [] as number[],
      hlDel: [] as number[],
      mgAdd: [] as number[],
      mgDel: [] as number[],
    };
    const [hlA, hlD] = ipamCycle(hostLocal);
    const [mgA, mgD] = ipamCycle(margay);
    for (let i = 0; i < CYCLES; i++) {
      r.hostLocal.push(await cycle(hostLocal));
      r.margay.push(await cycle(margay));
      r.node.push(await time(() => run(process.execPath, ["-e", "0"], { env: { ...DEFAULT_PLUGIN_ENV } })));
      r.hlAdd.push(await hlA());
      r.hlDel.push(await hlD());
      r.mgAdd.push(await mgA());
      r.mgDel.push(await mgD());
    }
    const s = Object.fromEntries(Object.entries(r).map(([k, v]) => [k, stats(v)])) as Record<
      keyof typeof r,
      ReturnType<typeof stats>
    >;
    const mgCall = (s.mgAdd.median + s.mgDel.median) / 2;
    const rows: Array<[string, ReturnType<typeof stats>]> = [
      ["bridge + host-local  ADD+DEL", s.hostLocal],
      ["bridge + margay-ipam ADD+DEL", s.margay],
      ["host-local ADD (alone)", s.hlAdd],
      ["host-local DEL (alone)", s.hlDel],
      ["margay-ipam ADD (alone)", s.mgAdd],
      ["margay-ipam DEL (alone)", s.mgDel],
      ["node -e 0 (floor)", s.node],
    ];
    const f = (x: number) => x.toFixed(1).padStart(7);
    console.log(`CNI benchmark, ${CYCLES} cycles each, interleaved (ms)`);
    console.log(
      `${"".padEnd(30)}${"median".padStart(7)}${"p90".padStart(8)}${"min".padStart(8)}${"max".padStart(8)}`,
    );
    for (const [name, st] of rows)
      console.log(`${name.padEnd(30)}${f(st.median)} ${f(st.p90)} ${f(st.min)} ${f(st.max)}`);
    // On a shared machine the medians carry other tenants' load; the minima show the intrinsic cost.
    const mgCallMin = (s.mgAdd.min + s.mgDel.min) / 2;
    const ratios = {
      margayCallOverNodeFloorMsAtMin: mgCallMin - s.node.min,
      cycleMargayOverHostLocal: s.margay.median / s.hostLocal.median,
      margayCallOverNodeFloorMs: mgCall - s.node.median,
      margayCallOverHostLocalCall: mgCall / ((s.hlAdd.median + s.hlDel.median) / 2),
    };
    console.log(
      `ratio bridge+margay-ipam / bridge+host-local cycle: ${ratios.cycleMargayOverHostLocal.toFixed(2)}x`,
    );
    console.log(
      `margay-ipam per call over bare node start: ${ratios.margayCallOverNodeFloorMs.toFixed(1)} ms (goal <= 20 ms)`,
    );
    console.log(`same at the minima: ${ratios.margayCallOverNodeFloorMsAtMin.toFixed(1)} ms`);
    console.log(`margay-ipam call / host-local call: ${ratios.margayCallOverHostLocalCall.toFixed(2)}x`);
    writeResult("margay-cni", { benchmark: "cni", cycles: CYCLES, node: process.version, stats: s, ratios });
  } finally {
    await ctr.close();
    await host.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
