/**
 * The `etcd3` client the backend owns: per-endpoint circuit breakers, no blind global retry, bounded
 * watch reconnection back-off, and credentials handed over without ever becoming printable.
 */

import {
  circuitBreaker,
  ConsecutiveBreaker,
  ExponentialBackoff,
  handleWhen,
  type IBackoff,
  noop,
} from "cockatiel";
import { Etcd3, type IOptions, isRecoverableError } from "etcd3";
import { invalidError } from "../errors.js";
import { BACKEND, type CheckedEtcdOptions, hide } from "./etcd-options.js";
import { redactUrlCredentials } from "./tls-diagnosis.js";

/** Builds the client (no connection yet: `etcd3` dials on the first call). */
export function createEtcdClient(o: CheckedEtcdOptions): Etcd3 {
  const { log, requestTimeoutMs } = o;
  const clientOptions: IOptions = {
    hosts: [...o.endpoints],
    dialTimeout: o.dialTimeoutMs,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + requestTimeoutMs }),
    grpcOptions: { "grpc.max_receive_message_length": 256 * 1024 * 1024 },
    faultHandling: {
      // No blind global retry: re-sending a Txn whose reply was lost could apply it twice. A host whose
      // circuit is open is skipped before anything is sent, which is the safe kind of fail-over.
      global: noop,
      host: (host) => {
        const breaker = circuitBreaker(handleWhen(isRecoverableError), {
          halfOpenAfter: 1_000,
          breaker: new ConsecutiveBreaker(3),
        });
        breaker.onBreak(() => log.warn({ host }, "etcd endpoint unreachable; circuit open"));
        breaker.onReset(() => log.info({ host }, "etcd endpoint reachable; circuit closed"));
        return breaker;
      },
      // etcd3 types this as an IBackoff but uses it exactly as its own default, an ExponentialBackoff.
      watchBackoff: new ExponentialBackoff({
        initialDelay: 100,
        maxDelay: o.watchReconnectMaxDelayMs,
      }) as unknown as IBackoff<unknown>,
    },
  };
  if (o.tls !== undefined) {
    const { ca, cert, key } = o.tls;
    const credentials = { rootCertificate: ca ?? Buffer.alloc(0) } as NonNullable<IOptions["credentials"]>;
    if (ca === undefined) delete (credentials as { rootCertificate?: Buffer }).rootCertificate;
    if (cert !== undefined) credentials.certChain = cert;
    if (key !== undefined) hide(credentials, "privateKey", key);
    clientOptions.credentials = credentials;
  }
  if (o.username !== undefined) {
    clientOptions.auth = hide({ username: o.username }, "password", o.password) as {
      username: string;
      password: string;
    };
  }
  try {
    return new Etcd3(clientOptions);
  } catch (e) {
    // Whatever gRPC still refuses: an option problem, and a DatastoreError like every other failure.
    const why = e instanceof Error ? e.message : String(e);
    throw invalidError(`etcd client options refused: ${redactUrlCredentials(why)}`, { backend: BACKEND });
  }
}
