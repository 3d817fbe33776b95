import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { waitFor } from "../__tests__/helpers.js";
import { createKubeClient, type KubeClient } from "../client/kube-client.js";
import { isKubeAdapterError, KubeAdapterErrorCode } from "../errors.js";
import type { KubeLease } from "../kube-types.js";
import { type FakeKubeApiServer, startFakeKubeApiServer } from "../testing/index.js";
import { createHttpTransport, type KubeTransport } from "../transport/transport.js";
import { createLeaderElector, type LeaderElector, type LeaderElectorOptions } from "./leader-elector.js";

// Short durations (client-go's ratios) so the suite runs in seconds; nothing below asserts how fast.
const FAST = { leaseDurationMs: 2000, renewDeadlineMs: 1500, retryPeriodMs: 300 } as const;

let server: FakeKubeApiServer;
const transports: KubeTransport[] = [];
const electors: LeaderElector[] = [];

beforeEach(async () => {
  server = await startFakeKubeApiServer();
});
afterEach(async () => {
  await Promise.all(electors.splice(0).map((e) => e.stop()));
  for (const t of transports.splice(0)) t.close();
  await server.close();
});

function clientFor(wrap?: (t: KubeTransport) => KubeTransport): KubeClient {
  const t = createHttpTransport({ server: server.url });
  transports.push(t);
  return createKubeClient(wrap === undefined ? t : wrap(t));
}

interface Recorded {
  elector: LeaderElector;
  started: number;
  stopped: number;
  leaders: string[];
  signals: AbortSignal[];
}

function candidate(identity: string, extra: Partial<LeaderElectorOptions> = {}): Recorded {
  const r: Recorded = { elector: undefined as never, started: 0, stopped: 0, leaders: [], signals: [] };
  r.elector = createLeaderElector({
    client: extra.client ?? clientFor(),
    namespace: "kube-system",
    name: "margay-kube-controllers",
    identity,
    ...FAST,
    onStartedLeading: (signal) => {
      r.started++;
      r.signals.push(signal);
    },
    onStoppedLeading: () => {
      r.stopped++;
    },
    onNewLeader: (id) => r.leaders.push(id),
    ...extra,
  });
  electors.push(r.elector);
  return r;
}

const leaseNow = () =>
  server.get("leases", "kube-system", "margay-kube-controllers") as KubeLease | undefined;

