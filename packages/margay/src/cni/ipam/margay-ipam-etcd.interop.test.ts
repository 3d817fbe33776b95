import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_PLUGIN_ENV } from "@margay/cni";
import { randomContainerId, rawExec } from "@margay/cni/testing";
import { createEtcdDatastore, type EtcdDatastoreOptions } from "@margay/datastore";
import { type EtcdServer, startEtcd } from "@margay/datastore/testing";
import { createIpam } from "@margay/ipam";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildMargayIpamBundle } from "./build-bundle.js";

// margay-ipam over a private etcd: the multi-host mode, where concurrency is etcd's compare-and-swap,
// not a lock file. The plugin is the one-file bundle, run as a process. Each test uses its own key prefix.

let dir: string;
let bin: string;
let etcd: EtcdServer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mgcni-ipam-etcd-"));
  [bin, etcd] = await Promise.all([buildMargayIpamBundle(join(dir, "margay-ipam")), startEtcd()]);
});
afterAll(async () => {
  await etcd?.stop();
  await rm(dir, { recursive: true, force: true });
});

type Out = { exitCode: number | null; stdout: string; stderr: string };

/** Every address allocated under `opts` (any node, any handle). */
async function allocated(opts: EtcdDatastoreOptions): Promise<string[]> {
  const ds = createEtcdDatastore(opts);
  const ipam = createIpam({ datastore: ds });
  try {
    return (await ipam.check([])).leaks.flatMap((l) => l.ips).sort();
  } finally {
    await ipam.close();
    await ds.close();
  }
}

function addressOf(o: Out): string {
  expect(o.exitCode, o.stdout + o.stderr).toBe(0);
  return (JSON.parse(o.stdout) as { ips: Array<{ address: string }> }).ips[0]!.address.split("/")[0]!;
}

function cniError(o: Out): { code: number; msg: string; details?: string } {
  expect(o.exitCode, o.stdout + o.stderr).toBe(1);
  return JSON.parse(o.stdout) as { code: number; msg: string; details?: string };
}

function harness(datastore: Record<string, unknown>, ipamExtra: Record<string, unknown> = {}) {
  const conf = (node: string, extra: Record<string, unknown> = {}) =>
    JSON.stringify({
      cniVersion: "1.1.0",
      name: "mg-etcd",
      type: "ptp",
      ipam: {
        type: "margay-ipam",
        datastore,
        node,
        pools: [{ cidr: "10.246.0.0/24", blockSize: 28 }],
        ...ipamExtra,
      },
      ...extra,
    });
  const exec = (
    command: string,
    node: string,
    id?: string,
    o: { args?: string; conf?: Record<string, unknown>; env?: Record<string, string>; valid?: string[] } = {},
  ) => {
    const env: Record<string, string> = {
      ...DEFAULT_PLUGIN_ENV,
      CNI_COMMAND: command,
      CNI_PATH: dir,
      ...o.env,
    };
    if (id !== undefined) {
      env.CNI_CONTAINERID = id;
      env.CNI_NETNS = "/proc/self/ns/net";
      env.CNI_IFNAME = "eth0";
    }
    if (o.args !== undefined) env.CNI_ARGS = o.args;
    const extra = { ...o.conf };
    if (o.valid !== undefined)
      extra["cni.dev/valid-attachments"] = o.valid.map((containerID) => ({ containerID, ifname: "eth0" }));
    // A hang guard only (the plugin's own deadlines are far below it), never a timing assertion.
    return rawExec(bin, env, conf(node, extra), { timeoutMs: 60_000 });
  };
  return { conf, exec };
}

const freshPrefix = () => `/mg-ipam-${randomBytes(4).toString("hex")}`;

