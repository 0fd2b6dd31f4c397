/**
 * Small SVG charts drawn by hand for the HTML report: no library, no script, no network. Each
 * data point is an element carrying its values (`data-series`, `data-x`, `data-y`), so a test
 * (or a curious reader) can check the picture against the report's numbers.
 */

/** Escapes text for HTML and SVG content and attribute values. */
export const escapeHtml = (text: string): string =>
  text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!)

export interface Series {
  readonly name: string
  readonly color: string
  /** `y: null`: no value at this x (the line breaks there). */
  readonly points: ReadonlyArray<{ readonly x: number; readonly y: number | null }>
}

const WIDTH = 720
const HEIGHT = 260
// The top padding holds the legend, above the plot.
const PAD = { left: 56, right: 16, top: 28, bottom: 40 }
const fmt = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(2).replace(/\.?0+$/, ""))

/** A round step that gives about `count` ticks from 0 to `max`. */
const ticks = (max: number, count = 5, integer = false): ReadonlyArray<number> => {
  if (!(max > 0)) return [0, 1]
  const raw = integer ? Math.max(1, max / count) : max / count
  const magnitude = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw
  return Array.from({ length: Math.ceil(max / step - 1e-9) + 1 }, (_, i) => i * step)
}

/** The frame both charts share: axes, grid lines, tick labels and axis titles. */
const frame = (xMax: number, yTicks: ReadonlyArray<number>, xLabel: string, yLabel: string) => {
  const yMax = yTicks[yTicks.length - 1]!
  const plotW = WIDTH - PAD.left - PAD.right
  const plotH = HEIGHT - PAD.top - PAD.bottom
  const sx = (x: number) => PAD.left + (xMax === 0 ? plotW / 2 : (x / xMax) * plotW)
  const sy = (y: number) => PAD.top + plotH - (y / yMax) * plotH
  const grid = yTicks
    .map((t) => `<line class="grid" x1="${PAD.left}" x2="${WIDTH - PAD.right}" y1="${sy(t).toFixed(1)}" y2="${sy(t).toFixed(1)}"/><text class="tick" x="${PAD.left - 6}" y="${(sy(t) + 4).toFixed(1)}" text-anchor="end">${fmt(t)}</text>`)
    .join("")
  const xTicks = ticks(xMax, 8, true).filter((t) => t <= xMax) // whole seconds
  const xAxis = xTicks.map((t) => `<text class="tick" x="${sx(t).toFixed(1)}" y="${HEIGHT - PAD.bottom + 16}" text-anchor="middle">${fmt(t)}</text>`).join("")
  const titles =
    `<text class="axis" x="${PAD.left + plotW / 2}" y="${HEIGHT - 6}" text-anchor="middle">${escapeHtml(xLabel)}</text>` +
    `<text class="axis" transform="translate(14 ${PAD.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeHtml(yLabel)}</text>`
  const axes = `<line class="axis-line" x1="${PAD.left}" x2="${PAD.left}" y1="${PAD.top}" y2="${PAD.top + plotH}"/><line class="axis-line" x1="${PAD.left}" x2="${WIDTH - PAD.right}" y1="${PAD.top + plotH}" y2="${PAD.top + plotH}"/>`
  return { sx, sy, plotW, svg: grid + xAxis + titles + axes }
}

const svg = (id: string, title: string, body: string) =>
  `<svg id="${escapeHtml(id)}" class="chart" viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-label="${escapeHtml(title)}" preserveAspectRatio="xMidYMid meet"><title>${escapeHtml(title)}</title>${body}</svg>`

/**
 * Lines with a dot per point (x: a number such as the second, y: a value or null), and a legend.
 *
 * @example lineChart({ id: "latency", title: "…", xLabel: "s", yLabel: "ms", series: [{ name: "p50", color: "#36c", points: [{ x: 0, y: 3 }] }] })
 */
