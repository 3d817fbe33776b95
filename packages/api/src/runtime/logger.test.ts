import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { createRecordingLogger, type Logger, silentLogger } from "./logger.js";

describe("Logger", () => {
  it("takes a pino logger and its children as they are (type and behaviour)", () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const p = pino({ level: "trace" }, sink);
    // The assignment is the type test: it fails `tsc` if pino's Logger stops fitting ours.
    const log: Logger = p;
    const child: Logger = log.child({ component: "datastore" });
    child.warn({ endpoint: "127.0.0.1:2379" }, "etcd reconnecting");
    child.info("plain message");
    child.trace({ n: 1 });
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records).toMatchObject([
      { level: 40, component: "datastore", endpoint: "127.0.0.1:2379", msg: "etcd reconnecting" },
      { level: 30, component: "datastore", msg: "plain message" },
      { level: 10, component: "datastore", n: 1 },
    ]);
  });

  it("silentLogger drops everything, children too", () => {
    expect(() => {
      silentLogger.error({ a: 1 }, "x");
      silentLogger.child({ b: 2 }).info("y");
    }).not.toThrow();
    expect(silentLogger.child({})).toBe(silentLogger);
  });

  it("the recording logger keeps records of itself and its children with merged bindings", () => {
    const log = createRecordingLogger();
    log
      .child({ component: "dataplane" })
      .child({ ifname: "mg1" })
      .warn({ reason: "x" }, "interface failed closed");
    log.info("started");
    expect(log.records).toEqual([
      {
        level: "warn",
        message: "interface failed closed",
        attributes: { component: "dataplane", ifname: "mg1", reason: "x" },
      },
      { level: "info", message: "started", attributes: {} },
    ]);
    expect(log.find({ level: "warn" })).toHaveLength(1);
    expect(log.find({ message: "started" })).toHaveLength(1);
    log.clear();
    expect(log.records).toEqual([]);
  });
});
