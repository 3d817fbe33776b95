/**
 * Where a one-endpoint change's time goes (`npx tsx packages/dataplane/bench/split.ts [--sizes 100,3000]
 * [--changes 20]`; needs root and netns): the same cluster and changes as `scale.ts`, with the wall time
 * of each `apply` split into the nft session's answer (from writing the transaction line to nft's end
 * marker: nft's parse, cache refill and commit, the kernel's work) and the rest (our model, render and
 * diff). `--remove`: each change deletes a programmed pod instead. Prints one line per size (medians). `PRINT_TX=1` prints each transaction on stderr;
 * `NFT_WRAP="strace -f -o FILE -e trace=sendto"` runs the session under a wrapper (to see what nft asks
 * the kernel for: a dump of every set or chain shows as one request per transaction).
 */
import { performance } from "node:perf_hooks";
import { argValue } from "../../../scripts/scale-kit.js";
import {
  type CommandRunner,
  createProcessRunner,
  type DataplaneUpdate,
  type RunningCommand,
} from "../src/index.js";
import { createNetnsLab } from "../src/testing/index.js";
import { syncedDriver, workload } from "./scale.js";

const SIZES = argValue("sizes", "100,1000,3000").split(",").map(Number);
const CHANGES = Number(argValue("changes", "20"));
/** `--remove`: each change deletes a programmed pod instead of adding one. */
const REMOVE = process.argv.includes("--remove");

function timingRunner() {
  const real = createProcessRunner();
  const t = { nft: 0, writes: 0, bytes: 0 };
  const runner: CommandRunner = {
    run: real.run.bind(real),
    start(argv) {
      const wrap = process.env.NFT_WRAP?.split(" ").filter(Boolean) ?? [];
      const child = real.start!([...wrap, ...argv]);
      let since: number | undefined;
      child.onStderr((chunk) => {
        if (since !== undefined && chunk.includes("@margay-nft-end-")) {
          t.nft += performance.now() - since;
          since = undefined;
        }
      });
      return {
        ...child,
        write(text: string) {
          since = performance.now();
          if (process.env.PRINT_TX) process.stderr.write(`${text}\n`);
          t.writes++;
          t.bytes += text.length;
          child.write(text);
        },
      } satisfies RunningCommand;
    },
  };
  return { runner, t };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

for (const n of SIZES) {
  const lab = createNetnsLab("mgdpx");
  try {
    const ns = await lab.add("node");
    const apps = Math.max(1, n / 10);
    const { runner, t } = timingRunner();
    const { graph, driver } = await syncedDriver(ns, runner, n);
    try {
      const total: number[] = [];
      const nft: number[] = [];
      let bytes = 0;
      for (let c = 0; c < CHANGES; c++) {
        if (REMOVE)
          graph.remove({ kind: "WorkloadEndpoint", namespace: "bench", name: `pod-${(c * 7) % n}` });
        else graph.upsert(workload(n + c, apps));
        const ups = graph.flush() as DataplaneUpdate[];
        const n0 = t.nft;
        const b0 = t.bytes;
        const t0 = performance.now();
        await driver.apply(ups);
        total.push(performance.now() - t0);
        nft.push(t.nft - n0);
        bytes += t.bytes - b0;
      }
      const ours = total.map((x, i) => x - nft[i]!);
      process.stdout.write(
        `${n} endpoints, ${REMOVE ? "pod removed" : "pod added"}: total ${median(total).toFixed(2)} ms, nft session ${median(nft).toFixed(2)} ms, ours ${median(ours).toFixed(2)} ms, ${(bytes / CHANGES).toFixed(0)} B/change\n`,
      );
    } finally {
      await driver.close();
    }
  } finally {
    await lab.close();
  }
}
