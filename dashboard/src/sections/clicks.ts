// Click-to-Unlock: button clicks in a window of days (totals, per day, per hour
// of day, as CSV), the response time and the delivery of replies.

import type { Metrics } from "../api";
import { BarChart } from "../charts";
import { download, toCsv } from "../csv";
import { createHeatmap } from "../heatmap";
import { count, duration, fill, h, percent } from "../dom";
import { byId, ok, section, stat, type Context } from "./section";

const WINDOWS = [
  { days: 1, label: "Today" },
  { days: 7, label: "7 days" },
  { days: 30, label: "30 days" },
  { days: 90, label: "90 days" },
];

/** The known buttons (`/config.json`) first, in their order, then any other in alphabetical order. */
function buttonOrder(known: string[], ids: string[]): string[] {
  const others = ids.filter((id) => !known.includes(id)).sort();
  return [...known, ...others];
}

export interface Clicks {
  element: HTMLElement;
  load(): Promise<void>;
}

export function createClicks(context: Context, knownButtons: string[]): Clicks {
  const { element, state } = section("clicks", "Click-to-Unlock");
  let days = 7;
  /** What is shown, for the CSV. */
  let metrics: Metrics | null = null;
  const dailyClicks = new BarChart({ title: "Clicks by button per day", xTitle: "Day", time: false, stacked: true });
  const hourlyClicks = new BarChart({
    title: "Clicks by hour of day",
    xTitle: "Hour",
    time: false,
    stacked: false,
    height: 160,
  });

  const heatmap = createHeatmap("Clicks by weekday and hour");

  const choices = h(
    "fieldset",
    { class: "segmented" },
    h("legend", {}, "Window"),
    WINDOWS.map((w) =>
      h(
        "label",
        {},
        h("input", {
          type: "radio",
          name: "window",
          value: w.days,
          checked: w.days === days,
          onchange: () => {
            days = w.days;
            void load();
          },
        }),
        h("span", {}, w.label),
      ),
    ),
  );
  const csv = h("button", { type: "button", class: "quiet", id: "clicks-csv", onclick: downloadDays }, "Download CSV");
  element.append(
    h("div", { class: "toolbar" }, choices, csv),
    h("p", { class: "note", id: "timezone" }),
    h("div", { class: "tiles", id: "click-totals" }),
    dailyClicks.element,
    hourlyClicks.element,
    heatmap.element,
    h(
      "div",
      { class: "columns" },
      h(
        "div",
        {},
        h("h3", {}, "Response time"),
        h(
          "dl",
          { class: "stats" },
          stat("Average", "rt-avg"),
          stat("Median (p50)", "rt-p50"),
          stat("p95", "rt-p95"),
          stat("Replies timed", "rt-count"),
        ),
      ),
      h(
        "div",
        {},
        h("h3", {}, "Delivery"),
        h(
          "dl",
          { class: "stats" },
          stat("Success rate", "delivery-rate"),
          stat("Sent", "status-sent"),
          stat("Delivered", "status-delivered"),
          stat("Read", "status-read"),
          stat("Failed", "status-failed"),
        ),
      ),
    ),
  );

  async function load(): Promise<void> {
    const asked = days;
    try {
      const answer = await context.api.metrics(asked);
      // Another window was chosen meanwhile: its answer is the one to show.
      if (asked !== days) return;
      metrics = answer;
      show(answer);
    } catch (error) {
      context.failed(error, state);
    }
  }

  function show(metrics: Metrics): void {
    const clicks = metrics.button_clicks;
    const { window } = metrics;
    ok(state, clicks.total ? "" : "No button clicks in this window yet.");
    byId(element, "timezone").textContent =
      `${window.from === window.to ? window.from : `${window.from} to ${window.to}`}, days counted in ${window.timezone} (PULSE_TIMEZONE).`;
    const buttons = buttonOrder(knownButtons, Object.keys(clicks.by_button));
    fill(
      byId(element, "click-totals"),
      h(
        "div",
        { class: "tile total" },
        h("span", { class: "tile-label" }, "All clicks"),
        h("span", { class: "tile-value", id: "clicks-total" }, count(clicks.total)),
      ),
      buttons.map((button) =>
        h(
          "div",
          { class: "tile" },
          h("span", { class: "tile-label" }, button),
          h("span", { class: "tile-value", "data-button": button }, count(clicks.by_button[button] ?? 0)),
        ),
      ),
    );
    const daily = clicks.daily;
    dailyClicks.update(
      {
        xs: daily.map((_, i) => i),
        xLabels: daily.map((d) => d.date),
        series: buttons.map((button) => ({ label: button, values: daily.map((d) => d.by_button[button] ?? 0) })),
      },
      `${count(clicks.total)} clicks over ${daily.length} ${daily.length === 1 ? "day" : "days"}: ${buttons.map((b) => `${b} ${count(clicks.by_button[b] ?? 0)}`).join(", ")}.`,
    );
    const peak = clicks.hourly.indexOf(Math.max(...clicks.hourly));
    hourlyClicks.update(
      {
        xs: clicks.hourly.map((_, i) => i),
        xLabels: clicks.hourly.map((_, i) => `${String(i).padStart(2, "0")}:00`),
        series: [{ label: "Clicks", values: clicks.hourly }],
      },
      clicks.total
        ? `Busiest hour: ${String(peak).padStart(2, "0")}:00 with ${count(clicks.hourly[peak] ?? 0)} clicks (${window.timezone}).`
        : "No clicks yet.",
    );
    heatmap.update(clicks.weekday_hourly, window.timezone);
    const rt = metrics.response_time_ms;
    byId(element, "rt-avg").textContent = duration(rt.avg ?? null);
    byId(element, "rt-p50").textContent = duration(rt.p50 ?? null);
    byId(element, "rt-p95").textContent = duration(rt.p95 ?? null);
    byId(element, "rt-count").textContent = count(rt.count);
    byId(element, "delivery-rate").textContent = percent(metrics.delivery_success_rate ?? null);
    for (const status of ["sent", "delivered", "read", "failed"] as const) {
      byId(element, `status-${status}`).textContent = count(metrics.statuses[status]);
    }
    byId(element, "status-failed").classList.toggle("bad", metrics.statuses.failed > 0);
  }

  function downloadDays(): void {
    if (!metrics) return;
    const buttons = buttonOrder(knownButtons, Object.keys(metrics.button_clicks.by_button));
    const rows = metrics.button_clicks.daily.map((d) => [d.date, ...buttons.map((b) => d.by_button[b] ?? 0), d.total]);
    download(`pulse-clicks-${metrics.window.from}-to-${metrics.window.to}.csv`, toCsv(["date", ...buttons, "total"], rows));
  }

  return { element, load };
}
