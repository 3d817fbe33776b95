/**
 * Leader election on a `coordination.k8s.io/v1` Lease with client-go's semantics
 * (`k8s.io/client-go/tools/leaderelection`): candidates try to acquire the Lease every `retryPeriod`
 * (with jitter); the holder renews it every `retryPeriod` and gives up leading when it could not renew for
 * `renewDeadline`; a standby takes the Lease over once it has seen the same record, unchanged, for the
 * record's `leaseDurationSeconds` by its own clock (so clock skew between replicas does not matter), or at once when the
 * holder released it (empty `holderIdentity`). Every write carries the Lease's `resourceVersion`, so of
 * two concurrent writers exactly one wins (the other gets 409 Conflict).
 *
 * Differences from client-go, on purpose: a leader that sees another holder with a valid lease stops
 * leading at once (client-go waits out `renewDeadline`); `onStoppedLeading` runs only after leading
 * (client-go also calls it when it never led); after losing the Lease the elector becomes a candidate
 * again instead of returning; a release happens after `onStoppedLeading` has settled, so a standby never
 * starts while this replica's work is still running.
 *
 * @packageDocumentation
 */

import { isKubeAdapterError, KubeAdapterError, KubeAdapterErrorCode } from "../errors.js";
import type { KubeLease } from "../kube-types.js";
import { type Logger, silentLogger } from "../logger.js";
import { KubeResources } from "../resources.js";
import type { KubeClient } from "../client/kube-client.js";

/** Options of {@link createLeaderElector}. */
export interface LeaderElectorOptions {
  /** Client of the API server holding the Lease. Required. */
  client: KubeClient;
  /** Namespace of the Lease. Required. */
  namespace: string;
  /** Name of the Lease. Required. */
  name: string;
  /** This candidate's identity (a pod name, unique among replicas). Required, non-empty. */
  identity: string;
  /** How long a Lease is valid after its last observed change, ms. Default 15 000. */
  leaseDurationMs?: number | undefined;
  /** How long the leader keeps retrying a failing renewal before it stops leading, ms. Default 10 000. */
  renewDeadlineMs?: number | undefined;
  /** Interval between acquire and renew attempts, ms. Default 2 000. */
  retryPeriodMs?: number | undefined;
  /**
   * Called when this candidate starts leading; `signal` aborts when it stops (lost, or stopped). Errors
   * (and rejections) are logged.
   */
  onStartedLeading?: ((signal: AbortSignal) => void | Promise<void>) | undefined;
  /** Called when this candidate stops leading (awaited before a release). Errors are logged. */
  onStoppedLeading?: (() => void | Promise<void>) | undefined;
  /** Called when the observed holder changes (this candidate included). */
  onNewLeader?: ((identity: string) => void) | undefined;
  /** Structured logger. Default silent. */
  logger?: Logger | undefined;
  /** Aborting stops the elector (as `stop({ release: releaseOnCancel })`). */
  signal?: AbortSignal | undefined;
  /** Whether an abort of `signal` releases the Lease. Default false (as client-go's `ReleaseOnCancel`). */
  releaseOnCancel?: boolean | undefined;
  /** Clock, ms (tests). Default `Date.now`. */
  now?: (() => number) | undefined;
}

/** A running candidate. */
export interface LeaderElector {
  /** Whether this candidate leads now. */
  readonly isLeader: boolean;
  /** The holder last observed (`undefined` when none, or before the first read). */
  readonly leader: string | undefined;
  /** Starts campaigning. Idempotent; does nothing after `stop()`. */
  start(): void;
  /**
   * Stops campaigning (and leading: `onStoppedLeading` is awaited). With `release`, a held Lease is
   * released (empty `holderIdentity`) so a standby takes over at its next retry.
   */
  stop(options?: { release?: boolean | undefined }): Promise<void>;
}

/** Defaults of {@link LeaderElectorOptions}, as client-go's and Calico kube-controllers'. */
export const LEADER_ELECTION_DEFAULTS = Object.freeze({
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
});

/** client-go's `JitterFactor`: acquire attempts wait retryPeriod × [1, 2.2). */
const JITTER_FACTOR = 1.2;

/** `metav1.MicroTime` in RFC 3339 with microseconds, as the API server writes it. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

interface Observed {
  rv: string;
  /** The spec as read, to see whether anything changed. */
  raw: string;
  holder: string;
  leaseDurationMs: number;
  /** Local time the record last changed. */
  time: number;
  lease: KubeLease;
}

class LeaderElectorImpl implements LeaderElector {
  private readonly client: KubeClient;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly logger: Logger;
  private readonly now: () => number;
  private observed: Observed | undefined;
  private leading: AbortController | undefined;
  private stopper: AbortController | undefined;
  private loop: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private lastReportedLeader: string | undefined;
  private readonly onOuterAbort = () => void this.stop({ release: this.options.releaseOnCancel ?? false });

