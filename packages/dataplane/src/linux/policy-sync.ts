import type { Logger } from "@margay/api";
import type { DataplaneSnapshot } from "../driver.js";
import { type DataplaneModel, POLICY_KIND_SET } from "../model.js";
import type { NetnsHandle } from "../kernel/netns.js";
import type { CommandRunner } from "../kernel/runner.js";
import { createNftProgrammer } from "../nft/programmer.js";
import {
  type NftRenderOptions,
  createNftRenderCache,
  renderRuleset,
  renderRulesetDelta,
} from "../nft/render.js";
import { applyPolicyUpdate, createPolicyState } from "../policy-state.js";
import { natPools, policySnapshot } from "../snapshot.js";
import { linkNames } from "./link-names.js";
import type { DataplaneUpdate } from "../stream.js";
import type { PolicyUpdate } from "@margay/dataplane-contract";

/** The policy half of the Linux driver: the model's policy state rendered into one nftables table. */
export interface PolicySync {
  /** Records a batch the model accepted: its policy updates are owed to the kernel from now on. */
  note(updates: readonly DataplaneUpdate[]): void;
  /**
   * Brings nftables to the model: a delta of what changed since the last accepted transaction, or the
   * whole table when `full` (or when a change touches everything). Then the batch counts as accepted.
   */
  program(full: boolean, signal: AbortSignal | undefined): Promise<void>;
  /** The policy fields of a snapshot: the last state the kernel accepted. */
  acceptedSnapshot(): Pick<DataplaneSnapshot, "ipSets" | "policies" | "endpoints" | "natPools">;
  /**
   * Workload-prefixed interfaces no accepted endpoint names, as of the last {@link checkUnclaimed}, less
   * those an accepted endpoint has named since.
   */
  readonly unclaimedInterfaces: readonly string[];
  /** Finds workload-prefixed interfaces no accepted endpoint names (their traffic is dropped); logs new ones. */
  checkUnclaimed(signal: AbortSignal | undefined): Promise<void>;
  /** Ends the long-lived `nft` process (the driver's close). */
  close(): void;
}

/** What {@link createPolicySync} needs from the driver. */
export interface PolicySyncDeps {
  readonly runner: CommandRunner;
  readonly ns: NetnsHandle;
  readonly model: DataplaneModel;
  readonly render: NftRenderOptions;
  /** `false`: keep the accounting, leave the kernel's packet filter to someone else. */
  readonly enabled: boolean;
  readonly log: Logger;
  /** Apply differences through one long-lived `nft -i` process (when the runner can keep one). Default `true`. */
  readonly persistentNft?: boolean | undefined;
}

/** Creates the policy half of the Linux driver. */
export function createPolicySync({
  runner,
  ns,
  model,
  render,
  enabled,
  log,
  persistentNft,
}: PolicySyncDeps): PolicySync {
  const nft = createNftProgrammer(runner, ns, render, { persistent: persistentNft });
  const renderCache = createNftRenderCache();
  // What the kernel accepted: the model's policy half lags behind it by the batches whose nftables
  // transaction was refused, so snapshots report the last good state rather than refused objects.
  const accepted = createPolicyState();
  let acceptedNatPools: string[] = [];
  let pendingPolicy: PolicyUpdate[] = [];
  // What changed since the last accepted transaction, so a small batch renders only its own pieces.
  // It accumulates across refused transactions: their changes are still owed to the kernel.
  let dirty = freshDirty();
  let acceptedRefVersion = -1;
  let unclaimed = new Set<string>();

  const commitPolicy = () => {
    for (const u of pendingPolicy) {
      applyPolicyUpdate(accepted, u);
      // An endpoint naming an unclaimed interface claims it now: no need to list the links again.
      if (u.kind === "workload-endpoint-update") unclaimed.delete(u.ifname);
    }
    pendingPolicy = [];
    acceptedNatPools = natPools(model.routes.pools);
    dirty = freshDirty();
    acceptedRefVersion = model.policy.refVersion;
  };

  const noteDirty = (u: DataplaneUpdate) => {
    switch (u.kind) {
      case "ip-set-update":
      case "ip-set-remove":
        dirty.ipSets.add(u.id);
        dirty.ipSetMembers.delete(u.id);
        dirty.wholeIpSets.add(u.id);
        return;
      case "ip-set-delta-update": {
        // Members a delta touched, so the render changes their elements alone (not after a whole update).
        dirty.ipSets.add(u.id);
        if (dirty.wholeIpSets.has(u.id)) return;
        let touched = dirty.ipSetMembers.get(u.id);
        if (touched === undefined) dirty.ipSetMembers.set(u.id, (touched = new Set()));
        for (const m of u.added) touched.add(m);
        for (const m of u.removed) touched.add(m);
        return;
      }
      case "active-policy-update":
      case "active-policy-remove":
        dirty.policies.add(u.id);
        return;
      case "active-profile-update":
      case "active-profile-remove":
        dirty.profiles.add(u.id);
        return;
      case "workload-endpoint-update":
      case "workload-endpoint-remove":
        dirty.workloads.add(u.id);
        return;
      case "host-endpoint-update":
      case "host-endpoint-remove":
      case "pool-update":
      case "pool-remove":
        dirty.all = true;
        return;
      default:
        return;
    }
  };

  return {
    note(updates) {
      for (const u of updates) {
        if (POLICY_KIND_SET.has(u.kind)) pendingPolicy.push(u as PolicyUpdate);
        noteDirty(u);
      }
    },
    async program(full, signal) {
      if (enabled) {
        const current = nft.current;
        const delta =
          !full && current !== undefined && !dirty.all && model.policy.refVersion === acceptedRefVersion
            ? renderRulesetDelta(
                current,
                (id) => accepted.workloads.get(id)?.ifname,
                model.policy,
                render,
                renderCache,
                dirty,
                { inPlace: true },
              )
            : undefined;
        if (delta !== undefined) await nft.applyDelta(delta.next, delta.text, { signal }, delta.undo);
        else {
          const pools = [...model.routes.pools.values()];
          await nft.apply(renderRuleset(model.policy, pools, render, renderCache), full, { signal });
        }
      }
      commitPolicy();
    },
    acceptedSnapshot() {
      return { ...policySnapshot(accepted), natPools: acceptedNatPools };
    },
    get unclaimedInterfaces() {
      return [...unclaimed].sort();
    },
    async checkUnclaimed(signal) {
      if (!enabled) return;
      const names = await linkNames(runner, ns, { signal });
      const claimed = new Set<string>();
      for (const w of accepted.workloads.values()) claimed.add(w.ifname);
      const now = new Set<string>();
      for (const ifname of names) {
        if (claimed.has(ifname) || !render.workloadPrefixes.some((p) => ifname.startsWith(p))) continue;
        now.add(ifname);
        if (!unclaimed.has(ifname))
          log.warn({ ifname }, "workload interface has no endpoint; its traffic is dropped");
      }
      unclaimed = now;
    },
    close() {
      nft.close();
    },
  };
}

function freshDirty() {
  return {
    ipSets: new Set<string>(),
    ipSetMembers: new Map<string, Set<string>>(),
    wholeIpSets: new Set<string>(),
    policies: new Set<string>(),
    profiles: new Set<string>(),
    workloads: new Set<string>(),
    all: false,
  };
}
