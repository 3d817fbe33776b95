/**
 * A throw-away public key infrastructure for TLS tests: a CA, a server certificate for the loopback
 * address, a client certificate, and a second CA with its own client certificate (for "wrong CA" and
 * "rejected client certificate" cases). Made with `openssl` (spawned with argument arrays) in a private
 * temp directory; keys are EC P-256 and certificates last one day.
 */

import { execFile } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A certificate and its key, as PEM data and as files. */
export interface TestKeyPair {
  /** PEM certificate. */
  readonly cert: Buffer;
  /** PEM private key of `cert`. */
  readonly key: Buffer;
  /** Path of the certificate file. */
  readonly certFile: string;
  /** Path of the key file (mode 0600). */
  readonly keyFile: string;
}

/** A CA certificate, as PEM data and as a file. */
export interface TestCa {
  /** PEM CA certificate. */
  readonly cert: Buffer;
  /** Path of the CA certificate file. */
  readonly certFile: string;
}

/** What {@link createTestPki} makes. */
export interface TestPki {
  /** The directory holding every file; removed by {@link TestPki.remove}. */
  readonly dir: string;
  /** The CA that signs `server` and `client`. */
  readonly ca: TestCa;
  /** Server certificate with subject alt names `IP:127.0.0.1` and `IP:::1` only (not `localhost`). */
  readonly server: TestKeyPair;
  /** Client certificate (CN `margay-client`) signed by `ca`. */
  readonly client: TestKeyPair;
  /** Another CA, unrelated to `ca`. */
  readonly otherCa: TestCa;
  /** Client certificate (CN `margay-client`) signed by `otherCa`: a server trusting `ca` rejects it. */
  readonly foreignClient: TestKeyPair;
  /** Deletes `dir`. Idempotent. */
  remove(): Promise<void>;
}

/** Options of {@link createTestPki}. */
export interface CreateTestPkiOptions {
  /** Directory in which the private temp directory is made. Default the OS temp dir. */
  baseDir?: string | undefined;
  /** The `openssl` binary. Default `/usr/bin/openssl`. */
  openssl?: string | undefined;
}

function run(file: string, args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    // A clean environment: openssl would otherwise pick up OPENSSL_CONF and friends of the caller.
    execFile(file, [...args], { env: {} }, (err, _o, stderr) => {
      if (err) reject(new Error(`${file} ${args[0] ?? ""} failed: ${String(stderr).trim() || err.message}`));
      else resolve();
    });
  });
}

/** Makes a throw-away CA, server and client certificates with `openssl`. */
export async function createTestPki(options: CreateTestPkiOptions = {}): Promise<TestPki> {
  const openssl = options.openssl ?? "/usr/bin/openssl";
  const dir = await mkdtemp(join(options.baseDir ?? tmpdir(), "margay-pki-"));
  const f = (n: string) => join(dir, n);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  try {
    const makeCa = async (name: string) => {
      await run(openssl, [
        "req",
        "-x509",
        ...ec,
        "-keyout",
        f(`${name}.key`),
        "-out",
        f(`${name}.crt`),
        "-days",
        "1",
        "-subj",
        `/CN=margay-test-${name}`,
      ]);
      return { cert: await readFile(f(`${name}.crt`)), certFile: f(`${name}.crt`) };
    };
    const makeLeaf = async (name: string, ca: string, cn: string, ext: string): Promise<TestKeyPair> => {
      await writeFile(f(`${name}.ext`), ext);
      await run(openssl, [
        "req",
        ...ec,
        "-keyout",
        f(`${name}.key`),
        "-out",
        f(`${name}.csr`),
        "-subj",
        `/CN=${cn}`,
      ]);
      await run(openssl, [
        "x509",
        "-req",
        "-in",
        f(`${name}.csr`),
        "-CA",
        f(`${ca}.crt`),
        "-CAkey",
        f(`${ca}.key`),
        "-CAcreateserial",
        "-out",
        f(`${name}.crt`),
        "-days",
        "1",
        "-extfile",
        f(`${name}.ext`),
      ]);
      await chmod(f(`${name}.key`), 0o600);
      return {
        cert: await readFile(f(`${name}.crt`)),
        key: await readFile(f(`${name}.key`)),
        certFile: f(`${name}.crt`),
        keyFile: f(`${name}.key`),
      };
    };
    const ca = await makeCa("ca");
    const otherCa = await makeCa("other-ca");
    const server = await makeLeaf(
      "server",
      "ca",
      "margay-etcd",
      "subjectAltName=IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\n",
    );
    const client = await makeLeaf("client", "ca", "margay-client", "extendedKeyUsage=clientAuth\n");
    const foreignClient = await makeLeaf(
      "foreign-client",
      "other-ca",
      "margay-client",
      "extendedKeyUsage=clientAuth\n",
    );
    let removed = false;
    return {
      dir,
      ca,
      server,
      client,
      otherCa,
      foreignClient,
      async remove() {
        if (removed) return;
        removed = true;
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}