describe("leader election on a Lease (fake API server over HTTP)", () => {
  it("elects exactly one of two candidates; a release hands over at once, long before the lease expires", async () => {
    // A lease far longer than the test's patience: only a release can explain a takeover.
    const slow = { leaseDurationMs: 600_000, renewDeadlineMs: 1500, retryPeriodMs: 300 };
    const a = candidate("a", slow);
    const b = candidate("b", slow);
    a.elector.start();
    await waitFor(() => a.elector.isLeader, "a leads");
    b.elector.start();
    await waitFor(() => b.elector.leader === "a", "b sees a");
    expect(b.elector.isLeader).toBe(false);
    expect(leaseNow()?.spec).toMatchObject({
      holderIdentity: "a",
      leaseDurationSeconds: 600,
      leaseTransitions: 0,
    });
    expect(leaseNow()?.spec?.renewTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);

    await a.elector.stop({ release: true });
    expect(a.elector.isLeader).toBe(false);
    expect(a.stopped).toBe(1);
    expect(a.signals[0]!.aborted).toBe(true);
    await waitFor(() => b.elector.isLeader, "b takes over after the release");
    expect(leaseNow()?.spec).toMatchObject({ holderIdentity: "b", leaseTransitions: 1 });
    expect(b.leaders).toEqual(["a", "b"]);
    expect(a.started + b.started).toBe(2);
  });

  it("takes over from a leader that died without releasing, once the lease has expired", async () => {
    const a = candidate("a");
    const b = candidate("b");
    a.elector.start();
    await waitFor(() => a.elector.isLeader, "a leads");
    b.elector.start();
    await waitFor(() => b.elector.leader === "a", "b sees a");
    await a.elector.stop(); // no release: as a SIGKILLed replica, the lease stays a's
    const last = leaseNow()!;
    expect(last.spec?.holderIdentity).toBe("a");
    await waitFor(() => b.elector.isLeader, "b takes over", 15_000);
    const taken = leaseNow()!;
    expect(taken.spec).toMatchObject({ holderIdentity: "b", leaseTransitions: 1 });
    // Not before the dead leader's last renewal had expired (same clock: one process).
    expect(Date.parse(taken.spec!.acquireTime!)).toBeGreaterThanOrEqual(
      Date.parse(last.spec!.renewTime!) + FAST.leaseDurationMs,
    );
  });

  it("lets exactly one of several candidates win a concurrent acquire; the others get 409 Conflict", async () => {
    // The lease exists and was released, so every candidate may take it and all try at once: each one's
    // PUT is held until all have read the same resourceVersion and sent theirs.
    server.create("leases", {
      metadata: { name: "margay-kube-controllers", namespace: "kube-system" },
      spec: { holderIdentity: "", leaseDurationSeconds: 1, leaseTransitions: 3 },
    });
    const n = 4;
    let waiting = 0;
    let release!: () => void;
    const barrier = new Promise<void>((r) => {
      release = r;
    });
    const gated = (t: KubeTransport): KubeTransport => ({
      server: t.server,
      close: () => t.close(),
      get: (p, o) => t.get(p, o),
      request: async (method, p, o) => {
        if (method === "PUT") {
          if (++waiting === n) release();
          await barrier;
        }
        return t.request(method, p, o);
      },
    });
    const cs = Array.from({ length: n }, (_, i) => candidate(`c${i}`, { client: clientFor(gated) }));
    for (const c of cs) c.elector.start();
    await waitFor(() => cs.some((c) => c.elector.isLeader), "someone leads");
    const winner = cs.find((c) => c.elector.isLeader)!;
    await waitFor(() => cs.every((c) => c.elector.leader === winner.elector.leader), "all agree");
    expect(cs.filter((c) => c.elector.isLeader)).toHaveLength(1);
    expect(server.stats.conflicts).toBe(n - 1);
    expect(leaseNow()?.spec).toMatchObject({ holderIdentity: winner.elector.leader, leaseTransitions: 4 });
  });

  it("stops leading when renewals fail past the renew deadline, and leads again once the server is back", async () => {
    const a = candidate("a");
    a.elector.start();
    await waitFor(() => a.elector.isLeader, "a leads");
    server.failRequests(Number.MAX_SAFE_INTEGER, 500, (r) => r.path.includes("/leases/"));
    await waitFor(() => !a.elector.isLeader, "a stops leading", 15_000);
    expect(a.stopped).toBe(1);
    expect(a.signals[0]!.aborted).toBe(true);
    server.failRequests(0);
    // Still the holder in the Lease: it renews its own lease at once.
    await waitFor(() => a.elector.isLeader, "a leads again", 15_000);
    expect(a.started).toBe(2);
    expect(leaseNow()?.spec?.leaseTransitions).toBe(0);
  });

  it("steps down as soon as it sees another holder in the Lease", async () => {
    const a = candidate("a");
    a.elector.start();
    await waitFor(() => a.elector.isLeader, "a leads");
    const l = leaseNow()!;
    server.update("leases", { ...l, spec: { ...l.spec, holderIdentity: "intruder" } });
    await waitFor(() => !a.elector.isLeader, "a steps down");
    expect(a.elector.leader).toBe("intruder");
    expect(a.leaders).toEqual(["a", "intruder"]);
  });

  it("refuses inconsistent durations and an empty identity with a config error", () => {
    const client = clientFor();
    const base = { client, namespace: "kube-system", name: "l", identity: "x" };
    for (const bad of [
      { ...base, identity: "" },
      { ...base, leaseDurationMs: 1000, renewDeadlineMs: 1000 },
      { ...base, renewDeadlineMs: 1000, retryPeriodMs: 900 },
    ]) {
      let caught: unknown;
      try {
        createLeaderElector(bad);
      } catch (e) {
        caught = e;
      }
      expect(isKubeAdapterError(caught, KubeAdapterErrorCode.Config)).toBe(true);
    }
  });
});