describe("margay-ipam with the etcd datastore", () => {
  it("two nodes allocate concurrently without duplicates; DEL releases", async () => {
    const prefix = freshPrefix();
    const { exec } = harness({ type: "etcd", endpoints: etcd.endpoints, prefix });
    const ids = Array.from({ length: 8 }, () => randomContainerId());
    const outs = await Promise.all(ids.map((id, i) => exec("ADD", i % 2 === 0 ? "node-a" : "node-b", id)));
    const addrs = outs.map(addressOf);
    expect(new Set(addrs).size).toBe(8);
    expect(await allocated({ endpoints: etcd.endpoints, prefix })).toEqual([...addrs].sort());
    for (const [i, id] of ids.entries()) {
      const d = await exec("DEL", i % 2 === 0 ? "node-a" : "node-b", id);
      expect(d.exitCode, d.stdout).toBe(0);
    }
    expect(await allocated({ endpoints: etcd.endpoints, prefix })).toEqual([]);
    const status = await exec("STATUS", "node-a");
    expect(status.exitCode, status.stdout).toBe(0);
  });

  it("GC on a node frees only that node's leaks: never another node's live pods nor what it borrowed", async () => {
    const prefix = freshPrefix();
    const { exec } = harness({ type: "etcd", endpoints: etcd.endpoints, prefix }, { gcGracePeriodMs: 0 });
    const [a1, a2, b1, b2, b3] = Array.from({ length: 5 }, () => randomContainerId());
    const ipA1 = addressOf(await exec("ADD", "node-a", a1));
    const ipA2 = addressOf(await exec("ADD", "node-a", a2));
    const ipB1 = addressOf(await exec("ADD", "node-b", b1));
    const ipB2 = addressOf(await exec("ADD", "node-b", b2));
    // node-b borrows an address from node-a's block: the allocation records node-b, not the block's node.
    const last = Number(ipA1.split(".")[3]);
    const borrowed = `10.246.0.${last - (last % 16) + 12}`;
    expect(addressOf(await exec("ADD", "node-b", b3!, { args: `IP=${borrowed}` }))).toBe(borrowed);
    const all = [ipA1, ipA2, ipB1, ipB2, borrowed].sort();
    expect(await allocated({ endpoints: etcd.endpoints, prefix })).toEqual(all);

    // node-a's runtime knows only a1: GC there must free a2 and nothing of node-b.
    const gcA = await exec("GC", "node-a", undefined, { valid: [a1!] });
    expect(gcA.exitCode, gcA.stdout).toBe(0);
    expect(await allocated({ endpoints: etcd.endpoints, prefix })).toEqual(
      all.filter((ip) => ip !== ipA2).sort(),
    );
    // node-b's runtime knows only b1: its GC frees b2 and the borrowed b3, and keeps node-a's a1.
    const gcB = await exec("GC", "node-b", undefined, { valid: [b1!] });
    expect(gcB.exitCode, gcB.stdout).toBe(0);
    expect(await allocated({ endpoints: etcd.endpoints, prefix })).toEqual([ipA1, ipB1].sort());
  });

  it("an ADD racing a GC that does not list it yet survives (grace period, CAS re-check)", async () => {
    const prefix = freshPrefix();
    const { exec } = harness({ type: "etcd", endpoints: etcd.endpoints, prefix });
    for (let round = 0; round < 3; round++) {
      const ids = Array.from({ length: 4 }, () => randomContainerId());
      const [outs, gc] = await Promise.all([
        Promise.all(ids.map((id) => exec("ADD", "node-a", id))),
        // The runtime's GC lists no attachment: the ADDs are still in flight.
        Promise.all([
          exec("GC", "node-a", undefined, { valid: [] }),
          exec("GC", "node-a", undefined, { valid: [] }),
        ]),
      ]);
      for (const g of gc) expect(g.exitCode, g.stdout).toBe(0);
      const addrs = outs.map(addressOf);
      const after = await exec("GC", "node-a", undefined, { valid: [] });
      expect(after.exitCode, after.stdout).toBe(0);
      const held = await allocated({ endpoints: etcd.endpoints, prefix });
      for (const a of addrs) expect(held).toContain(a);
    }
  });

  it("honours requested addresses (IP=, runtimeConfig.ips) and pools, idempotently; never ignores them", async () => {
    const prefix = freshPrefix();
    const two = harness(
      { type: "etcd", endpoints: etcd.endpoints, prefix },
      {
        pools: [
          { name: "p-a", cidr: "10.246.0.0/24", blockSize: 28 },
          { name: "p-b", cidr: "10.247.0.0/24", blockSize: 28 },
        ],
      },
    );
    const [c1, c2, c3, c4, c5, c6] = Array.from({ length: 6 }, () => randomContainerId());
    // podman --ip: IP= in CNI_ARGS.
    expect(addressOf(await two.exec("ADD", "node-a", c1, { args: "IP=10.246.0.50" }))).toBe("10.246.0.50");
    // podman network reload resends IP=: the container keeps its address.
    expect(addressOf(await two.exec("ADD", "node-a", c1, { args: "IgnoreUnknown=1;IP=10.246.0.50" }))).toBe(
      "10.246.0.50",
    );
    // Another container asking for it is refused, and is left holding nothing.
    const taken = cniError(await two.exec("ADD", "node-a", c2, { args: "IP=10.246.0.50" }));
    expect(taken.code).toBe(140);
    expect(taken.details).toContain("already-allocated");
    // The `ips` capability (with the pool's prefix).
    const r3 = await two.exec("ADD", "node-a", c3, { conf: { runtimeConfig: { ips: ["10.247.0.60/24"] } } });
    expect(addressOf(r3)).toBe("10.247.0.60");
    // Requested pools: args.cni.pools and the ipRanges capability.
    expect(
      addressOf(await two.exec("ADD", "node-a", c4, { conf: { args: { cni: { pools: ["p-b"] } } } })),
    ).toMatch(/^10\.247\.0\./);
    const r5 = await two.exec("ADD", "node-a", c5, {
      conf: { runtimeConfig: { ipRanges: [[{ subnet: "10.247.0.0/24" }]] } },
    });
    expect(addressOf(r5)).toMatch(/^10\.247\.0\./);
    // Clear errors instead of silently ignoring the request.
    expect(cniError(await two.exec("ADD", "node-a", c6, { args: "IP=10.99.0.1" }))).toMatchObject({
      code: 140,
    });
    expect(cniError(await two.exec("ADD", "node-a", c6, { args: "IP=10.246.0.1" }))).toMatchObject({
      code: 140,
    });
    expect(cniError(await two.exec("ADD", "node-a", c6, { args: "IP=not-an-ip" }))).toMatchObject({
      code: 4,
    });
    expect(
      cniError(await two.exec("ADD", "node-a", c6, { conf: { args: { cni: { pools: ["nope"] } } } })),
    ).toMatchObject({ code: 7 });
    expect(
      cniError(
        await two.exec("ADD", "node-a", c6, {
          conf: { runtimeConfig: { ipRanges: [[{ subnet: "10.247.0.0/24", rangeStart: "10.247.0.9" }]] } },
        }),
      ),
    ).toMatchObject({ code: 7 });
    const held = await allocated({ endpoints: etcd.endpoints, prefix });
    expect(held).toContain("10.246.0.50");
    expect(held).toHaveLength(4); // c1, c3, c4, c5: nothing for c2 or c6
    for (const id of [c1, c3, c4, c5]) expect((await two.exec("DEL", "node-a", id)).exitCode).toBe(0);
    expect(await allocated({ endpoints: etcd.endpoints, prefix })).toEqual([]);
  });
});

