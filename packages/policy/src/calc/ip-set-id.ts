import { createHash } from "node:crypto";
import type { Selector } from "@margay/api";
import { protocolName } from "../model/protocol.js";

/** The IP set id of a selector: the selector's own stable id (`s:...`, as Calico's). */
export function selectorIpSetId(selector: Selector): string {
  return selector.id;
}

const namedCache = new Map<string, string>();

/** The IP set id of a named port on the endpoints a selector matches: `n:` + base64url SHA-224. */
export function namedPortIpSetId(selector: Selector, protocol: number, portName: string): string {
  const text = `${selector.canonical}|${protocolName(protocol)}|${portName}`;
  let id = namedCache.get(text);
  if (id === undefined) {
    id = `n:${createHash("sha224").update(text, "utf8").digest("base64url")}`;
    if (namedCache.size > 50_000) namedCache.clear();
    namedCache.set(text, id);
  }
  return id;
}
