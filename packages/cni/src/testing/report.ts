/**
 * The conformance report: one typed entry per scenario, printable as a table.
 *
 * @packageDocumentation
 */

/** The scenarios of the kit. */
export const ScenarioId = {
  Version: "version",
  AddCheckDel: "add-check-del",
  DelWithoutAdd: "del-without-add",
  DelTwice: "del-twice",
  DelAfterNetnsGone: "del-after-netns-gone",
  BadInput: "bad-input",
  ChainedPrevResult: "chained-prev-result",
  ConcurrentAdds: "concurrent-adds",
  Status: "status",
  Gc: "gc",
} as const;
/** Union of {@link ScenarioId} values. */
export type ScenarioId = (typeof ScenarioId)[keyof typeof ScenarioId];

/** Every scenario, in the order the kit runs them. */
export const ALL_SCENARIOS: readonly ScenarioId[] = Object.freeze(Object.values(ScenarioId));

/** Outcome of a scenario. */
export type ScenarioOutcome = "pass" | "fail" | "not-applicable";

/** Result of one scenario. */
export interface ScenarioReport {
  /** Which scenario. */
  id: ScenarioId;
  /** Outcome. */
  outcome: ScenarioOutcome;
  /** Why (for `pass`, what was verified). */
  reason: string;
  /** Wall time. */
  durationMs: number;
  /** Sub-results (e.g. one per bad input). */
  checks?: CheckReport[];
}

/** One check inside a scenario. */
export interface CheckReport {
  /** Name of the check. */
  name: string;
  /** Whether it held. */
  ok: boolean;
  /** `"should"`: a miss is reported but does not fail the scenario. Default `"must"`. */
  severity?: "must" | "should";
  /** What was observed. */
  observed: string;
}

/** The whole report. */
export interface ConformanceReport {
  /** Chain under test, e.g. `bridge → portmap`. */
  chain: string;
  /** Network name of the configuration. */
  network: string;
  /** The spec version the kit used (highest shared by kit and every plugin, within the list's versions). */
  testedVersion: string;
  /** VERSION output per plugin type. */
  supportedVersions: Record<string, string[]>;
  /**
   * Whether an allocations inspector checked addresses. When false, verdicts about released addresses
   * were not checked (only interfaces were) and the reasons say so.
   */
  allocationsChecked: boolean;
  /** Per-scenario results, in run order. */
  scenarios: ScenarioReport[];
  /** Counts. */
  summary: { pass: number; fail: number; notApplicable: number };
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + " ".repeat(n - s.length);
}

/** Renders a report as a fixed-width table (scenario, outcome, reason, time). */
export function formatReport(report: ConformanceReport): string {
  const rows = report.scenarios.map((s) => [
    s.id,
    s.outcome.toUpperCase(),
    s.reason,
    `${Math.round(s.durationMs)} ms`,
  ]);
  const head = ["scenario", "outcome", "reason", "time"];
  const widths = head.map((h, i) =>
    Math.min(i === 2 ? 90 : 40, Math.max(h.length, ...rows.map((r) => r[i]!.length))),
  );
  const line = (r: string[]) =>
    r
      .map((c, i) => pad(i === 2 && c.length > widths[i]! ? `${c.slice(0, widths[i]! - 1)}…` : c, widths[i]!))
      .join("  ");
  const out = [
    `CNI conformance: ${report.chain} (network ${report.network}, version ${report.testedVersion})`,
    report.allocationsChecked
      ? "addresses: checked by the allocations inspector"
      : "addresses: NOT checked (no allocations inspector: --inspect or --host-local-data-dir); interfaces only",
    line(head),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...rows.map(line),
  ];
  for (const s of report.scenarios) {
    for (const c of s.checks ?? []) {
      if (!c.ok)
        out.push(`  ${s.id} / ${c.name}${c.severity === "should" ? " (should)" : ""}: ${c.observed}`);
    }
  }
  out.push(
    `${report.summary.pass} pass, ${report.summary.fail} fail, ${report.summary.notApplicable} not applicable`,
  );
  return `${out.join("\n")}\n`;
}
