/**
 * Opens a report in headless Chromium (Debian's `chromium`) and reads back what it rendered: the DOM after
 * layout (`--dump-dom`) and a PNG screenshot, decoded here so a test can tell a blank page from a drawn one.
 *
 * @packageDocumentation
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { inflateSync } from "node:zlib";

/** What Chromium rendered. */
export interface RenderedPage {
  readonly dom: string;
  readonly png: Buffer;
}

function chromium(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      "chromium",
      ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage", ...args],
      { timeout: 90_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) =>
        err ? reject(new Error(`chromium: ${stderr || err.message}`)) : resolve(stdout),
    );
  });
}

/** Renders `htmlFile` in headless Chromium: its DOM and a `width`×`height` screenshot. */
export async function renderInChromium(htmlFile: string, width = 1280, height = 1600): Promise<RenderedPage> {
  const dir = await mkdtemp(join(tmpdir(), "margay-chromium-"));
  try {
    const url = pathToFileURL(htmlFile).href;
    const profile = [`--user-data-dir=${join(dir, "profile")}`];
    const dom = await chromium([...profile, "--dump-dom", url]);
    const shot = join(dir, "shot.png");
    await chromium([...profile, `--screenshot=${shot}`, `--window-size=${width},${height}`, url]);
    return { dom, png: await readFile(shot) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Pixel statistics of an 8-bit RGB/RGBA PNG: how many distinct colours, and the share of non-white pixels. */
export function pngStats(png: Buffer): { width: number; height: number; colours: number; inkShare: number } {
  if (png.subarray(1, 4).toString("latin1") !== "PNG") throw new Error("not a PNG");
  let off = 8;
  let width = 0;
  let height = 0;
  let colourType = 0;
  const idat: Buffer[] = [];
  while (off < png.length) {
    const len = png.readUInt32BE(off);
    const type = png.subarray(off + 4, off + 8).toString("latin1");
    const data = png.subarray(off + 8, off + 8 + len);
    if (type === "IHDR") {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      if (data[8] !== 8 || data[12] !== 0) throw new Error("only 8-bit non-interlaced PNGs");
      colourType = data[9]!;
    } else if (type === "IDAT") idat.push(data);
    off += 12 + len;
  }
  const bpp = colourType === 6 ? 4 : colourType === 2 ? 3 : 0;
  if (bpp === 0) throw new Error(`PNG colour type ${colourType} not handled`);
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * bpp;
  const cur = Buffer.alloc(stride);
  const prev = Buffer.alloc(stride);
  const colours = new Set<number>();
  let ink = 0;
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? cur[x - bpp]! : 0;
      const b = prev[x]!;
      const c = x >= bpp ? prev[x - bpp]! : 0;
      let p = 0;
      if (filter === 1) p = a;
      else if (filter === 2) p = b;
      else if (filter === 3) p = (a + b) >> 1;
      else if (filter === 4) {
        const q = a + b - c;
        const pa = Math.abs(q - a);
        const pb = Math.abs(q - b);
        const pc = Math.abs(q - c);
        p = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      cur[x] = (line[x]! + p) & 0xff;
    }
    for (let x = 0; x < stride; x += bpp) {
      const rgb = (cur[x]! << 16) | (cur[x + 1]! << 8) | cur[x + 2]!;
      colours.add(rgb);
      if (rgb !== 0xffffff) ink += 1;
    }
    cur.copy(prev);
  }
  return { width, height, colours: colours.size, inkShare: ink / (width * height) };
}
