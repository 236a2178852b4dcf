// Clicks by weekday and hour as a table whose cells are shaded by their count:
// one element that a sighted reader scans as a heatmap and a screen reader reads
// as a table, with every number as text.

import { count, fill, h } from "./dom";

const WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/** The shade of a cell: 0 for none, then 1 to 3 by its share of the busiest cell. */
function level(clicks: number, busiest: number): number {
  if (clicks === 0 || busiest === 0) return 0;
  return Math.min(3, Math.ceil((clicks / busiest) * 3));
}

export interface Heatmap {
  element: HTMLElement;
  /** Shows the 7 × 24 counts (Monday first) of the operators' zone. */
  update(weekdayHourly: number[][], timezone: string): void;
}

export function createHeatmap(title: string): Heatmap {
  const summary = h("p", { class: "note" });
  // The table is wider than a phone: it scrolls within its frame, by keyboard too.
  const grid = h("div", { class: "heatmap-scroll", tabindex: 0, role: "region", "aria-label": `${title}, scrolls sideways` });
  const element = h("figure", { class: "chart heatmap", id: "clicks-heatmap" }, h("figcaption", {}, title), summary, grid);
  const hours = Array.from({ length: 24 }, (_, hour) => hour);
  const clock = (hour: number) => `${String(hour).padStart(2, "0")}:00`;

  function update(weekdayHourly: number[][], timezone: string): void {
    const cells = weekdayHourly.flatMap((row, day) => row.map((clicks, hour) => ({ day, hour, clicks })));
    const peak = cells.reduce((best, cell) => (cell.clicks > best.clicks ? cell : best), { day: 0, hour: 0, clicks: 0 });
    summary.textContent = peak.clicks
      ? `Busiest: ${WEEKDAYS[peak.day]} ${clock(peak.hour)} with ${count(peak.clicks)} clicks (${timezone}).`
      : "No clicks yet.";
    fill(
      grid,
      h(
        "table",
        { class: "heatmap-table" },
        h("caption", { class: "visually-hidden" }, `${title} (${timezone}): a row per weekday, a column per hour`),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("td", {}),
            hours.map((hour) => h("th", { scope: "col", abbr: clock(hour) }, String(hour).padStart(2, "0"))),
          ),
        ),
        h(
          "tbody",
          {},
          WEEKDAYS.map((weekday, day) =>
            h(
              "tr",
              {},
              h("th", { scope: "row", abbr: weekday }, weekday.slice(0, 3)),
              hours.map((hour) => {
                const clicks = weekdayHourly[day]?.[hour] ?? 0;
                return h("td", { class: `level-${level(clicks, peak.clicks)}`, "data-day": day, "data-hour": hour }, count(clicks));
              }),
            ),
          ),
        ),
      ),
    );
  }

  return { element, update };
}
