/** Fenced code blocks of the READMEs and guides, for the tests that run or check them. */

export interface CodeBlock {
  /** The fence's info string: `ts`, `sh`, ... */
  lang: string;
  /** 1-based line of the opening fence. */
  line: number;
  code: string;
  /** The nearest non-blank line above the fence when it is an HTML comment, else undefined. */
  marker: string | undefined;
}

/** The fenced blocks of a Markdown text (``` fences only, as our READMEs and guides use). */
export function codeBlocks(markdown: string): CodeBlock[] {
  const lines = markdown.split("\n");
  const blocks: CodeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)/.exec(lines[i]!);
    if (!open) continue;
    let j = i + 1;
    while (j < lines.length && !lines[j]!.startsWith("```")) j++;
    let k = i - 1;
    while (k >= 0 && lines[k]!.trim() === "") k--;
    const above = k >= 0 ? lines[k]!.trim() : "";
    blocks.push({
      lang: open[1]!,
      line: i + 1,
      code: lines.slice(i + 1, j).join("\n"),
      marker: above.startsWith("<!--") ? above : undefined,
    });
    i = j;
  }
  return blocks;
}