  constructor(private readonly options: LeaderElectorOptions) {
    this.client = options.client;
    this.leaseDurationMs = options.leaseDurationMs ?? LEADER_ELECTION_DEFAULTS.leaseDurationMs;
    this.renewDeadlineMs = options.renewDeadlineMs ?? LEADER_ELECTION_DEFAULTS.renewDeadlineMs;
    this.retryPeriodMs = options.retryPeriodMs ?? LEADER_ELECTION_DEFAULTS.retryPeriodMs;
    this.now = options.now ?? Date.now;
    // No `component` binding: the caller names the component (a second one would duplicate the key).
    this.logger = (options.logger ?? silentLogger).child({
      lease: `${options.namespace}/${options.name}`,
      identity: options.identity,
    });
    const bad = (message: string) =>
      new KubeAdapterError(KubeAdapterErrorCode.Config, message, {
        details: { kind: "Lease", object: `${options.namespace}/${options.name}` },
      });
    if (typeof options.identity !== "string" || options.identity === "")
      throw bad("identity must not be empty");
    if (!options.namespace || !options.name) throw bad("namespace and name of the Lease are required");
    // client-go's own checks: the lease must outlive the renew deadline, which must allow a jittered retry.
    if (!(this.retryPeriodMs > 0)) throw bad("retryPeriodMs must be positive");
    if (!(this.leaseDurationMs > this.renewDeadlineMs))
      throw bad("leaseDurationMs must exceed renewDeadlineMs");
    if (!(this.renewDeadlineMs > JITTER_FACTOR * this.retryPeriodMs)) {
      throw bad(`renewDeadlineMs must exceed ${JITTER_FACTOR} × retryPeriodMs`);
    }
  }

  get isLeader(): boolean {
    return this.leading !== undefined;
  }

  get leader(): string | undefined {
    const h = this.observed?.holder;
    return h === undefined || h === "" ? undefined : h;
  }

  start(): void {
    // Once stopped, an elector stays stopped (make a new one to campaign again).
    if (this.loop !== undefined || this.stopping !== undefined) return;
    this.stopper = new AbortController();
    this.options.signal?.addEventListener("abort", this.onOuterAbort, { once: true });
    if (this.options.signal?.aborted) {
      this.loop = Promise.resolve();
      return;
    }
    this.loop = this.run(this.stopper.signal);
  }

  stop(options: { release?: boolean | undefined } = {}): Promise<void> {
    this.stopping ??= this.doStop(options.release === true);
    return this.stopping;
  }

  private async doStop(release: boolean): Promise<void> {
    this.options.signal?.removeEventListener("abort", this.onOuterAbort);
    this.stopper?.abort();
    await this.loop;
    const wasLeading = this.leading !== undefined;
    await this.stopLeading("stopped");
    if (release && wasLeading) await this.release();
  }

  private async run(stop: AbortSignal): Promise<void> {
    while (!stop.aborted) {
      // Candidate: try at once, then every retryPeriod × [1, 1 + JitterFactor).
      for (;;) {
        if (await this.tryAcquireOrRenew(stop, this.renewDeadlineMs)) break;
        if (!(await sleep(this.retryPeriodMs * (1 + Math.random() * JITTER_FACTOR), stop))) return;
      }
      if (stop.aborted) return;
      this.startLeading();
      // Leader: renew every retryPeriod; a renewal may retry until renewDeadline after it began.
      while (!stop.aborted) {
        if (!(await sleep(this.retryPeriodMs, stop))) return;
        const deadline = this.now() + this.renewDeadlineMs;
        let renewed = false;
        for (;;) {
          const left = deadline - this.now();
          if (left <= 0) break;
          renewed = await this.tryAcquireOrRenew(stop, left);
          if (renewed || stop.aborted || this.heldByOther()) break;
          if (!(await sleep(Math.min(this.retryPeriodMs, Math.max(0, deadline - this.now())), stop))) return;
        }
        if (stop.aborted) return;
        if (!renewed) {
          this.logger.warn(
            { holder: this.observed?.holder, renewDeadlineMs: this.renewDeadlineMs },
            "failed to renew lease: stopped leading",
          );
          await this.stopLeading("lost");
          break;
        }
      }
    }
  }

  private heldByOther(): boolean {
    const o = this.observed;
    return o !== undefined && o.holder !== "" && o.holder !== this.options.identity;
  }

  private startLeading(): void {
    const ac = new AbortController();
    this.leading = ac;
    this.logger.info({}, "started leading");
    try {
      const r = this.options.onStartedLeading?.(ac.signal);
      if (r instanceof Promise) {
        r.catch((error: unknown) => this.logger.error({ error }, "onStartedLeading failed"));
      }
    } catch (error) {
      this.logger.error({ error }, "onStartedLeading failed");
    }
  }

  private async stopLeading(why: "lost" | "stopped"): Promise<void> {
    const ac = this.leading;
    if (ac === undefined) return;
    this.leading = undefined;
    ac.abort(new KubeAdapterError(KubeAdapterErrorCode.Closed, `leadership ${why}`));
    this.logger.info({ why }, "stopped leading");
    try {
      await this.options.onStoppedLeading?.();
    } catch (error) {
      this.logger.error({ error }, "onStoppedLeading failed");
    }
  }

