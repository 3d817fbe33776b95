/**
 * `@margay/bgp/fsm`: the RFC 4271 §8 session state machine as a pure step function with an injectable
 * clock, OPEN validation, capability negotiation and collision resolution.
 *
 * @packageDocumentation
 */
export type {
  ConnectionDirection,
  FsmAction,
  FsmConfig,
  FsmError,
  FsmEvent,
  FsmState,
  Negotiated,
  StepResult,
} from "./types.js";
export { SessionState, TransitionReason } from "./types.js";
export type { LocalCapabilityOptions, OpenAcceptance, OpenRejection } from "./negotiate.js";
export {
  AS_TRANS,
  buildOpen,
  CeaseSubcode,
  FsmSubcode,
  idToNumber,
  localCapabilities,
  negotiateOpen,
  NotifyCode,
  OpenSubcode,
  resolveCollision,
  splitFamily,
} from "./negotiate.js";
export { createFsm, nextDeadline, OPEN_HOLD_TIME, step } from "./step.js";
