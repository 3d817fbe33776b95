/**
 * Why a connection to etcd failed, when gRPC will not say.
 *
 * `@grpc/grpc-js` reports every failed TLS handshake as `14 UNAVAILABLE: No connection established` with
 * no reason, which reads like an outage and invites endless retries. When a call fails that way, one TLS
 * handshake of our own against each endpoint, with the same CA, certificate and key, tells a configuration
 * error (wrong CA, names not matching, client certificate rejected, TLS against a plaintext port or the
 * reverse) from a server that is simply down.
 */

import { isIP } from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";

/** TLS material as the datastore holds it (PEM data). */
export interface DiagnosisTls {
  ca?: Buffer | undefined;
  cert?: Buffer | undefined;
  key?: Buffer | undefined;
}

/** A TLS misconfiguration found by {@link diagnoseEndpoint}. */
export interface TlsDiagnosis {
  /** `unknown-ca`, `hostname-mismatch`, `certificate-expired`, `client-certificate-rejected`, `protocol-mismatch` or `handshake`. */
  reason: string;
  /** What the handshake said, without any key material. */
  description: string;
  /** The endpoint, without credentials. */
  endpoint: string;
}

const UNKNOWN_CA = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_UNTRUSTED",
  "CERT_SIGNATURE_FAILURE",
]);

/** Replaces `user:password@` in URLs inside `text` with `***@`. */
export function redactUrlCredentials(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/gi, "$1***@");
}

function classify(err: NodeJS.ErrnoException): { reason: string; description: string } | undefined {
  const code = err.code ?? "";
  if (UNKNOWN_CA.has(code)) {
    return {
      reason: "unknown-ca",
      description: `server certificate is not signed by the configured CA (${code})`,
    };
  }
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") {
    return {
      reason: "hostname-mismatch",
      description: "server certificate does not name the endpoint's host (subject alt names)",
    };
  }
  if (code === "CERT_HAS_EXPIRED" || code === "CERT_NOT_YET_VALID") {
    return { reason: "certificate-expired", description: `server certificate is not valid now (${code})` };
  }
  if (
    /ALERT_(CERTIFICATE_REQUIRED|UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN|UNSUPPORTED_CERTIFICATE|CERTIFICATE_REVOKED|CERTIFICATE_EXPIRED|ACCESS_DENIED|DECRYPT_ERROR)/.test(
      code,
    )
  ) {
    return {
      reason: "client-certificate-rejected",
      description: `server rejected the client certificate, or required one (${code})`,
    };
  }
  if (code === "ERR_SSL_WRONG_VERSION_NUMBER" || code === "ERR_SSL_PACKET_LENGTH_TOO_LONG") {
    return { reason: "protocol-mismatch", description: `server does not speak TLS on this port (${code})` };
  }
  if (code.startsWith("ERR_SSL_") || code.startsWith("ERR_TLS_")) {
    return { reason: "handshake", description: `TLS handshake failed (${code})` };
  }
  return undefined; // refused, reset, timed out: an outage, not a configuration error
}

/**
 * One TLS handshake against `endpoint` with `tls`; resolves a diagnosis if TLS itself is the problem,
 * undefined if the handshake works or the server cannot be reached at all. Never rejects.
 */
export function diagnoseEndpoint(
  endpoint: string,
  tls: DiagnosisTls | undefined,
  timeoutMs: number,
): Promise<TlsDiagnosis | undefined> {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return Promise.resolve(undefined);
  }
  const secure = url.protocol === "https:";
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const port = Number(url.port || (secure ? 443 : 80));
  const shown = redactUrlCredentials(`${url.protocol}//${url.host}`);
  return new Promise((resolve) => {
    let socket: TLSSocket | undefined;
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const done = (d: TlsDiagnosis | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket?.destroy();
      resolve(d);
    };
    timer = setTimeout(() => done(undefined), timeoutMs);
    try {
      socket = tlsConnect({
        host,
        port,
        ...(isIP(host) === 0 ? { servername: host } : {}),
        ALPNProtocols: ["h2"],
        // Against an http:// endpoint the question is only whether the server speaks TLS at all.
        rejectUnauthorized: secure,
        ...(secure && tls?.ca !== undefined ? { ca: tls.ca } : {}),
        ...(secure && tls?.cert !== undefined ? { cert: tls.cert } : {}),
        ...(secure && tls?.key !== undefined ? { key: tls.key } : {}),
      });
    } catch {
      done(undefined);
      return;
    }
    socket.on("error", (err: NodeJS.ErrnoException) => {
      const c = secure ? classify(err) : undefined;
      done(c === undefined ? undefined : { ...c, endpoint: shown });
    });
    socket.on("data", () => undefined);
    socket.on("secureConnect", () => {
      if (!secure) {
        done({
          reason: "protocol-mismatch",
          description: "endpoint is http:// but the server speaks TLS (use https:// and a CA)",
          endpoint: shown,
        });
        return;
      }
      // With TLS 1.3 the server judges our certificate after the client considers the handshake done;
      // its alert, if any, arrives right after. Silence means TLS is fine.
      clearTimeout(timer);
      timer = setTimeout(() => done(undefined), Math.min(1_000, timeoutMs));
    });
  });
}
