/**
 * `@margay/dataplane`: the {@link DataplaneDriver} seam and its Linux implementation.
 *
 * @packageDocumentation
 */
export type {
  ApplyResult,
  DataplaneDriver,
  DataplaneSnapshot,
  DriverCallOptions,
  ProgrammedIpSet,
  ProgrammedVtep,
} from "./driver.js";
export { createSerialQueue } from "./driver.js";
export type { DataplaneErrorDetails, DataplaneErrorOptions } from "./errors.js";
export { DATAPLANE_ERROR_BRAND, DataplaneError, DataplaneErrorCode, isDataplaneError } from "./errors.js";
export type { DataplaneUpdate } from "./stream.js";
export type {
  HostRemove,
  HostUpdate,
  InSync,
  PoolRemove,
  PoolUpdate,
  RouteRemove,
  RouteSideUpdate,
  RouteUpdate,
  VtepRemove,
  VtepUpdate,
} from "./updates.js";
export { Encapsulation, ROUTE_SIDE_KINDS, RouteType } from "./updates.js";
export { DATAPLANE_DEFAULTS } from "./defaults.js";
export type { NetnsHandle } from "./kernel/netns.js";
export { CURRENT_NETNS, inNetns, ipArgv, namedNetns, pathNetns } from "./kernel/netns.js";
export {
  MAX_IFNAME_BYTES,
  isValidIfName,
  validateIfName,
  validateInterfaceName,
  validateNetnsName,
  validateNetnsPath,
} from "./kernel/names.js";
export type { CommandRunner, RunOptions, RunResult, RunningCommand } from "./kernel/runner.js";
export { createProcessRunner } from "./kernel/runner.js";
export type {
  NextHop,
  ProgrammedRoute,
  RoutePlan,
  RoutePlanOptions,
  RouteState,
  UnderlayPath,
  VtepFdb,
  VtepNeighbor,
  VxlanDeviceSpec,
} from "./routes/plan.js";
export { createRouteState, planRoutes } from "./routes/plan.js";
export type { RouteTableSpec } from "./routes/kernel-routes.js";
export type { KernelCallOptions } from "./kernel/iproute.js";
export {
  diffRoutes,
  listOwnedRoutes,
  renderRouteDelete,
  renderRouteReplace,
} from "./routes/kernel-routes.js";
export { probeIpip } from "./routes/vxlan.js";
export type { MemoryDataplaneOptions } from "./memory/memory-driver.js";
export { createMemoryDataplane } from "./memory/memory-driver.js";
export type { DataplaneLogger, LinuxDataplane, LinuxDataplaneOptions } from "./linux/linux-driver.js";
export { createLinuxDataplane } from "./linux/linux-driver.js";
export type {
  WorkloadPlumber,
  WorkloadPlumberOptions,
  WorkloadResult,
  WorkloadSpec,
} from "./workload/plumbing.js";
export {
  ENCAPSULATION_OVERHEAD,
  HOST_VETH_MAC,
  WORKLOAD_GATEWAY_V4,
  WORKLOAD_GATEWAY_V6,
  createWorkloadPlumber,
  workloadMtu,
} from "./workload/plumbing.js";
export type { BatchEffect, DataplaneModel } from "./model.js";
export { createDataplaneModel } from "./model.js";
export type { HeldIpSet, PolicyState } from "./policy-state.js";
export { createPolicyState } from "./policy-state.js";
export { POLICY_KINDS } from "./stream.js";
export type { LinuxNftablesOptions } from "./linux/linux-driver.js";
export type {
  NftDeltaOptions,
  NftDirty,
  NftMarks,
  NftRenderCache,
  NftRenderOptions,
  NftRuleset,
  NftRulesetDelta,
  NftSet,
} from "./nft/render.js";
export {
  NFT_MAPS,
  diffRuleset,
  renderFull,
  renderRule,
  renderRuleset,
  renderRulesetDelta,
} from "./nft/render.js";
export { nftNames } from "./nft/names.js";
export type { NftProgrammer, NftProgrammerOptions } from "./nft/programmer.js";
export { createNftProgrammer } from "./nft/programmer.js";
export type { ForeignChainFinding, NftHookPriority, OwnNftTable } from "./nft/foreign.js";
export {
  IPTABLES_LEGACY_OWNER,
  describeFinding,
  findLegacyIptablesDrops,
  findShadowingChains,
  margayHooks,
  readLegacyIptablesDrops,
  readShadowingChains,
} from "./nft/foreign.js";
export type { Envelope, FrameDecoder } from "./protocol/codec.js";
export {
  DEFAULT_MAX_FRAME_BYTES,
  PROTOCOL_VERSION,
  createFrameDecoder,
  decodeEnvelope,
  encodeFrame,
} from "./protocol/codec.js";
export { DATAPLANE_PROTO } from "@margay/dataplane-contract";
export type { ServeDataplaneOptions } from "./protocol/serve.js";
export { serveDataplane } from "./protocol/serve.js";
export type { RemoteDataplane, RemoteDataplaneOptions, SpawnDataplaneOptions } from "./protocol/remote.js";
export { connectDataplane, createRemoteDataplane, spawnDataplane } from "./protocol/remote.js";
export type { TeardownOptions } from "./linux/teardown.js";
export { teardownLinuxDataplane } from "./linux/teardown.js";
