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
export type {
  Family,
  LogAttributes,
  LogFn,
  Logger,
  MaxPrefixOptions,
  PeerOptions,
  SpeakerOptions,
} from "./options.js";
export { SPEAKER_DEFAULTS, silentLogger } from "./options.js";
