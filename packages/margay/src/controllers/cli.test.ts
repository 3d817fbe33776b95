import { createRecordingLogger } from "@margay/api";
import { describe, expect, it } from "vitest";
import { KUBE_CONTROLLERS_EXIT_CODES, type KubeControllersCliIo, runKubeControllersCli } from "./cli.js";
import type { RunningKubeControllers } from "./run.js";

const env = { KUBECONFIG: "/k", ETCD_ENDPOINTS: "http://e:2379", POD_NAME: "kc-0" };

/** A fake run: `ready` and `done` under the test's control; counts stops. */
function fakeRun() {
  let failDone: (e: unknown) => void = () => {};
  let endDone: () => void = () => {};
  const done = new Promise<void>((resolve, reject) => {
    endDone = resolve;
    failDone = reject;
  });
  let stops = 0;
  const running = {
    ready: Promise.resolve(),
    done,
    stop: async () => {
      stops++;
      endDone();
    },
  } as unknown as RunningKubeControllers;
  return { running, failDone, stops: () => stops };
}

function io(extra: Partial<KubeControllersCliIo> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  let listener: ((s: "SIGTERM" | "SIGINT") => void) | undefined;
  const value: KubeControllersCliIo = {
    env,
    stdout: (s) => out.push(s),
    stderr: (s) => err.push(s),
    onSignal(l) {
      listener = l;
      return () => {
        listener = undefined;
      };
    },
    createLogger: () => createRecordingLogger(),
    ...extra,
  };
  return { io: value, out, err, signal: (s: "SIGTERM" | "SIGINT") => listener?.(s) };
}

const tick = () => new Promise((r) => setTimeout(r, 10));

describe("runKubeControllersCli", () => {
  it("SIGTERM stops the controllers and exits 0", async () => {
    const f = fakeRun();
    const t = io({ run: () => f.running });
    const code = runKubeControllersCli([], t.io);
    await tick();
    t.signal("SIGTERM");
    expect(await code).toBe(KUBE_CONTROLLERS_EXIT_CODES.ok);
    expect(f.stops()).toBe(1);
  });

  it("a lost Lease exits 1 (to restart as a candidate)", async () => {
    const f = fakeRun();
    const t = io({ run: () => f.running });
    const code = runKubeControllersCli(["run"], t.io);
    await tick();
    f.failDone(Object.assign(new Error("lost"), { code: "leadership-lost" }));
    expect(await code).toBe(KUBE_CONTROLLERS_EXIT_CODES.failure);
    expect(f.stops()).toBe(1);
  });

  it("a second signal during a stuck shutdown exits 143", async () => {
    const f = fakeRun();
    (f.running as { stop: () => Promise<void> }).stop = () => new Promise(() => {});
    const t = io({ run: () => f.running });
    const code = runKubeControllersCli([], t.io);
    await tick();
    t.signal("SIGTERM");
    t.signal("SIGINT");
    expect(await code).toBe(KUBE_CONTROLLERS_EXIT_CODES.forced);
  });

  it("startup failure exits 4; bad configuration 3 without starting; usage 2; config prints JSON", async () => {
    const f = fakeRun();
    (f.running as { ready: Promise<void> }).ready = Promise.reject(new Error("API server unreachable"));
    const t = io({ run: () => f.running });
    expect(await runKubeControllersCli([], t.io)).toBe(KUBE_CONTROLLERS_EXIT_CODES.startup);
    expect(t.err.join("")).toContain("could not start: API server unreachable");
    let started = false;
    const bad = io({
      env: { ...env, LOG_LEVEL: "loud" },
      run: () => {
        started = true;
        return f.running;
      },
    });
    expect(await runKubeControllersCli([], bad.io)).toBe(KUBE_CONTROLLERS_EXIT_CODES.config);
    expect(started).toBe(false);
    expect(bad.err.join("")).toContain("env:LOG_LEVEL");
    expect(await runKubeControllersCli(["bogus"], io().io)).toBe(KUBE_CONTROLLERS_EXIT_CODES.usage);
    const c = io();
    expect(await runKubeControllersCli(["config"], c.io)).toBe(0);
    expect(JSON.parse(c.out.join("")).leaderElection.identity).toBe("kc-0");
  });
});
