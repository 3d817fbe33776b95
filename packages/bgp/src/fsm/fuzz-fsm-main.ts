/**
 * The package's fuzz run (`npm run fuzz -- [iterations] [--seed=N]`): the wire fuzzer's random and
 * mutated messages through framer, codec and, added here, the FSM in every state; then random FSM
 * event sequences. A development entry point, not part of the public API.
 *
 * @packageDocumentation
 */
import { pathToFileURL } from "node:url";
import { runFuzz } from "../../fuzz/fuzz.js";
import { fuzzFsmWithBytes, runFsmFuzz } from "./fuzz-fsm.js";

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const iterations = Number(args.find((a) => /^\d+$/.test(a)) ?? 1_000_000);
  const seed = Number(args.find((a) => a.startsWith("--seed="))?.slice(7) ?? 1);
  const r = runFuzz({
    iterations,
    seed,
    targets: [
      {
        name: "fsm",
        run: ({ messages, count }) => {
          for (const m of messages) fuzzFsmWithBytes(m, count);
        },
      },
    ],
  });
  const rows = Object.entries(r.outcomes).sort((a, b) => b[1] - a[1]);
  console.log(`fuzz: ${r.iterations} inputs, seed ${r.seed}, ${(r.millis / 1000).toFixed(1)} s`);
  for (const [k, v] of rows.slice(0, 40)) console.log(`  ${k.padEnd(48)} ${String(v).padStart(10)}`);
  const sequences = Math.max(1, Math.floor(iterations / 20));
  const t0 = performance.now();
  const f = runFsmFuzz({ sequences, maxEvents: 80, seed });
  console.log(
    `fsm sequences: ${f.sequences} (${f.events} events), ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  if (r.failures.length > 0) {
    console.error(`${r.failures.length} failure(s):`);
    for (const x of r.failures) console.error(`- [${x.target}] ${x.error}\n  input: ${x.inputHex}`);
    process.exitCode = 1;
  } else console.log("no untyped exceptions, FSM invariants held");
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
