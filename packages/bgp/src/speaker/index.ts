export type { OriginateOptions, Speaker } from "./speaker.js";
export { createSpeaker } from "./speaker.js";
export type {
  BestPathEvent,
  BestRoute,
  MaxPrefixEvent,
  MessageCounters,
  PeerErrorInfo,
  PeerStateEvent,
  PeerStatus,
  SpeakerEvent,
} from "./events.js";
export type { Family, Logger, MaxPrefixOptions, PeerOptions, SpeakerOptions } from "./options.js";
export { SPEAKER_DEFAULTS } from "./options.js";
