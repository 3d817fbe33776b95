import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { CtlIo } from "./io.js";
import { PLAIN } from "./output.js";
import { PROGRESS_DELAY_MS, startProgress } from "./progress.js";

function fakeIo(isTTY: boolean) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CtlIo = {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    readStdin: async () => "",
    env: {},
    isTTY,
    style: PLAIN,
    cwd: "/",
  };
  return { io, out, err };
}

describe("progress line", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("on a terminal: appears after a moment, is erased before output and at the end", () => {
    const { io, out, err } = fakeIo(true);
    let t = 0;
    const p = startProgress(io, "ipam check", () => t);
    vi.advanceTimersByTime(PROGRESS_DELAY_MS - 1);
    expect(err).toEqual([]);
    t = 2_000;
    vi.advanceTimersByTime(1);
    expect(err.at(-1)).toMatch(/ipam check 2s$/);
    p.io.out("result\n");
    expect(err.at(-1)).toBe("\r\x1b[K");
    expect(out).toEqual(["result\n"]);
    vi.advanceTimersByTime(300);
    expect(err.at(-1)).toMatch(/ipam check/);
    p.stop();
    expect(err.at(-1)).toBe("\r\x1b[K");
    const n = err.length;
    vi.advanceTimersByTime(5_000);
    expect(err.length).toBe(n);
  });

  it("a quick command shows nothing", () => {
    const { io, err } = fakeIo(true);
    const p = startProgress(io, "get");
    p.io.out("x\n");
    p.stop();
    vi.advanceTimersByTime(5_000);
    expect(err).toEqual([]);
  });

  it("off a terminal: never writes, output passes through unchanged", () => {
    const { io, out, err } = fakeIo(false);
    const p = startProgress(io, "ipam check");
    vi.advanceTimersByTime(10_000);
    p.io.out("a\n");
    p.stop();
    expect(err).toEqual([]);
    expect(out).toEqual(["a\n"]);
  });
});
