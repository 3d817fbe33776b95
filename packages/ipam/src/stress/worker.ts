/**
 * One process of the multi-process stress test (`ipam.interop.test.ts`): allocates and releases
 * addresses as one host against a shared etcd, and appends every committed step to a log file before
 * moving on, so the parent can reconstruct who held what even if this process is SIGKILLed.
 *
 * Usage: node --import tsx worker.ts <etcd-endpoint> <worker-id> <node> <operations> <log-file> <seed>
 */
import { appendFileSync } from "node:fs";
import { type Logger, silentLogger } from "@margay/api";
import { createEtcdDatastore } from "@margay/datastore";
import { createIpam } from "../ipam.js";

const [endpoint, workerId, node, opsText, logFile, seedText] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
  string,
];
const operations = Number(opsText);

// A small deterministic PRNG so a failing run can be replayed with the same seed.
let state = Number(seedText) >>> 0 || 1;
const rand = () => {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return (state >>> 0) / 2 ** 32;
};

const log = (entry: Record<string, unknown>) =>
  appendFileSync(logFile, `${JSON.stringify({ ...entry, at: Date.now() })}\n`);

const ds = createEtcdDatastore({ endpoints: [endpoint] });
const stats = { conflicts: 0, maxAttempt: 0 };
// Counts the conflict records (`debug`, with the attempt number); drops everything else.
const logger: Logger = {
  ...silentLogger,
  debug(attrs: Record<string, unknown> | string) {
    if (typeof attrs === "string") return;
    stats.conflicts++;
    stats.maxAttempt = Math.max(stats.maxAttempt, Number(attrs.attempt));
  },
  child: () => logger,
};
const ipam = createIpam({ datastore: ds, random: rand, logger });
const held: string[] = [];
let serial = 0;
try {
  for (let i = 0; i < operations; i++) {
    if (held.length === 0 || (held.length < 60 && rand() < 0.6)) {
      const handleId = `w${workerId}.${serial++}`;
      const dual = rand() < 0.3;
      const r = await ipam.autoAssign({
        handleId,
        node,
        num4: 1,
        num6: dual ? 1 : 0,
        attrs: { pod: handleId, node },
      });
      log({ t: "alloc", h: handleId, ips: [...r.ipv4, ...r.ipv6].map((a) => a.ip) });
      held.push(handleId);
    } else {
      const [h] = held.splice(Math.floor(rand() * held.length), 1) as [string];
      log({ t: "rel-start", h });
      await ipam.releaseByHandle(h);
      log({ t: "rel", h });
    }
  }
  log({ t: "done", held, ...stats });
  await ipam.close();
  await ds.close();
} catch (e) {
  const cause = (e as { cause?: { message?: string; details?: unknown } }).cause;
  log({
    t: "error",
    message: (e as Error).message,
    code: (e as { code?: string }).code,
    cause: cause?.message,
    details: cause?.details,
  });
  process.exitCode = 1;
  await ds.close().catch(() => undefined);
}
