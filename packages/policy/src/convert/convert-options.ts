import type { PolicyError } from "../errors.js";

/** Options of the Kubernetes policy conversions. */
export interface ConvertOptions {
  /**
   * Told of each rule that cannot be converted (a malformed CIDR or port, an unsupported peer such as an
   * AdminNetworkPolicy `nodes` peer). As in Calico, the conversion never lets such a rule open traffic:
   * an Allow rule is dropped, a Deny or Pass rule becomes a Deny of everything, and the rest of the policy
   * is converted — so its targets stay isolated rather than the whole policy being lost. Default: ignore.
   */
  readonly onInvalidRule?: ((error: PolicyError) => void) | undefined;
}
