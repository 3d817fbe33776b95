import { describe, expect, it } from "vitest";
import { JsonLineFramer } from "./json-lines.js";

describe("JsonLineFramer", () => {
  it("returns complete lines only, across arbitrary chunk boundaries", () => {
    const text = '{"type":"ADDED","object":{"n":"é"}}\n{"type":"BOOKMARK"}\n\n{"type":"DELETED"}\n';
    const bytes = new TextEncoder().encode(text);
    for (let cut = 1; cut < bytes.length; cut++) {
      const f = new JsonLineFramer();
      const lines = [...f.push(bytes.slice(0, cut)), ...f.push(bytes.slice(cut))];
      expect(lines.map((l) => JSON.parse(l).type)).toEqual(["ADDED", "BOOKMARK", "DELETED"]);
      expect(f.buffered).toBe("");
    }
  });

  it("keeps a partial line buffered", () => {
    const f = new JsonLineFramer();
    expect(f.push(new TextEncoder().encode('{"type":"ADD'))).toEqual([]);
    expect(f.buffered).toBe('{"type":"ADD');
  });

  it("drops blank and whitespace-only lines and tolerates CRLF endings", () => {
    const f = new JsonLineFramer();
    const lines = f.push(new TextEncoder().encode('{"a":1}\r\n \r\n\t\n\n{"b":2}\n'));
    expect(lines.map((l) => JSON.parse(l))).toEqual([{ a: 1 }, { b: 2 }]);
  });
});
