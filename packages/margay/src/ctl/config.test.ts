import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveConfig } from "./config.js";
import { isCtlError } from "./errors.js";

let dir: string;
let file: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "margayctl-cfg-"));
  file = join(dir, "margayctl.cfg");
  writeFileSync(
    file,
    [
      "apiVersion: projectcalico.org/v3",
      "kind: CalicoAPIConfig",
      "spec:",
      "  datastoreType: etcdv3",
      "  etcdEndpoints: http://10.0.0.1:2379,http://10.0.0.2:2379",
      "  etcdPrefix: /from-file",
      "",
    ].join("\n"),
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function error(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(isCtlError(e, "invalid-config")).toBe(true);
    return (e as Error).message;
  }
  throw new Error("no error");
}

describe("margayctl configuration: flags > environment > config file > default", () => {
  it("defaults to etcd on localhost when nothing is configured (an empty config file)", () => {
    const r = resolveConfig({}, { MARGAYCTL_CONFIG: "/dev/null" });
    expect(r.datastore).toMatchObject({ type: "etcd", endpoints: ["http://127.0.0.1:2379"] });
    expect(r.sources).toMatchObject({ type: "default", endpoints: "default" });
  });

  it("reads a calicoctl-style config file", () => {
    const r = resolveConfig({ config: file }, {});
    expect(r.datastore).toMatchObject({
      type: "etcd",
      endpoints: ["http://10.0.0.1:2379", "http://10.0.0.2:2379"],
      prefix: "/from-file",
    });
    expect(r.sources.endpoints).toBe(`${file}: spec.etcdEndpoints`);
  });

  it("the environment wins over the file, a flag over both", () => {
    const env = { ETCD_ENDPOINTS: "http://10.9.9.9:2379" };
    expect(resolveConfig({ config: file }, env).datastore).toMatchObject({
      endpoints: ["http://10.9.9.9:2379"],
      prefix: "/from-file",
    });
    expect(
      resolveConfig({ config: file, etcdEndpoints: "http://10.8.8.8:2379" }, env).datastore,
    ).toMatchObject({ endpoints: ["http://10.8.8.8:2379"] });
  });

  it("a memory datastore from the environment ignores stray ETCD_* variables", () => {
    const r = resolveConfig(
      {},
      {
        MARGAYCTL_CONFIG: "/dev/null",
        DATASTORE_TYPE: "memory",
        MARGAY_SNAPSHOT_PATH: "/var/lib/margay/datastore.json",
        ETCD_ENDPOINTS: "http://10.0.0.1:2379",
      },
    );
    expect(r.datastore).toMatchObject({ type: "memory", snapshotPath: "/var/lib/margay/datastore.json" });
  });

  it("errors name the source of the bad value", () => {
    expect(error(() => resolveConfig({ config: file, etcdEndpoints: "ftp://x" }, {}))).toMatch(
      /^--etcd-endpoints: must be an http/,
    );
    expect(error(() => resolveConfig({ config: file }, { ETCD_CA_CERT_FILE: "relative/ca.crt" }))).toMatch(
      /^env:ETCD_CA_CERT_FILE: must be an absolute path/,
    );
    expect(error(() => resolveConfig({ config: join(dir, "missing.cfg") }, {}))).toMatch(
      /config file .*missing\.cfg: cannot read it \(ENOENT\)/,
    );
    expect(
      error(() => resolveConfig({ snapshotPath: "/x.json" }, { MARGAYCTL_CONFIG: "/dev/null" })),
    ).toMatch(/^--snapshot-path: does not apply to a etcd datastore/);
    expect(
      error(() => resolveConfig({ datastoreType: "memory" }, { MARGAYCTL_CONFIG: "/dev/null" })),
    ).toMatch(/needs its snapshot file/);
  });
});