  private observe(lease: KubeLease): Observed {
    const spec = lease.spec ?? {};
    const raw = JSON.stringify([
      spec.holderIdentity ?? "",
      spec.leaseDurationSeconds ?? 0,
      spec.acquireTime ?? "",
      spec.renewTime ?? "",
      spec.leaseTransitions ?? 0,
    ]);
    const prev = this.observed;
    const o: Observed = {
      rv: lease.metadata.resourceVersion ?? "",
      raw,
      holder: spec.holderIdentity ?? "",
      leaseDurationMs: (spec.leaseDurationSeconds ?? 0) * 1000,
      time: prev !== undefined && prev.raw === raw ? prev.time : this.now(),
      lease,
    };
    this.observed = o;
    if (o.holder !== "" && o.holder !== this.lastReportedLeader) {
      this.lastReportedLeader = o.holder;
      this.logger.info({ holder: o.holder }, "new leader observed");
      try {
        this.options.onNewLeader?.(o.holder);
      } catch (error) {
        this.logger.error({ error }, "onNewLeader failed");
      }
    }
    return o;
  }

  /** client-go's `tryAcquireOrRenew`: one read and at most one write. */
  private async tryAcquireOrRenew(stop: AbortSignal, timeoutMs: number): Promise<boolean> {
    const signal = AbortSignal.any([stop, AbortSignal.timeout(Math.max(1, timeoutMs))]);
    const { namespace, name, identity } = this.options;
    const now = this.now();
    const spec = {
      holderIdentity: identity,
      leaseDurationSeconds: Math.max(1, Math.ceil(this.leaseDurationMs / 1000)),
      acquireTime: microTime(now),
      renewTime: microTime(now),
      leaseTransitions: 0,
    };
    try {
      const current = await this.client.get<KubeLease>(KubeResources.leases, namespace, name, { signal });
      if (current === undefined) {
        const created = await this.client.create<KubeLease>(
          KubeResources.leases,
          { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name, namespace }, spec },
          { signal },
        );
        this.observe(created);
        return true;
      }
      const o = this.observe(current);
      const amHolder = o.holder === identity;
      // As client-go: valid for the record's own leaseDurationSeconds after we saw it change.
      const validFor = o.leaseDurationMs > 0 ? o.leaseDurationMs : this.leaseDurationMs;
      if (o.holder !== "" && !amHolder && o.time + validFor > this.now()) {
        // Someone else holds a lease still valid by our clock.
        return false;
      }
      if (amHolder) {
        spec.acquireTime = current.spec?.acquireTime ?? spec.acquireTime;
        spec.leaseTransitions = current.spec?.leaseTransitions ?? 0;
      } else {
        spec.leaseTransitions = (current.spec?.leaseTransitions ?? 0) + 1;
      }
      const updated = await this.client.update<KubeLease>(
        KubeResources.leases,
        { ...current, spec: { ...current.spec, ...spec } },
        { signal },
      );
      this.observe(updated);
      return true;
    } catch (error) {
      if (stop.aborted) return false;
      const conflict = isKubeAdapterError(error, KubeAdapterErrorCode.Conflict);
      this.logger[conflict ? "debug" : "warn"]({ error }, "lease acquire/renew failed");
      return false;
    }
  }

  /** Clears `holderIdentity` if we still hold the Lease (a few tries on conflict). */
  private async release(): Promise<void> {
    const { namespace, name, identity } = this.options;
    for (let attempt = 0; attempt < 3; attempt++) {
      const signal = AbortSignal.timeout(this.renewDeadlineMs);
      try {
        const current = await this.client.get<KubeLease>(KubeResources.leases, namespace, name, { signal });
        if (current === undefined || current.spec?.holderIdentity !== identity) return;
        const now = microTime(this.now());
        const released = await this.client.update<KubeLease>(
          KubeResources.leases,
          {
            ...current,
            spec: {
              ...current.spec,
              holderIdentity: "",
              leaseDurationSeconds: 1,
              acquireTime: now,
              renewTime: now,
            },
          },
          { signal },
        );
        this.observe(released);
        this.logger.info({}, "released lease");
        return;
      } catch (error) {
        if (isKubeAdapterError(error, KubeAdapterErrorCode.Conflict)) continue;
        this.logger.warn({ error }, "lease release failed");
        return;
      }
    }
  }
}

/** Resolves true after `ms`, or false as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      resolve(ok);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Creates a candidate for leadership of the Lease `namespace/name` (not started: call `start()`).
 *
 * @throws {@link KubeAdapterError} `config` on an empty identity or inconsistent durations
 *   (client-go's rule: leaseDuration > renewDeadline > 1.2 × retryPeriod).
 */
export function createLeaderElector(options: LeaderElectorOptions): LeaderElector {
  return new LeaderElectorImpl(options);
}
