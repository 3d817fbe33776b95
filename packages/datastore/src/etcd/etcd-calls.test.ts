import { createServer, type Socket } from "node:net";
import { silentLogger, sleep } from "@margay/api";
import { afterEach, describe, expect, it } from "vitest";
import { EtcdCalls } from "./etcd-calls.js";

/** What grpc-js reports for every failed connection, TLS or not. */
const noConnection = () => new Error("14 UNAVAILABLE: No connection established");

describe("EtcdCalls TLS diagnosis", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /** A loopback server that accepts and never answers: each diagnosis handshake waits for its timeout. */
  async function silentServer() {
    const sockets = new Set<Socket>();
    let accepted = 0;
    const srv = createServer((s) => {
      accepted++;
      sockets.add(s);
      s.on("error", () => undefined);
      s.on("close", () => sockets.delete(s));
    });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    cleanups.push(async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => srv.close(() => r()));
    });
    const addr = srv.address();
    const port = typeof addr === "object" && addr !== null ? addr.port : 0;
    return {
      endpoint: `https://127.0.0.1:${port}`,
      get accepted() {
        return accepted;
      },
    };
  }

  it("runs one handshake per endpoint at a time, shared by calls failing while it runs and a second after", async () => {
    const server = await silentServer();
    const calls = new EtcdCalls({
      endpoints: [server.endpoint],
      tls: undefined,
      diagnoseTimeoutMs: 1_500,
      readAttempts: 1,
      log: silentLogger,
      isClosed: () => false,
    });
    const first = calls.classify(noConnection(), {});
    // Past the one-second reuse window, the first handshake still waits for its timeout.
    await sleep(1_100);
    const second = calls.classify(noConnection(), {});
    expect((await first).code).toBe("unavailable");
    expect((await second).code).toBe("unavailable");
    expect(server.accepted).toBe(1);
    // Settled just now: reused.
    await calls.classify(noConnection(), {});
    expect(server.accepted).toBe(1);
    // A second after it settled, a failure is diagnosed afresh.
    await sleep(1_100);
    expect((await calls.classify(noConnection(), {})).code).toBe("unavailable");
    expect(server.accepted).toBe(2);
  });
});
