/**
 * The built margayctl against a real etcd (TLS with client certificates, from `startEtcd`): the config
 * file path (`--config`), golden transcripts of the resource verbs, a bad batch leaving etcd unchanged,
 * a memory → etcd migration (export, import under another key prefix, export again: the same objects),
 * and the one-line causes of a wrong CA and an unreachable endpoint.
 *
 * Needs the bundle (`npx lerna run build --scope @margay/margay`) and etcd (`apt-get install etcd-server`).
 */

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type EtcdServer, freePort, startEtcd } from "@margay/datastore/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { golden, normalise, requireBuiltBinary, runMargayctl, TESTDATA, transcript } from "./ctl-harness.js";

let etcd: EtcdServer;
let dir: string;
let cfg: string;

beforeAll(async () => {
  requireBuiltBinary();
  dir = mkdtempSync(join(tmpdir(), "margayctl-etcd-"));
  etcd = await startEtcd({ tls: "generate" });
  const pki = etcd.pki!;
  cfg = join(dir, "margayctl.cfg");
  writeFileSync(
    cfg,
    [
      "apiVersion: margay.io/v1",
      "kind: MargayctlConfig",
      "spec:",
      "  datastoreType: etcdv3",
      `  etcdEndpoints: ${etcd.endpoints.join(",")}`,
      `  etcdCACertFile: ${pki.ca.certFile}`,
      `  etcdCertFile: ${pki.client.certFile}`,
      `  etcdKeyFile: ${pki.client.keyFile}`,
      "",
    ].join("\n"),
  );
}, 120_000);

afterAll(async () => {
  await etcd?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

const ctl = (args: string[], env: Record<string, string> = {}) =>
  runMargayctl(["--config", cfg, ...args], { env, cwd: TESTDATA });

const ALL_KINDS =
  "ippool,ipamconfig,ipreservation,node,wep,hep,profile,tier,netpol,gnp,networkset,globalnetworkset,bgppeer,bgpconfig,agentconfig";

describe("margayctl (built binary, etcd with TLS)", () => {
  it("resource verbs over etcd match the golden transcript; a bad batch leaves etcd unchanged", async () => {
    const paths = { [dir]: "<tmp>", [etcd.endpoints[0]!]: "<etcd>" };
    const out: string[] = [];
    for (const args of [
      ["apply", "-f", "all-kinds.yaml"],
      ["apply", "-f", "all-kinds.yaml"],
      ["get", ALL_KINDS, "-A", "-o", "yaml"],
      ["create", "-f", "calico.yaml"],
      ["create", "-f", "calico.yaml"],
      ["patch", "ippool", "calico-pool", "-p", '{"spec":{"natOutgoing":false}}'],
      ["label", "gnp", "allow-dns", "team=net"],
      ["get", "pools,gnp", "-o", "wide"],
      ["delete", "-f", "calico.yaml"],
    ])
      out.push(transcript(await ctl(args), paths));
    const before = (await ctl(["datastore", "export"])).stdout;
    const bad = await ctl(["apply", "-f", "bad/invalid-second.yaml"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr.split("\n").filter(Boolean)).toHaveLength(1);
    out.push(transcript(bad, paths));
    expect((await ctl(["datastore", "export"])).stdout).toBe(before);
    const g = golden("etcd.golden.txt", out.join("\n"));
    expect(g.actual).toBe(g.expected);
  });

  it("migrates a memory snapshot into etcd (export, import, export: the same objects)", async () => {
    const snapshot = join(dir, "memory.json");
    const mem = { DATASTORE_TYPE: "memory", MARGAY_SNAPSHOT_PATH: snapshot };
    expect((await runMargayctl(["apply", "-f", "all-kinds.yaml"], { env: mem, cwd: TESTDATA })).code).toBe(0);
    const dump = join(dir, "dump.json");
    expect((await runMargayctl(["datastore", "export", "-o", dump], { env: mem })).code).toBe(0);
    // Another key prefix of the same etcd: an empty datastore.
    const imported = await ctl(["--etcd-prefix", "/migrated", "datastore", "import", "-f", dump]);
    expect(imported.stderr).toBe("");
    expect(imported.stdout).toBe("imported 16 objects into the etcd datastore\n");
    const fromEtcd = await ctl(["--etcd-prefix", "/migrated", "datastore", "export", "--format", "json"]);
    const fromMemory = await runMargayctl(["datastore", "export", "--format", "json"], { env: mem });
    const strip = (t: string) => JSON.parse(normalise(t).replace(/"source": "\w+"/, '"source": "x"'));
    expect(strip(fromEtcd.stdout)).toEqual(strip(fromMemory.stdout));
    // Importing again is refused: the target is not empty, and nothing changes.
    const again = await ctl(["--etcd-prefix", "/migrated", "datastore", "import", "-f", dump]);
    expect(again.code).toBe(3);
    expect(
      (await ctl(["--etcd-prefix", "/migrated", "datastore", "export", "--format", "json"])).stdout,
    ).toBe(fromEtcd.stdout);
  });

  it("a wrong CA and an unreachable endpoint fail with exit 1 and one line", async () => {
    const wrongCa = await ctl(["--etcd-ca-cert-file", etcd.pki!.otherCa.certFile, "get", "pools"]);
    expect(wrongCa.code).toBe(1);
    expect(wrongCa.stderr.split("\n").filter(Boolean)).toHaveLength(1);
    expect(wrongCa.stderr).toMatch(/^error: .*(certificate|TLS|tls)/i);
    const port = await freePort();
    const down = await runMargayctl(["get", "pools"], {
      env: { DATASTORE_TYPE: "etcdv3", ETCD_ENDPOINTS: `http://127.0.0.1:${port}` },
    });
    expect(down.code).toBe(1);
    expect(down.stderr.split("\n").filter(Boolean)).toHaveLength(1);
    expect(down.stderr).toMatch(/^error: /);
  });
});
