// Bar charts drawn by uPlot, each with the same numbers as a table beside it for
// screen readers and for anyone who wants to read the figures.

import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { count, h } from "./dom";

export interface Series {
  label: string;
  values: number[];
}

export interface BarChartData {
  /** The x axis: UNIX seconds when `time`, else positions 0, 1, 2… */
  xs: number[];
  /** What each x is called in the table ("2026-12-01", "14:00"). */
  xLabels: string[];
  series: Series[];
}

/** Moments drawn as dashed lines over the bars (alerts that fired), and a sentence naming them. */
export interface Marks {
  xs: number[];
  text: string;
}

export interface BarChartOptions {
  title: string;
  /** Heading of the table's first column. */
  xTitle: string;
  time: boolean;
  /** Series on top of each other (a total per x), or one series. */
  stacked: boolean;
  height?: number;
}

function palette(): string[] {
  const style = getComputedStyle(document.documentElement);
  return [1, 2, 3, 4, 5, 6].map((i) => style.getPropertyValue(`--series-${i}`).trim() || "#3566d6");
}

function themeColor(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/**
 * A chart and its table. `update` redraws both with new data of the same shape;
 * a new set of series (another button appeared) rebuilds the chart.
 */
export class BarChart {
  readonly element: HTMLElement;
  private readonly plotArea: HTMLDivElement;
  private readonly summary: HTMLParagraphElement;
  /** The marks' text: what the dashed lines show, for everyone. */
  private readonly marksText: HTMLParagraphElement;
  private marks: Marks = { xs: [], text: "" };
  private markColor = "";
  private readonly table: HTMLTableElement;
  private plot: uPlot | null = null;
  private seriesKey = "";
  private data: BarChartData = { xs: [], xLabels: [], series: [] };

  private readonly details: HTMLDetailsElement;
  private tableStale = true;

  constructor(private readonly options: BarChartOptions) {
    this.plotArea = h("div", { class: "plot", "aria-hidden": "true" });
    this.summary = h("p", { class: "chart-summary" });
    this.marksText = h("p", { class: "chart-marks" });
    this.table = h("table", { class: "data" });
    // The table is written when shown: a live chart changes many times a second.
    this.details = h(
      "details",
      { ontoggle: () => this.renderTable() },
      h("summary", {}, `${options.title}: as a table`),
      h("div", { class: "table-scroll" }, this.table),
    );
    this.element = h(
      "figure",
      { class: "chart" },
      h("figcaption", {}, options.title),
      this.summary,
      this.marksText,
      this.plotArea,
      this.details,
    );
    new ResizeObserver(() => this.resize()).observe(this.plotArea);
    matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => this.rebuild());
  }

  update(data: BarChartData, summary: string, marks: Marks = { xs: [], text: "" }): void {
    this.data = data;
    this.summary.textContent = summary;
    this.marks = marks;
    if (this.marksText.textContent !== marks.text) this.marksText.textContent = marks.text;
    this.tableStale = true;
    this.renderTable();
    const key = data.series.map((s) => s.label).join("\u0000");
    if (this.plot && key === this.seriesKey) {
      this.plot.setData(this.plotData());
    } else {
      this.seriesKey = key;
      this.rebuild();
    }
  }

  /** Totals per x, for stacked charts. */
  private totals(): number[] {
    return this.data.xs.map((_, i) => this.data.series.reduce((sum, s) => sum + (s.values[i] ?? 0), 0));
  }

  /**
   * uPlot draws series in order and does not stack: for stacked bars, series k is
   * drawn as the sum of series k… n, largest first, so each shows as its own band.
   */
  private plotData(): uPlot.AlignedData {
    const { xs, series } = this.data;
    if (!this.options.stacked) return [xs, ...series.map((s) => s.values)];
    const sums = series.map((_, k) => xs.map((_, i) => series.slice(k).reduce((sum, s) => sum + (s.values[i] ?? 0), 0)));
    return [xs, ...sums];
  }

  private rebuild(): void {
    this.plot?.destroy();
    this.plot = null;
    const width = this.plotArea.clientWidth;
    if (width === 0) return;
    const colors = palette();
    this.markColor = themeColor("--bad") || "#b3261e";
    const axis = themeColor("--muted");
    const grid = themeColor("--grid");
    const bars = uPlot.paths.bars!({ size: [0.7, 48], gap: 1 });
    const raw = this.data.series;
    const options: uPlot.Options = {
      width,
      height: this.options.height ?? 200,
      legend: { show: this.options.stacked },
      cursor: { y: false, points: { show: false } },
      scales: {
        // Positions (and minutes, days…) get half a slot of room on each side, so that the end bars show whole.
        x: { time: this.options.time, range: (_u, min, max) => [min - this.halfSlot(), max + this.halfSlot()] },
        y: { range: (_u, _min, max) => [0, Math.max(1, max)] },
      },
      axes: [
        {
          stroke: axis,
          grid: { show: false },
          ticks: { stroke: grid },
          values: this.options.time ? undefined : (_u, splits) => splits.map((v) => this.data.xLabels[v] ?? ""),
        },
        { stroke: axis, grid: { stroke: grid }, ticks: { stroke: grid }, size: 44 },
      ],
      series: [
        // Under the cursor the legend names its x; at rest it speaks of all of them.
        { label: this.options.xTitle, value: (_u, v) => (v === null ? "all" : (this.data.xLabels[this.data.xs.indexOf(v)] ?? "")) },
        ...raw.map((s, k) => ({
          label: s.label,
          fill: colors[k % colors.length],
          stroke: colors[k % colors.length],
          width: 0,
          paths: bars,
          points: { show: false },
          // The legend shows the series' own count, not the stacked height: at the
          // cursor's x, or over every x at rest. Read at call time: `update` may
          // have brought new values since the chart was built.
          value: (_u: uPlot, _v: number | null, _si: number, i: number | null) => {
            const values = this.data.series[k]?.values ?? [];
            return count(i === null ? values.reduce((sum, v) => sum + v, 0) : (values[i] ?? 0));
          },
        })),
      ],
    };
    options.hooks = { draw: [(u) => this.drawMarks(u)] };
    this.plot = new uPlot(options, this.plotData(), this.plotArea);
  }

  /** Half the distance between two xs: 0.5 for positions, 30 s for minutes. */
  private halfSlot(): number {
    const [first, second] = this.data.xs;
    return first !== undefined && second !== undefined ? (second - first) / 2 : this.options.time ? 30 : 0.5;
  }

  /** A dashed line from top to bottom at each mark in view, with a flag on top. */
  private drawMarks(u: uPlot): void {
    if (!this.marks.xs.length) return;
    const { ctx, bbox } = u;
    const px = uPlot.pxRatio;
    ctx.save();
    ctx.beginPath();
    ctx.rect(bbox.left, bbox.top, bbox.width, bbox.height);
    ctx.clip();
    ctx.strokeStyle = this.markColor;
    ctx.fillStyle = this.markColor;
    ctx.lineWidth = 2 * px;
    ctx.setLineDash([5 * px, 3 * px]);
    for (const x of this.marks.xs) {
      const left = Math.round(u.valToPos(x, "x", true));
      if (left < bbox.left || left > bbox.left + bbox.width) continue;
      ctx.beginPath();
      ctx.moveTo(left, bbox.top);
      ctx.lineTo(left, bbox.top + bbox.height);
      ctx.stroke();
      ctx.beginPath();
      ctx.moveTo(left - 6 * px, bbox.top);
      ctx.lineTo(left + 6 * px, bbox.top);
      ctx.lineTo(left, bbox.top + 8 * px);
      ctx.closePath();
      ctx.fill();
    }
    ctx.restore();
  }

  private resize(): void {
    const width = this.plotArea.clientWidth;
    if (!this.plot) {
      if (width > 0 && this.data.xs.length) this.rebuild();
      return;
    }
    if (width > 0 && width !== this.plot.width) this.plot.setSize({ width, height: this.plot.height });
  }

  private renderTable(): void {
    if (!this.details.open || !this.tableStale) return;
    this.tableStale = false;
    const { xLabels, series } = this.data;
    const stacked = this.options.stacked && series.length > 1;
    const totals = this.totals();
    const head = h(
      "tr",
      {},
      h("th", { scope: "col" }, this.options.xTitle),
      series.map((s) => h("th", { scope: "col", class: "num" }, s.label)),
      stacked && h("th", { scope: "col", class: "num" }, "Total"),
    );
    const rows = xLabels.map((label, i) =>
      h(
        "tr",
        {},
        h("th", { scope: "row" }, label),
        series.map((s) => h("td", { class: "num" }, count(s.values[i] ?? 0))),
        stacked && h("td", { class: "num" }, count(totals[i] ?? 0)),
      ),
    );
    this.table.replaceChildren(h("thead", {}, head), h("tbody", {}, rows));
  }
}
