import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type PipeSocket, pipeBindings } from "./pipe-socket.js";

/** What one exchange produced: the bytes read, then how it ended. */
function exchange(sock: PipeSocket, request: string) {
  return new Promise<{ data: string; end: boolean; error?: string | undefined }>((resolve) => {
    const chunks: Buffer[] = [];
    sock.once("connect", () => sock.write(request));
    sock.on("data", (c) => chunks.push(c));
    sock.once("end", () => {
      sock.destroy();
      resolve({ data: Buffer.concat(chunks).toString("utf8"), end: true });
    });
    sock.once("error", (e) => resolve({ data: Buffer.concat(chunks).toString(), end: false, error: e.code }));
  });
}

describe("pipe-socket: the plugin's node:net", () => {
  let dir: string;
  let server: Server;
  let socket: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "margay-pipe-socket-"));
    socket = join(dir, "agent.sock");
    // Echoes the request back in many small writes, then closes (as the agent ends a reply).
    server = createServer((c) => {
      let got = "";
      c.on("data", (b) => {
        got += b;
        if (!got.endsWith("\n")) return;
        const reply = `${got}${"x".repeat(200_000)}`;
        for (let i = 0; i < reply.length; i += 4096) c.write(reply.slice(i, i + 4096));
        c.end();
      });
    });
    await new Promise<void>((r) => server.listen(socket, r));
    await writeFile(join(dir, "not-a-socket"), "");
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    await rm(dir, { recursive: true, force: true });
  });

  it("uses libuv's pipe handle on the Node majors it was tested on (20), node:net on any other", () => {
    if (process.versions.node.split(".")[0] === "20") expect(pipeBindings()).not.toBeNull();
    else expect(pipeBindings()).toBeNull();
  });

  for (const forceNet of [false, true]) {
    const path = forceNet ? "node:net" : "pipe handle";
    it(`${path}: writes the request and reads the whole reply to the end`, async () => {
      const r = await exchange(connect(socket, { forceNet }), "hello ü\n");
      expect(r.end).toBe(true);
      expect(r.data.length).toBe("hello ü\n".length + 200_000);
      expect(r.data.startsWith("hello ü\n")).toBe(true);
    });

    it(`${path}: no socket is ENOENT, a file that is not a listening socket ECONNREFUSED`, async () => {
      expect((await exchange(connect(join(dir, "missing.sock"), { forceNet }), "x\n")).error).toBe("ENOENT");
      expect((await exchange(connect(join(dir, "not-a-socket"), { forceNet }), "x\n")).error).toBe(
        "ECONNREFUSED",
      );
    });

    it(`${path}: destroyed before it connects, it emits nothing and keeps nothing open`, async () => {
      const sock = connect(socket, { forceNet });
      const events: string[] = [];
      sock.once("connect", () => events.push("connect"));
      sock.once("error", () => events.push("error"));
      sock.once("end", () => events.push("end"));
      sock.destroy();
      await new Promise((r) => setTimeout(r, 50));
      expect(events).toEqual([]);
    });
  }
});
