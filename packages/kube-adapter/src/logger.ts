/**
 * The logging seam is `@margay/api`'s pino-shaped {@link Logger}; these re-exports keep the names this
 * package exported before.
 *
 * @packageDocumentation
 */
export type { Logger } from "@margay/api";
export { silentLogger } from "@margay/api";
