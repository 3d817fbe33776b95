import { mkdtemp, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isCniError } from "@margay/cni";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { acquireFileLock, processIdentity } from "./file-lock.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mgcni-lock-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("acquireFileLock", () => {
  it("is exclusive: a second holder waits for the first release", async () => {
    const path = join(dir, "a.lock");
    const first = await acquireFileLock(path);
    expect(await readFile(path, "utf8")).toBe(processIdentity(process.pid));
    let got = false;
    const second = acquireFileLock(path).then((l) => {
      got = true;
      return l;
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(got).toBe(false);
    await first.release();
    const l2 = await second;
    expect(got).toBe(true);
    await l2.release();
    await expect(stat(path)).rejects.toThrow();
  });

  it("gives up with code 11 when the owner is alive", async () => {
    const path = join(dir, "b.lock");
    const held = await acquireFileLock(path);
    const e = await acquireFileLock(path, { timeoutMs: 100 }).catch((x) => x);
    expect(isCniError(e, 11) && e.retryable).toBe(true);
    await held.release();
  });

  it("breaks the lock of a dead owner and of a reused pid", async () => {
    const path = join(dir, "c.lock");
    await writeFile(path, "4194303 12345");
    const l = await acquireFileLock(path, { timeoutMs: 1000 });
    await l.release();
    const [pid] = processIdentity(process.pid)!.split(" ");
    await writeFile(path, `${pid} 1`); // our pid, another start time: a reused pid
    const l2 = await acquireFileLock(path, { timeoutMs: 1000 });
    await l2.release();
  });

  it("breaks an empty lock file only once it is old, and a leftover break file", async () => {
    const path = join(dir, "d.lock");
    await writeFile(path, "");
    await expect(acquireFileLock(path, { timeoutMs: 100 })).rejects.toSatisfy((e) => isCniError(e, 11));
    const old = new Date(Date.now() - 10_000);
    await utimes(path, old, old);
    await writeFile(`${path}.break`, "4194303 1");
    await utimes(`${path}.break`, old, old);
    const l = await acquireFileLock(path, { timeoutMs: 1000 });
    await l.release();
    await expect(stat(`${path}.break`)).rejects.toThrow();
  });
});
