/**
 * The informers' back-off is `@margay/api`'s one back-off (exponential with ±jitter, as client-go's
 * `wait.Backoff`); these re-exports keep the names this package exported before.
 *
 * @packageDocumentation
 */
export type { Backoff, BackoffOptions } from "@margay/api";
export { createBackoff } from "@margay/api";
