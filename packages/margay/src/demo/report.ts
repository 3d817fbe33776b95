/**
 * The demo's HTML report: one self-contained page (no scripts, no external assets) with the topology
 * (hosts, their BGP sessions and pods), each connectivity matrix as a coloured grid with the cells that
 * differ from the expected verdict outlined, and the policy explain trace. Pure: data in, HTML out.
 *
 * @packageDocumentation
 */
import type { DemoPhase, Matrix } from "./scenario.js";

/** A BGP session as the host's NodeStatus reports it. */
export interface ReportPeer {
  readonly address: string;
  readonly state: string;
  readonly routesImported?: number;
}

/** One host of the report. */
export interface ReportHost {
  readonly name: string;
  readonly address: string;
  readonly peers: readonly ReportPeer[];
  readonly pods: readonly { readonly id: string; readonly ip: string; readonly tier: string }[];
}

/** One step of the story. */
export type ReportStep =
  | {
      readonly kind: "matrix";
      readonly phase: DemoPhase;
      readonly title: string;
      readonly note: string;
      readonly expected: Matrix;
      readonly measured: Matrix;
      /** Cells changed since the previous matrix, `[row, column]`. */
      readonly highlight: readonly (readonly [number, number])[];
    }
  | { readonly kind: "explain"; readonly command: string; readonly text: string };

/** Everything the report shows. */
export interface DemoReport {
  readonly title: string;
  readonly generatedAt: string;
  readonly hosts: readonly ReportHost[];
  /** `margayctl ipam show --show-blocks` as printed. */
  readonly blocks: string;
  readonly steps: readonly ReportStep[];
  readonly timings: readonly { readonly step: string; readonly seconds: number }[];
  /** Measured cells that differed from the expected ones. */
  readonly failures: number;
}

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};
/** Escapes text for HTML content and attribute values. */
export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);

const CSS = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #1d2330; }
h1 { margin-bottom: 0; } .sub { color: #667; margin-top: .2em; }
.hosts { display: flex; gap: 1em; flex-wrap: wrap; }
.host { border: 2px solid #3b6ea8; border-radius: 8px; padding: .6em 1em; min-width: 18em; background: #f3f7fc; }
.host h3 { margin: 0 0 .3em; } .pod { display: inline-block; margin: .15em; padding: .15em .5em; border-radius: 4px; color: #fff; }
.tier-frontend { background: #2f80ed; } .tier-backend { background: #9b51e0; } .tier-database { background: #f2994a; }
.tier-quarantine { background: #828282; }
table.matrix { border-collapse: collapse; margin: .5em 0; }
table.matrix th, table.matrix td { border: 1px solid #ccd; padding: .3em .5em; text-align: center; }
table.matrix th.row { text-align: right; }
td.allow { background: #27ae60; color: #fff; } td.deny { background: #eb5757; color: #fff; } td.self { background: #e0e0e0; }
td.changed { box-shadow: inset 0 0 0 3px #f2c94c; } td.wrong { outline: 3px dashed #000; }
pre { background: #f6f6f6; padding: .8em; overflow-x: auto; border-radius: 6px; }
.ok { color: #1e7e34; font-weight: bold; } .bad { color: #c0392b; font-weight: bold; }
`;

function matrixTable(step: Extract<ReportStep, { kind: "matrix" }>): string {
  const m = step.measured;
  const head = m.pods.map((p) => `<th scope="col">${escapeHtml(p)}</th>`).join("");
  const rows = m.cells
    .map((row, i) => {
      const cells = row
        .map((c, j) => {
          const cls: string[] = [c];
          if (step.highlight.some(([a, b]) => a === i && b === j)) cls.push("changed");
          const want = step.expected.cells[i]?.[j];
          if (want !== c) cls.push("wrong");
          const text = c === "self" ? "·" : c === "allow" ? "✓" : "✗";
          const title = `${m.pods[i]} → ${m.pods[j]}: ${c}${want !== c ? ` (expected ${want})` : ""}`;
          return `<td class="${cls.join(" ")}" title="${escapeHtml(title)}">${text}</td>`;
        })
        .join("");
      return `<tr><th class="row" scope="row">${escapeHtml(m.pods[i]!)}</th>${cells}</tr>`;
    })
    .join("\n");
  return `<table class="matrix" data-phase="${escapeHtml(step.phase)}"><thead><tr><th>from \\ to</th>${head}</tr></thead><tbody>${rows}</tbody></table>`;
}

/** Renders the report as one HTML document. */
export function renderReport(r: DemoReport): string {
  const hosts = r.hosts
    .map(
      (h) => `<div class="host" data-host="${escapeHtml(h.name)}"><h3>${escapeHtml(h.name)}</h3>
<div>${escapeHtml(h.address)}</div>
<div>BGP: ${h.peers.map((p) => `<span class="peer">${escapeHtml(p.address)} ${escapeHtml(p.state)}</span>`).join(", ") || "no sessions"}</div>
<div>${h.pods.map((p) => `<span class="pod tier-${escapeHtml(p.tier)}" title="${escapeHtml(p.ip)}">${escapeHtml(p.id)}<br>${escapeHtml(p.ip)}</span>`).join("")}</div></div>`,
    )
    .join("\n");
  const sessions = new Set<string>();
  for (const h of r.hosts)
    for (const p of h.peers) {
      const other = r.hosts.find((o) => o.address.split("/")[0] === p.address)?.name ?? p.address;
      sessions.add(`${[h.name, other].sort().join(" ↔ ")}: ${p.state}`);
    }
  const steps = r.steps
    .map((s) =>
      s.kind === "matrix"
        ? `<section class="step"><h2>${escapeHtml(s.title)}</h2><p>${escapeHtml(s.note)}</p>${matrixTable(s)}</section>`
        : `<section class="step explain"><h2>Why is it denied?</h2><pre>$ ${escapeHtml(s.command)}\n${escapeHtml(s.text)}</pre></section>`,
    )
    .join("\n");
  const verdict =
    r.failures === 0
      ? `<p class="ok" id="verdict">Every measured cell is the expected one.</p>`
      : `<p class="bad" id="verdict">${r.failures} measured cell(s) differ from the expected ones (dashed outline).</p>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(r.title)}</title><style>${CSS}</style></head>
<body>
<h1>${escapeHtml(r.title)}</h1>
<p class="sub">Generated ${escapeHtml(r.generatedAt)}. Matrices: rows are sources, columns destinations; green ✓ a TCP
connection was made, red ✗ it was not; a yellow frame marks a cell that changed.</p>
${verdict}
<h2>Topology</h2>
<div class="hosts">${hosts}</div>
<h3>BGP sessions (full mesh)</h3>
<ul class="sessions">${[...sessions].map((s) => `<li>${escapeHtml(s)}</li>`).join("")}</ul>
<h3>IPAM blocks</h3>
<pre class="blocks">${escapeHtml(r.blocks)}</pre>
${steps}
<h2>Timings</h2>
<table class="timings">${r.timings.map((t) => `<tr><td>${escapeHtml(t.step)}</td><td>${t.seconds.toFixed(1)} s</td></tr>`).join("")}</table>
</body></html>
`;
}