describe("margay-ipam with a frozen etcd", () => {
  it("STATUS and DEL answer within their deadlines and name the endpoint", async () => {
    const frozen = await startEtcd();
    const { exec } = harness({ type: "etcd", endpoints: frozen.endpoints, prefix: freshPrefix() });
    const id = randomContainerId();
    try {
      addressOf(await exec("ADD", "node-a", id));
      process.kill(frozen.pid!, "SIGSTOP");
      const conf = JSON.stringify({
        cniVersion: "1.1.0",
        name: "mg-etcd",
        type: "ptp",
        ipam: {
          type: "margay-ipam",
          datastore: { type: "etcd", endpoints: frozen.endpoints },
          pools: [{ cidr: "10.246.0.0/24" }],
        },
      });
      // The guard is 20 s (the old behaviour took 31 s for STATUS); the documented deadlines are 3 s / 5 s.
      const t0 = performance.now();
      const status = await rawExec(
        bin,
        { ...DEFAULT_PLUGIN_ENV, CNI_COMMAND: "STATUS", CNI_PATH: dir },
        conf,
        { timeoutMs: 20_000 },
      );
      const statusMs = performance.now() - t0;
      const se = cniError(status);
      expect(se.code).toBe(50);
      expect(se.details).toContain(frozen.endpoints[0]!);
      const t1 = performance.now();
      const del = await rawExec(
        bin,
        {
          ...DEFAULT_PLUGIN_ENV,
          CNI_COMMAND: "DEL",
          CNI_PATH: dir,
          CNI_CONTAINERID: id,
          CNI_NETNS: "",
          CNI_IFNAME: "eth0",
        },
        conf,
        { timeoutMs: 20_000 },
      );
      const de = cniError(del);
      expect(de.code).toBe(11);
      expect(de.details).toContain(frozen.endpoints[0]!);
      console.info(
        `frozen etcd: STATUS answered in ${statusMs.toFixed(0)} ms, DEL in ${(performance.now() - t1).toFixed(0)} ms`,
      );
    } finally {
      if (frozen.pid !== undefined) process.kill(frozen.pid, "SIGCONT");
      await frozen.stop();
    }
  });
});

