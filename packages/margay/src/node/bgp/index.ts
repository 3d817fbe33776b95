/**
 * The node agent's BGP part: {@link startBgp} runs it, {@link deriveBgpPeers} is its pure configuration
 * derivation (Calico semantics).
 *
 * @packageDocumentation
 */
export type { BgpAgent, BgpPeerStatus, BgpSessionState, StartBgpOptions } from "./agent.js";
export { describePeerError, startBgp } from "./agent.js";
export type {
  BgpDerivation,
  BgpPeerScope,
  DeriveBgpPeersInput,
  DesiredBgpPeer,
  PrefixAdvertisementRule,
  UnsupportedBgpField,
} from "./derive.js";
export { bgpPeerId, DEFAULT_AS_NUMBER, DEFAULT_LISTEN_PORT, deriveBgpPeers } from "./derive.js";
