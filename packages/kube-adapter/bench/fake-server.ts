/** Starts the fake API server on a worker thread (see fake-server-worker.ts) and talks to it. */
import { Worker } from "node:worker_threads";
import type { WorkerCommand } from "./fake-server-worker.js";

type Cmd = WorkerCommand extends infer C ? (C extends { id: number } ? Omit<C, "id"> : never) : never;

export interface FakeServerHandle {
  readonly url: string;
  call<T = unknown>(cmd: Cmd): Promise<T>;
  state(): Promise<{ resourceVersion: string; injectedFailures: number }>;
  close(): Promise<void>;
}

export async function startFakeServerThread(workerData: object): Promise<FakeServerHandle> {
  const entry = new URL("./fake-server-worker.ts", import.meta.url).href;
  // An eval'd bootstrap registers tsx in the worker, then loads the TypeScript entry.
  const worker = new Worker(
    `import("tsx/esm/api").then(({ register }) => { register(); return import(${JSON.stringify(entry)}); });`,
    { eval: true, workerData },
  );
  const pending = new Map<number, (v: unknown) => void>();
  let nextId = 1;
  const ready = new Promise<string>((res) => pending.set(0, (v) => res(v as string)));
  worker.on("message", (m: { id: number; result: unknown }) => {
    pending.get(m.id)?.(m.result);
    pending.delete(m.id);
  });
  const call = <T = unknown>(cmd: Cmd): Promise<T> => {
    const id = nextId++;
    return new Promise<T>((res) => {
      pending.set(id, (v) => res(v as T));
      worker.postMessage({ ...cmd, id });
    });
  };
  const url = await ready;
  return {
    url,
    call,
    state: () => call<{ resourceVersion: string; injectedFailures: number }>({ op: "state" }),
    close: async () => {
      await call({ op: "close" });
      await worker.terminate();
    },
  };
}