describe("margay-ipam with a TLS + RBAC etcd (client certificates, a prefix-restricted user)", () => {
  const ROOT_PW = `root-${randomBytes(6).toString("hex")}`;
  const USER_PW = `ipam-${randomBytes(6).toString("hex")}`;
  const PREFIX = "/mg-sec";
  let secured: EtcdServer;
  let pwFile: string;
  let wrongPwFile: string;
  let secrets: string[];

  beforeAll(async () => {
    secured = await startEtcd({
      tls: "generate",
      rbac: { rootPassword: ROOT_PW, users: [{ name: "ipam", password: USER_PW, prefix: `${PREFIX}/` }] },
    });
    pwFile = join(dir, "etcd-password");
    wrongPwFile = join(dir, "etcd-wrong-password");
    await writeFile(pwFile, `${USER_PW}\n`, { mode: 0o600 });
    await writeFile(wrongPwFile, "not-the-password\n", { mode: 0o600 });
    const pki = secured.pki!;
    // Lines of every private key, so that no fragment of key material can hide in an output.
    const keyLines = [pki.client.key, pki.foreignClient.key]
      .flatMap((k) => k.toString().split("\n"))
      .filter((l) => l.length > 20 && !l.startsWith("-----"));
    secrets = [ROOT_PW, USER_PW, ...keyLines];
  }, 120_000);
  afterAll(async () => {
    await secured?.stop();
  });

  const datastore = (o: Record<string, unknown> = {}) => ({
    type: "etcd",
    endpoints: secured.endpoints,
    prefix: PREFIX,
    caCertFile: secured.pki!.ca.certFile,
    certFile: secured.pki!.client.certFile,
    keyFile: secured.pki!.client.keyFile,
    username: "ipam",
    passwordFile: pwFile,
    ...o,
  });
  const clean = (o: Out) => {
    for (const s of secrets) {
      expect(o.stdout).not.toContain(s);
      expect(o.stderr).not.toContain(s);
    }
    return o;
  };

  it("ADD, CHECK-free round trip: ADD / STATUS / GC / DEL work over TLS with a password file", async () => {
    const { exec } = harness(datastore(), { gcGracePeriodMs: 0 });
    const [keep, leak] = [randomContainerId(), randomContainerId()];
    const ipKeep = addressOf(clean(await exec("ADD", "node-a", keep)));
    const ipLeak = addressOf(clean(await exec("ADD", "node-a", leak)));
    expect(ipKeep).not.toBe(ipLeak);
    expect(clean(await exec("STATUS", "node-a")).exitCode).toBe(0);
    expect(clean(await exec("GC", "node-a", undefined, { valid: [keep] })).exitCode).toBe(0);
    const opts: EtcdDatastoreOptions = {
      endpoints: secured.endpoints,
      prefix: PREFIX,
      tls: secured.clientTls!,
      username: "ipam",
      password: USER_PW,
    };
    expect(await allocated(opts)).toEqual([ipKeep]);
    expect(clean(await exec("DEL", "node-a", keep)).exitCode).toBe(0);
    expect(await allocated(opts)).toEqual([]);
  });

  it("takes Calico's ETCD_* variables where the configuration leaves fields out", async () => {
    const { exec } = harness({ type: "etcd", prefix: PREFIX });
    const env = {
      ETCD_ENDPOINTS: secured.endpoints.join(","),
      ETCD_CA_CERT_FILE: secured.pki!.ca.certFile,
      ETCD_CERT_FILE: secured.pki!.client.certFile,
      ETCD_KEY_FILE: secured.pki!.client.keyFile,
      ETCD_USERNAME: "ipam",
      ETCD_PASSWORD_FILE: pwFile,
    };
    const id = randomContainerId();
    addressOf(clean(await exec("ADD", "node-a", id, { env })));
    expect(clean(await exec("DEL", "node-a", id, { env })).exitCode).toBe(0);
    const noFile = cniError(
      clean(await exec("ADD", "node-a", id, { env: { ...env, ETCD_PASSWORD: USER_PW } })),
    );
    expect(noFile.code).toBe(7);
    expect(noFile.msg).toContain("ETCD_PASSWORD");
  });

  // Every misconfiguration is code 7 with the cause in details, for ADD, DEL and STATUS alike: a runtime
  // must not retry (11) what only an operator can fix.
  const misconfigs: Array<[string, () => Record<string, unknown>, RegExp]> = [
    ["wrong CA", () => datastore({ caCertFile: secured.pki!.otherCa.certFile }), /"code":"tls"/],
    [
      "client certificate of another CA",
      () =>
        datastore({
          certFile: secured.pki!.foreignClient.certFile,
          keyFile: secured.pki!.foreignClient.keyFile,
        }),
      /"code":"tls"/,
    ],
    ["wrong password", () => datastore({ passwordFile: wrongPwFile }), /"code":"unauthenticated"/],
    [
      "prefix outside the user's grant",
      () => datastore({ prefix: "/elsewhere" }),
      /"code":"permission-denied"/,
    ],
    ["missing key file", () => datastore({ keyFile: join(dir, "absent.key") }), /absent\.key/],
    ["a tls block", () => datastore({ tls: { ca: "x" } }), /tls: unknown field/],
  ];
  for (const [what, ds, cause] of misconfigs) {
    it(`${what} → code 7 naming the cause, no secret printed (ADD, DEL, STATUS)`, async () => {
      const { exec } = harness(ds());
      const id = randomContainerId();
      for (const verb of ["ADD", "DEL", "STATUS"] as const) {
        const e = cniError(clean(await exec(verb, "node-a", verb === "STATUS" ? undefined : id)));
        expect(e.code, `${verb}: ${JSON.stringify(e)}`).toBe(7);
        expect(`${e.msg} ${e.details ?? ""}`, verb).toMatch(cause);
      }
    });
  }
});
