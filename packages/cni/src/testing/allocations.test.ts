import { describe, expect, it } from "vitest";
import { commandAllocations, parseAllocations } from "./allocations.js";

describe("parseAllocations", () => {
  it("reads a JSON array, an {allocations} object or one address per line; drops prefix lengths", () => {
    expect(parseAllocations('["10.0.0.2", "fd00::2/64"]')).toEqual(["10.0.0.2", "fd00::2"]);
    expect(parseAllocations('{"network":"n","allocations":["10.0.0.3"]}')).toEqual(["10.0.0.3"]);
    expect(parseAllocations("10.0.0.4\n10.0.0.5/24\n\n")).toEqual(["10.0.0.4", "10.0.0.5"]);
    expect(parseAllocations("")).toEqual([]);
  });
  it("rejects anything that is not a list of addresses", () => {
    expect(() => parseAllocations('{"ips":[]}')).toThrow(/without an allocations array/);
    expect(() => parseAllocations("10.0.0.4\nhello")).toThrow(/not an IP address: "hello"/);
    expect(() => parseAllocations("[1]")).toThrow(/not an IP address/);
  });
});

describe("commandAllocations", () => {
  const node = (script: string) => [process.execPath, "-e", script];
  it("runs the command without a shell, feeding stdin, and parses its output", async () => {
    const read = commandAllocations(
      node('let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.stringify([s.trim()])))'),
      { stdin: "10.1.2.3" },
    );
    expect(await read()).toEqual(["10.1.2.3"]);
  });
  it("fails (never passes silently) on a non-zero exit, naming the command and its stderr", async () => {
    const read = commandAllocations(node('console.error("store locked");process.exit(3)'));
    await expect(read()).rejects.toThrow(/exited 3: store locked/);
  });
  it("fails on a command that cannot be started", async () => {
    await expect(commandAllocations(["/nonexistent/inspector"])()).rejects.toThrow(/ENOENT/);
    expect(() => commandAllocations([])).toThrow(/empty/);
  });
});
