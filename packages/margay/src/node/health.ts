/**
 * The health aggregator (Felix's health package): each part of the agent reports `{live, ready, reason}`
 * under its own name; `/livez` and `/readyz` read the conjunction, and a not-ready answer names which
 * part and why.
 *
 * @packageDocumentation
 */
import type { ComponentHealth, Health } from "./context.js";

/** A snapshot of the aggregate, as {@link Health.snapshot} returns it. */
export type HealthSnapshot = ReturnType<Health["snapshot"]>;

/** {@link Health} plus change notification (the status reporter rewrites NodeStatus on a change). */
export interface AgentHealth extends Health {
  /**
   * Calls `listener` after each report or removal that changed a component's health (same-value reports
   * are not changes). Returns an unsubscribe function.
   */
  onChange(listener: (snapshot: HealthSnapshot) => void): () => void;
  /** One line per component that is not live or not ready: `bgp: BGP peer 10.0.0.5: TCP 179 refused`. */
  problems(): string[];
}

function same(a: ComponentHealth | undefined, b: ComponentHealth): boolean {
  return a !== undefined && a.live === b.live && a.ready === b.ready && a.reason === b.reason;
}

/**
 * Creates an empty aggregator. With no component reported it is live and ready (nothing is wrong); the
 * composition root reports an `agent` component that stays not ready until startup completes, so a
 * starting agent is never ready by default.
 */
export function createHealth(): AgentHealth {
  const components = new Map<string, ComponentHealth>();
  const listeners = new Set<(snapshot: HealthSnapshot) => void>();

  const snapshot = (): HealthSnapshot => {
    let live = true;
    let ready = true;
    const out: Record<string, ComponentHealth> = {};
    for (const name of [...components.keys()].sort()) {
      const c = components.get(name) as ComponentHealth;
      live &&= c.live;
      ready &&= c.ready;
      out[name] = c;
    }
    return { live, ready, components: out };
  };

  const notify = () => {
    const s = snapshot();
    for (const l of [...listeners]) {
      try {
        l(s);
      } catch {
        // A listener's failure must not break the reporter that called report().
      }
    }
  };

  return {
    report(component, health) {
      const h: ComponentHealth = {
        live: health.live,
        // Not live implies not ready: a dead part cannot serve.
        ready: health.live && health.ready,
        ...(health.reason === undefined || health.reason === "" ? {} : { reason: health.reason }),
      };
      if (same(components.get(component), h)) return;
      components.set(component, Object.freeze(h));
      notify();
    },
    remove(component) {
      if (components.delete(component)) notify();
    },
    snapshot,
    onChange(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    problems() {
      const out: string[] = [];
      for (const [name, c] of Object.entries(snapshot().components)) {
        if (c.live && c.ready) continue;
        const what = c.live ? "not ready" : "not live";
        out.push(`${name}: ${c.reason ?? what}`);
      }
      return out;
    },
  };
}