export const lineChart = (o: { readonly id: string; readonly title: string; readonly xLabel: string; readonly yLabel: string; readonly series: ReadonlyArray<Series> }): string => {
  const all = o.series.flatMap((s) => s.points)
  const xMax = Math.max(0, ...all.map((p) => p.x))
  const yTicks = ticks(Math.max(0, ...all.map((p) => p.y ?? 0)))
  const f = frame(xMax, yTicks, o.xLabel, o.yLabel)
  const lines = o.series
    .map((s) => {
      // A null breaks the line: each run of values is its own polyline.
      const runs: Array<Array<string>> = [[]]
      for (const p of s.points) {
        if (p.y === null) runs.push([])
        else runs[runs.length - 1]!.push(`${f.sx(p.x).toFixed(1)},${f.sy(p.y).toFixed(1)}`)
      }
      const polylines = runs.filter((r) => r.length > 1).map((r) => `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${r.join(" ")}"/>`).join("")
      const dots = s.points
        .filter((p) => p.y !== null)
        .map((p) => `<circle class="point" data-series="${escapeHtml(s.name)}" data-x="${p.x}" data-y="${p.y}" cx="${f.sx(p.x).toFixed(1)}" cy="${f.sy(p.y!).toFixed(1)}" r="3" fill="${s.color}"><title>${escapeHtml(`${s.name} at ${p.x} s: ${fmt(p.y!)}`)}</title></circle>`)
        .join("")
      return `<g class="series" data-series="${escapeHtml(s.name)}">${polylines}${dots}</g>`
    })
    .join("")
  const legend = o.series
    .map((s, i) => `<g class="legend" transform="translate(${PAD.left + 10 + i * 70} 6)"><rect width="10" height="10" fill="${s.color}"/><text x="14" y="9">${escapeHtml(s.name)}</text></g>`)
    .join("")
  return svg(o.id, o.title, f.svg + lines + legend)
}

/**
 * Vertical bars, one per x (such as the second), each carrying its value.
 *
 * @example barChart({ id: "throughput", title: "…", xLabel: "s", yLabel: "deliveries/s", bars: [{ x: 0, y: 120 }] })
 */
export const barChart = (o: { readonly id: string; readonly title: string; readonly xLabel: string; readonly yLabel: string; readonly bars: ReadonlyArray<{ readonly x: number; readonly y: number }> }): string => {
  const xMax = Math.max(0, ...o.bars.map((b) => b.x + 1))
  const yTicks = ticks(Math.max(0, ...o.bars.map((b) => b.y)), 5, true) // counts: whole numbers
  const f = frame(xMax, yTicks, o.xLabel, o.yLabel)
  const width = Math.max(1, (f.plotW / Math.max(1, xMax)) * 0.8)
  const bars = o.bars
    .map((b) => {
      const top = f.sy(b.y)
      const bottom = f.sy(0)
      return `<rect class="bar" data-series="deliveries" data-x="${b.x}" data-y="${b.y}" x="${(f.sx(b.x + 0.5) - width / 2).toFixed(1)}" y="${top.toFixed(1)}" width="${width.toFixed(1)}" height="${(bottom - top).toFixed(1)}" fill="#3b7dd8"><title>${escapeHtml(`${b.x}–${b.x + 1} s: ${b.y}`)}</title></rect>`
    })
    .join("")
  return svg(o.id, o.title, f.svg + bars)
}

/**
 * Horizontal bars with a label each (errors by kind).
 *
 * @example kindChart({ id: "errors", title: "Errors by kind", bars: [{ label: "timeouts", value: 3 }] })
 */
export const kindChart = (o: { readonly id: string; readonly title: string; readonly bars: ReadonlyArray<{ readonly label: string; readonly value: number }> }): string => {
  const row = 26
  const height = PAD.top + o.bars.length * row + 8
  const labelW = 200
  const max = Math.max(1, ...o.bars.map((b) => b.value))
  const plotW = WIDTH - labelW - PAD.right - 60
  const bars = o.bars
    .map((b, i) => {
      const y = PAD.top + i * row
      const w = Math.max(2, (b.value / max) * plotW)
      return `<text class="tick" x="${labelW - 8}" y="${y + 15}" text-anchor="end">${escapeHtml(b.label)}</text><rect class="bar" data-series="errors" data-x="${escapeHtml(b.label)}" data-y="${b.value}" x="${labelW}" y="${y + 3}" width="${w.toFixed(1)}" height="16" fill="#d8453b"/><text class="tick" x="${(labelW + w + 6).toFixed(1)}" y="${y + 15}">${b.value}</text>`
    })
    .join("")
  return `<svg id="${escapeHtml(o.id)}" class="chart" viewBox="0 0 ${WIDTH} ${height}" role="img" aria-label="${escapeHtml(o.title)}"><title>${escapeHtml(o.title)}</title>${bars}</svg>`
}
