// Webhook: is Pulse healthy, how fast is its store, and how many events came in
// the last minute, 5 minutes and hour (with a chart per minute, marked where
// alerts fired). Live events move the counters between polls.

import { health, type PulseEvent, type Realtime, type Transition } from "../api";
import { BarChart, type Marks } from "../charts";
import { count, fill, h, minute, time, timeElement } from "../dom";
import { ruleTitle } from "./alerts";
import type { WebhookHealth } from "./header";
import { byId, ok, section, stat, type Context } from "./section";

/** The counters and their chart are redrawn at most this often, however fast events come. */
const SHOW_EVERY_MS = 250;

export interface Webhook {
  element: HTMLElement;
  load(): Promise<void>;
  /** Moves the counters at once for events just received; the next poll sets them exactly. */
  countLive(events: PulseEvent[]): void;
  /** The alerts' latest transitions: those that fired in the chart's hour are marked on it. */
  showAlerts(transitions: Transition[]): void;
  stop(): void;
}

export function createWebhook(context: Context, showHealth: (health: WebhookHealth) => void): Webhook {
  const { element, state } = section("webhook", "Webhook");
  const perMinute = new BarChart({
    title: "Events per minute, last hour",
    xTitle: "Minute",
    time: true,
    stacked: false,
    height: 140,
  });
  element.append(
    h(
      "dl",
      { class: "stats" },
      stat("Status", "health-status"),
      stat("Store latency", "store-latency"),
      stat("Last event", "last-event"),
      stat("Last minute", "events-last-minute"),
      stat("Last 5 minutes", "events-last-5-minutes"),
      stat("Last hour", "events-last-hour"),
    ),
    perMinute.element,
  );
  let realtime: Realtime | null = null;
  let fired: Transition[] = [];
  let frame = 0;
  let timer: number | undefined;
  let shownAt = 0;

  async function load(): Promise<void> {
    try {
      const result = await health();
      const healthy = result.status === "healthy";
      // Degraded: the store does not answer, or an alert is active (the banner says which).
      const alerts = result.alerts.length;
      const why = !result.store.reachable ? "store unreachable" : alerts ? `${alerts} alert${alerts === 1 ? "" : "s"}` : "";
      fill(
        byId(element, "health-status"),
        h("span", { class: healthy ? "good" : "bad" }, healthy ? "Healthy" : `Degraded${why ? `: ${why}` : ""}`),
      );
      byId(element, "store-latency").textContent = `${result.store.latency_ms.toFixed(1)} ms`;
      showHealth(healthy ? "healthy" : "degraded");
    } catch {
      byId(element, "health-status").textContent = "Unreachable";
      showHealth("unreachable");
    }
    try {
      realtime = await context.api.realtime();
      show();
      ok(state, realtime.last_event_at ? "" : "No event yet: point Meta's webhook here, or run pulse simulate.");
    } catch (error) {
      context.failed(error, state);
    }
  }

  function show(): void {
    if (!realtime) return;
    byId(element, "events-last-minute").textContent = count(realtime.last_minute);
    byId(element, "events-last-5-minutes").textContent = count(realtime.last_5_minutes);
    byId(element, "events-last-hour").textContent = count(realtime.last_hour);
    fill(byId(element, "last-event"), realtime.last_event_at ? timeElement(realtime.last_event_at) : "never");
    const minutes = realtime.per_minute;
    const busiest = Math.max(0, ...minutes.map((m) => m.count));
    perMinute.update(
      {
        xs: minutes.map((m) => Date.parse(m.minute) / 1000),
        xLabels: minutes.map((m) => time(m.minute)),
        series: [{ label: "Events", values: minutes.map((m) => m.count) }],
      },
      `${count(realtime.last_hour)} events in the last hour; the busiest minute had ${count(busiest)}.`,
      marks(minutes.map((m) => m.minute)),
    );
  }

  /** The alerts that fired within the chart's minutes, each on the bar of its minute. */
  function marks(minutes: string[]): Marks {
    const first = minutes[0];
    const last = minutes.at(-1);
    if (!first || !last) return { xs: [], text: "" };
    const from = Date.parse(first);
    const to = Date.parse(last) + 60_000;
    const inView = fired
      .filter((t) => {
        const at = Date.parse(t.since);
        return at >= from && at < to;
      })
      .sort((a, b) => a.since.localeCompare(b.since));
    if (!inView.length) return { xs: [], text: "" };
    const named = inView.map((t) => `${minute(t.since)} (${ruleTitle(t.rule)})`);
    return {
      xs: inView.map((t) => Math.floor(Date.parse(t.since) / 60_000) * 60),
      text: `${inView.length === 1 ? "Alert" : "Alerts"} fired at ${named.join(", ")}: marked with a dashed line.`,
    };
  }

  function showAlerts(transitions: Transition[]): void {
    // A firing appears once, however many times it is listed (active and recent).
    const seen = new Set<string>();
    fired = transitions.filter((t) => {
      const key = `${t.rule}@${t.since}`;
      if (t.state !== "firing" || seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    show();
  }

  /** In the next frame if the last redraw is old enough, else once it is. */
  function showSoon(): void {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      const now = performance.now();
      if (now - shownAt >= SHOW_EVERY_MS) {
        shownAt = now;
        show();
      } else if (!timer) {
        timer = window.setTimeout(() => {
          timer = undefined;
          shownAt = performance.now();
          show();
        }, SHOW_EVERY_MS);
      }
    });
  }

  function countLive(events: PulseEvent[]): void {
    if (realtime) {
      const now = Date.now();
      for (const event of events) {
        const at = Date.parse(event.occurred_at);
        const age = now - at;
        if (age < 0 || age > 3_600_000) continue;
        realtime.last_hour += 1;
        if (age < 300_000) realtime.last_5_minutes += 1;
        if (age < 60_000) realtime.last_minute += 1;
        const slot = realtime.per_minute.findLast((m: { minute: string }) => Date.parse(m.minute) <= at);
        if (slot) slot.count += 1;
        if (!realtime.last_event_at || event.occurred_at > realtime.last_event_at) realtime.last_event_at = event.occurred_at;
      }
    }
    showSoon();
  }

  function stop(): void {
    cancelAnimationFrame(frame);
    clearTimeout(timer);
  }

  return { element, load, countLive, showAlerts, stop };
}
