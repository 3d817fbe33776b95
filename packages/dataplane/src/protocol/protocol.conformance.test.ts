import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { isDataplaneError } from "../errors.js";
import { createMemoryDataplane } from "../memory/memory-driver.js";
import { CONFORMANCE_FIXTURE, describeDataplaneConformance } from "../conformance/index.js";
import { type Envelope, createFrameDecoder, decodeEnvelope, encodeFrame } from "./codec.js";
import { connectDataplane, createRemoteDataplane, spawnDataplane } from "./remote.js";
import { serveDataplane } from "./serve.js";

const fixture = fileURLToPath(new URL("./child-fixture.ts", import.meta.url));
const repoRoot = fileURLToPath(new URL("../../../../", import.meta.url));

describeDataplaneConformance("memory driver, in process", async () => ({
  driver: createMemoryDataplane({ nodeName: CONFORMANCE_FIXTURE.nodeName }),
}));

describeDataplaneConformance("memory driver, child process over stdio", async () => ({
  driver: await spawnDataplane(
    [process.execPath, "--import", "tsx", fixture, "memory", CONFORMANCE_FIXTURE.nodeName],
    {
      cwd: repoRoot,
    },
  ),
}));

describeDataplaneConformance("memory driver, unix socket", async () => {
  const dir = await mkdtemp(join(tmpdir(), "mgdp-sock-"));
  const path = join(dir, "driver.sock");
  const server = createServer((socket) => {
    void serveDataplane(createMemoryDataplane({ nodeName: CONFORMANCE_FIXTURE.nodeName }), {
      input: socket,
      output: socket,
    })
      .catch(() => undefined)
      .finally(() => socket.end());
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    driver: await connectDataplane(path),
    cleanup: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe("protocol failures", () => {
  it("a child that dies turns later calls into retryable closed errors", async () => {
    const d = await spawnDataplane([process.execPath, "--import", "tsx", fixture, "memory", "node-a"], {
      cwd: repoRoot,
    });
    await d.apply([{ kind: "in-sync" }]);
    process.kill(d.pid!, "SIGKILL");
    await new Promise((r) => setTimeout(r, 200));
    const err = await d.apply([{ kind: "in-sync" }]).catch((e: unknown) => e);
    expect(isDataplaneError(err, "closed")).toBe(true);
    expect((err as { retryable: boolean }).retryable).toBe(true);
    await d.close();
  });

  it("a closed child rejects later calls with closed", async () => {
    const d = await spawnDataplane([process.execPath, "--import", "tsx", fixture, "memory", "node-a"], {
      cwd: repoRoot,
    });
    expect(d.peer).toMatchObject({ implementation: "fixture-memory", version: 1 });
    await d.apply([{ kind: "in-sync" }]);
    await d.close();
    const err = await d.apply([{ kind: "in-sync" }]).catch((e: unknown) => e);
    expect(isDataplaneError(err, "closed")).toBe(true);
  });

  it("garbage on the stream is a protocol error, not a hang", async () => {
    const input = new PassThrough();
    const output = new PassThrough();
    const remote = createRemoteDataplane({ input, output });
    // Answer the handshake with a frame whose body is not an Envelope.
    output.once("data", () => input.write(Buffer.from([0, 0, 0, 3, 0xff, 0xff, 0xff])));
    const err = await remote.catch((e: unknown) => e);
    expect(isDataplaneError(err, "protocol")).toBe(true);
  });

  it("a server answers malformed requests with an error frame and keeps serving", async () => {
    const input = new PassThrough();
    const output = new PassThrough();
    const served = serveDataplane(createMemoryDataplane({ nodeName: "node-a" }), { input, output });
    const decoder = createFrameDecoder();
    const replies: Envelope[] = [];
    output.on("data", (b: Buffer) => {
      for (const f of decoder.push(b)) replies.push(decodeEnvelope(f));
    });
    input.write(Buffer.from([0, 0, 0, 2, 0xff, 0xff]));
    input.write(encodeFrame({ id: 5, snapshot: {} }));
    input.end();
    await served;
    expect(replies[0]).toMatchObject({ id: 0, error: { code: "protocol" } });
    expect(replies[1]).toMatchObject({ id: 5, snapshotResult: { inSync: false } });
  });
});
