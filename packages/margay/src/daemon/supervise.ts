/**
 * The lifecycle the distribution's daemons (`margay-node`, `margay-kube-controllers`) share between their
 * command line and their work: start, log ready, stop on the first SIGTERM/SIGINT, exit at once on a
 * second, and map each ending to an exit code.
 *
 * @packageDocumentation
 */
import type { Logger } from "@margay/api";

/** A started daemon. */
export interface DaemonHandle {
  /** Resolves once the daemon is ready. */
  readonly ready: Promise<void>;
  /** Settles when the daemon ends on its own (rejects on failure). Absent: it only ends when stopped. */
  readonly done?: Promise<void> | undefined;
  /** Stops it; `reason` is the signal's name, or `startup-failed`. */
  stop(reason: string): Promise<void>;
}

/** The exit codes a supervised daemon ends with (margay-node's and margay-kube-controllers' share values). */
export interface DaemonExitCodes {
  readonly ok: number;
  readonly failure: number;
  readonly startup: number;
  readonly forced: number;
}

/** Options of {@link superviseDaemon}. */
export interface SuperviseOptions {
  /** The program's name in logs and on stderr. */
  readonly name: string;
  readonly logger: Logger;
  /** Subscribes to SIGTERM/SIGINT; returns the unsubscribe function. */
  readonly onSignal: (handler: (signal: string) => void) => () => void;
  readonly stderr: (text: string) => void;
  readonly codes: DaemonExitCodes;
  /** Starts the daemon. */
  readonly start: () => Promise<DaemonHandle> | DaemonHandle;
  /** Exit code of a start failure. Default `codes.startup`. */
  readonly startFailureCode?: ((error: unknown) => number) | undefined;
  /** Stop the daemon after it failed on its own (before exiting). Default false. */
  readonly stopAfterFailure?: boolean | undefined;
}

/** Runs a daemon until it ends or is stopped; resolves with the exit code. */
export async function superviseDaemon(options: SuperviseOptions): Promise<number> {
  const { name, logger, codes } = options;
  let daemon: DaemonHandle | undefined;
  let stopping: Promise<number> | undefined;
  let resolveStopped: (code: number) => void = () => {};
  const stopped = new Promise<number>((r) => {
    resolveStopped = r;
  });
  const unsubscribe = options.onSignal((signal) => {
    if (stopping !== undefined) {
      logger.warn({ signal }, "second signal during shutdown: exiting now");
      resolveStopped(codes.forced);
      return;
    }
    logger.info({ signal }, "stopping");
    stopping = (async () => {
      try {
        await daemon?.stop(signal);
        return codes.ok;
      } catch (e) {
        logger.error({ err: e }, "shutdown failed");
        return codes.failure;
      }
    })();
    void stopping.then(resolveStopped);
  });
  try {
    try {
      daemon = await options.start();
      if (stopping !== undefined) await daemon.stop("SIGTERM");
      await Promise.race([daemon.ready, stopped]);
    } catch (e) {
      if (stopping !== undefined) return await stopped;
      logger.error({ err: e, code: (e as { code?: unknown }).code }, `${name} could not start`);
      options.stderr(`${name}: could not start: ${(e as Error).message}\n`);
      await daemon?.stop("startup-failed").catch(() => {});
      return options.startFailureCode?.(e) ?? codes.startup;
    }
    if (stopping === undefined) logger.info({}, `${name} ready`);
    if (daemon.done === undefined) return await stopped;
    const running = daemon;
    const ended = running.done!.then(
      () => codes.ok,
      async (e: unknown) => {
        logger.error({ err: e }, `${name} failed`);
        if (options.stopAfterFailure === true) await running.stop("failed").catch(() => {});
        return codes.failure;
      },
    );
    return await Promise.race([ended, stopped]);
  } finally {
    unsubscribe();
  }
}
