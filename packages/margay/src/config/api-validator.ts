/**
 * The `validate` hook every datastore the distribution opens gets (docs/architecture.md): objects of a
 * Margay API kind are checked by `@margay/api`'s validator before they are written; the IPAM's internal
 * kinds (blocks, affinities, handles, which share the store) are not API resources and pass through.
 *
 * @packageDocumentation
 */

import { isResourceKind, validateResource } from "@margay/api";

/** The shape a datastore hands to its `validate` option. */
export interface ValidatableObject {
  apiVersion?: string | undefined;
  kind: string;
  metadata: { name: string };
}

/**
 * Throws `@margay/api`'s `ValidationError` for an invalid API resource (the datastore turns it into
 * `invalid`); returns for a valid one and for kinds that are not API resources.
 */
export function apiValidator(object: ValidatableObject): void {
  if (!isResourceKind(object.kind)) return;
  validateResource(object);
}
