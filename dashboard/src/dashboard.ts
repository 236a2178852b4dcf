// The dashboard's sections, each fed by one REST route and moved by the live feed.

import { Api, health, type Config, type Conversations, type Metrics, type PulseEvent, type Realtime } from "./api";
import { BarChart } from "./charts";
import { download, toCsv } from "./csv";
import { ago, count, dateTime, duration, fill, h, percent, since, time, timeElement } from "./dom";
import { describe, isFailure, typeLabel, who } from "./events";
import { LiveConnection, type LiveState } from "./live";
import { createLog, type Log } from "./sections/log";
import { byId, createContext, ok, section, stat, type Context } from "./sections/section";

const KNOWN_BUTTONS = ["RETRIEVE_CONTENT", "UNLOCK_CONTENT", "SHARE_WITH_CLIENTS"];
const WINDOWS = [
  { days: 1, label: "Today" },
  { days: 7, label: "7 days" },
  { days: 30, label: "30 days" },
  { days: 90, label: "90 days" },
];
/** The feed shows this many events; older ones leave it (the log has them all). */
const FEED_SIZE = 200;
const CONVERSATIONS_SHOWN = 20;
const POLL_STATUS_MS = 10_000;
const POLL_METRICS_MS = 30_000;
/** Live events ask for fresh figures at most this often. */
const REFRESH_AFTER_EVENTS_MS = 2_000;

interface Callbacks {
  signOut(): void;
  expired(): void;
}

function buttonOrder(ids: string[]): string[] {
  const others = ids.filter((id) => !KNOWN_BUTTONS.includes(id)).sort();
  return [...KNOWN_BUTTONS, ...others];
}

export class Dashboard {
  readonly element: HTMLElement;
  private readonly live: LiveConnection;
  private readonly timers: number[] = [];
  private days = 7;
  private metrics: Metrics | null = null;
  private realtime: Realtime | null = null;
  private refreshTimer: number | undefined;
  private realtimeTimer: number | undefined;
  private realtimeShownAt = 0;
  private readonly context: Context & { stop(): void };
  private readonly log: Log;

  // Webhook status
  private readonly status = section("webhook", "Webhook");
  private readonly perMinute = new BarChart({
    title: "Events per minute, last hour",
    xTitle: "Minute",
    time: true,
    stacked: false,
    height: 140,
  });
  // Click-to-Unlock
  private readonly clicks = section("clicks", "Click-to-Unlock");
  private readonly dailyClicks = new BarChart({ title: "Clicks by button per day", xTitle: "Day", time: false, stacked: true });
  private readonly hourlyClicks = new BarChart({
    title: "Clicks by hour of day",
    xTitle: "Hour",
    time: false,
    stacked: false,
    height: 160,
  });
  // Conversations
  private readonly chats = section("conversations", "Conversations");
  // Live feed
  private readonly feed = section("feed", "Live activity");
  private readonly feedList = h("ol", { class: "feed", tabindex: 0, "aria-label": "Live events, newest first" });
  private readonly pauseButton = h("button", { type: "button", "aria-pressed": "false" }, "Pause");
  private readonly newCount = h("span", { class: "new-count", role: "status" });
  private paused = false;
  private queued: PulseEvent[] = [];
  /** Ids shown or queued: the first page of the log and the live feed can overlap. */
  private feedIds = new Set<string>();
  private heldBack = 0;
  private frame = 0;

  private readonly liveState = h("span", { class: "pill", id: "live-state", role: "status" }, "Connecting…");
  private readonly webhookPill = h("span", { class: "pill", id: "webhook-pill" }, "Webhook: checking…");

  constructor(
    private readonly api: Api,
    settings: Config,
    callbacks: Callbacks,
  ) {
    this.context = createContext(api, () => callbacks.expired());
    this.log = createLog(this.context);
    this.live = new LiveConnection(settings.websocket_url, api.token, {
      onEvents: (events) => this.receive(events),
      onState: (state) => this.showLiveState(state),
      onRefused: () => void this.api.realtime().catch((e) => this.context.failed(e)),
    });
    this.element = h(
      "div",
      { class: "shell" },
      h(
        "header",
        { class: "top" },
        h("h1", {}, "Pulse"),
        h("div", { class: "pills" }, this.webhookPill, this.liveState),
        h("button", { type: "button", class: "quiet", onclick: () => callbacks.signOut() }, "Sign out"),
      ),
      // Two columns on a desk; on a phone, what is happening now comes first.
      h(
        "main",
        { id: "main", class: "grid" },
        h("div", { class: "column" }, this.buildStatus(), this.buildFeed(), this.buildChats()),
        h("div", { class: "column wide" }, this.buildClicks(), this.log.element),
      ),
    );
  }

  start(): void {
    this.live.start();
    void this.loadStatus();
    void this.loadMetrics();
    void this.loadConversations();
    void this.log.load();
    void this.loadRecent();
    this.timers.push(window.setInterval(() => void this.loadStatus(), POLL_STATUS_MS));
    this.timers.push(
      window.setInterval(() => {
        void this.loadMetrics();
        void this.loadConversations();
      }, POLL_METRICS_MS),
    );
    // "12 s ago" keeps moving between polls.
    this.timers.push(window.setInterval(() => this.tick(), 1_000));
  }

  stop(): void {
    this.context.stop();
    this.live.stop();
    this.timers.forEach(clearInterval);
    clearTimeout(this.refreshTimer);
    clearTimeout(this.realtimeTimer);
    cancelAnimationFrame(this.frame);
  }

  // ---- Webhook status -------------------------------------------------------

  private buildStatus(): HTMLElement {
    const list = h(
      "dl",
      { class: "stats" },
      stat("Status", "health-status"),
      stat("Store latency", "store-latency"),
      stat("Last event", "last-event"),
      stat("Last minute", "events-last-minute"),
      stat("Last 5 minutes", "events-last-5-minutes"),
      stat("Last hour", "events-last-hour"),
    );
    this.status.element.append(list, this.perMinute.element);
    return this.status.element;
  }

  private async loadStatus(): Promise<void> {
    const root = this.status.element;
    try {
      const result = await health();
      const healthy = result.status === "healthy";
      fill(
        byId(root, "health-status"),
        h("span", { class: healthy ? "good" : "bad" }, healthy ? "Healthy" : "Degraded: store unreachable"),
      );
      byId(root, "store-latency").textContent = `${result.store.latency_ms.toFixed(1)} ms`;
      this.webhookPill.textContent = healthy ? "Webhook healthy" : "Webhook degraded";
      this.webhookPill.dataset.tone = healthy ? "good" : "bad";
    } catch {
      byId(root, "health-status").textContent = "Unreachable";
      this.webhookPill.textContent = "Pulse unreachable";
      this.webhookPill.dataset.tone = "bad";
    }
    try {
      this.realtime = await this.api.realtime();
      this.showRealtime();
      ok(this.status.state, this.realtime.last_event_at ? "" : "No event yet: point Meta's webhook here, or run pulse simulate.");
    } catch (error) {
      this.context.failed(error, this.status.state);
    }
  }

  private showRealtime(): void {
    const realtime = this.realtime;
    if (!realtime) return;
    const root = this.status.element;
    byId(root, "events-last-minute").textContent = count(realtime.last_minute);
    byId(root, "events-last-5-minutes").textContent = count(realtime.last_5_minutes);
    byId(root, "events-last-hour").textContent = count(realtime.last_hour);
    fill(byId(root, "last-event"), realtime.last_event_at ? timeElement(realtime.last_event_at) : "never");
    const minutes = realtime.per_minute;
    const busiest = Math.max(0, ...minutes.map((m) => m.count));
    this.perMinute.update(
      {
        xs: minutes.map((m) => Date.parse(m.minute) / 1000),
        xLabels: minutes.map((m) => time(m.minute)),
        series: [{ label: "Events", values: minutes.map((m) => m.count) }],
      },
      `${count(realtime.last_hour)} events in the last hour; the busiest minute had ${count(busiest)}.`,
    );
  }

  private tick(): void {
    for (const element of this.element.querySelectorAll<HTMLTimeElement>("time[data-live]")) {
      element.textContent = element.dataset.ago === "for" ? since(element.dateTime) : ago(element.dateTime);
    }
    const last = this.element.querySelector<HTMLTimeElement>("#last-event time");
    if (last) last.textContent = ago(last.dateTime);
  }

  // ---- Click-to-Unlock ------------------------------------------------------

  private buildClicks(): HTMLElement {
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
            checked: w.days === this.days,
            onchange: () => {
              this.days = w.days;
              void this.loadMetrics();
            },
          }),
          h("span", {}, w.label),
        ),
      ),
    );
    const csv = h("button", { type: "button", class: "quiet", id: "clicks-csv", onclick: () => this.downloadClicks() }, "Download CSV");
    this.clicks.element.append(
      h("div", { class: "toolbar" }, choices, csv),
      h("p", { class: "note", id: "timezone" }),
      h("div", { class: "tiles", id: "click-totals" }),
      this.dailyClicks.element,
      this.hourlyClicks.element,
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
    return this.clicks.element;
  }

  private async loadMetrics(): Promise<void> {
    const days = this.days;
    try {
      const metrics = await this.api.metrics(days);
      if (days !== this.days) return;
      this.metrics = metrics;
      this.showMetrics(metrics);
    } catch (error) {
      this.context.failed(error, this.clicks.state);
    }
  }

  private showMetrics(metrics: Metrics): void {
    const root = this.clicks.element;
    const clicks = metrics.button_clicks;
    const { window } = metrics;
    ok(this.clicks.state, clicks.total ? "" : "No button clicks in this window yet.");
    byId(root, "timezone").textContent =
      `${window.from === window.to ? window.from : `${window.from} to ${window.to}`}, days counted in ${window.timezone} (PULSE_TIMEZONE).`;
    const buttons = buttonOrder(Object.keys(clicks.by_button));
    fill(
      byId(root, "click-totals"),
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
    this.dailyClicks.update(
      {
        xs: daily.map((_, i) => i),
        xLabels: daily.map((d) => d.date),
        series: buttons.map((button) => ({ label: button, values: daily.map((d) => d.by_button[button] ?? 0) })),
      },
      `${count(clicks.total)} clicks over ${daily.length} ${daily.length === 1 ? "day" : "days"}: ${buttons.map((b) => `${b} ${count(clicks.by_button[b] ?? 0)}`).join(", ")}.`,
    );
    const peak = clicks.hourly.indexOf(Math.max(...clicks.hourly));
    this.hourlyClicks.update(
      {
        xs: clicks.hourly.map((_, i) => i),
        xLabels: clicks.hourly.map((_, i) => `${String(i).padStart(2, "0")}:00`),
        series: [{ label: "Clicks", values: clicks.hourly }],
      },
      clicks.total
        ? `Busiest hour: ${String(peak).padStart(2, "0")}:00 with ${count(clicks.hourly[peak] ?? 0)} clicks (${window.timezone}).`
        : "No clicks yet.",
    );
    const rt = metrics.response_time_ms;
    byId(root, "rt-avg").textContent = duration(rt.avg);
    byId(root, "rt-p50").textContent = duration(rt.p50);
    byId(root, "rt-p95").textContent = duration(rt.p95);
    byId(root, "rt-count").textContent = count(rt.count);
    byId(root, "delivery-rate").textContent = percent(metrics.delivery_success_rate);
    for (const status of ["sent", "delivered", "read", "failed"] as const) {
      byId(root, `status-${status}`).textContent = count(metrics.statuses[status]);
    }
    byId(root, "status-failed").classList.toggle("bad", metrics.statuses.failed > 0);
  }

  private downloadClicks(): void {
    const metrics = this.metrics;
    if (!metrics) return;
    const buttons = buttonOrder(Object.keys(metrics.button_clicks.by_button));
    const rows = metrics.button_clicks.daily.map((d) => [d.date, ...buttons.map((b) => d.by_button[b] ?? 0), d.total]);
    download(`pulse-clicks-${metrics.window.from}-to-${metrics.window.to}.csv`, toCsv(["date", ...buttons, "total"], rows));
  }

  // ---- Conversations --------------------------------------------------------

  private buildChats(): HTMLElement {
    this.chats.element.append(
      h(
        "dl",
        { class: "stats" },
        stat("Active now (last 30 min)", "active-conversations"),
        stat("Chats today", "daily-chat-volume"),
        stat("Waiting for a reply", "pending-count"),
      ),
      h("div", { class: "table-scroll", id: "conversation-table", tabindex: 0, role: "region", "aria-label": "Conversations list" }),
    );
    return this.chats.element;
  }

  private async loadConversations(): Promise<void> {
    try {
      this.showConversations(await this.api.conversations(CONVERSATIONS_SHOWN));
    } catch (error) {
      this.context.failed(error, this.chats.state);
    }
  }

  private showConversations(data: Conversations): void {
    const root = this.chats.element;
    ok(this.chats.state, data.conversations.length ? "" : "No conversations yet.");
    byId(root, "active-conversations").textContent = count(data.active_conversations);
    byId(root, "daily-chat-volume").textContent = count(data.daily_chat_volume);
    const pending = data.conversations.filter((c) => c.reply_pending).length;
    byId(root, "pending-count").textContent = count(pending);
    const rows = data.conversations.map((c) =>
      h(
        "tr",
        { class: c.reply_pending ? "pending" : null },
        h("th", { scope: "row" }, h("span", { class: "name" }, c.name || "(no name)"), h("span", { class: "phone" }, c.wa_id)),
        h("td", {}, h("time", { datetime: c.last_activity, title: dateTime(c.last_activity), "data-live": "" }, ago(c.last_activity))),
        h("td", { class: "num" }, count(c.messages_in)),
        h("td", { class: "num" }, count(c.messages_out)),
        h("td", {}, c.last_button ?? "–"),
        h(
          "td",
          {},
          c.reply_pending
            ? h(
                "span",
                { class: "badge warn" },
                "Waiting ",
                c.pending_since
                  ? h(
                      "time",
                      { datetime: c.pending_since, title: dateTime(c.pending_since), "data-live": "", "data-ago": "for" },
                      since(c.pending_since),
                    )
                  : null,
              )
            : "Answered",
        ),
      ),
    );
    fill(
      byId(root, "conversation-table"),
      data.conversations.length
        ? h(
            "table",
            { class: "data" },
            h("caption", { class: "visually-hidden" }, "Conversations, most recent first"),
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ["Contact", "Last activity", "In", "Out", "Last button", "Reply"].map((t, i) =>
                  h("th", { scope: "col", class: i === 2 || i === 3 ? "num" : null }, t),
                ),
              ),
            ),
            h("tbody", {}, rows),
          )
        : null,
    );
  }

  // ---- Live feed ------------------------------------------------------------

  private buildFeed(): HTMLElement {
    this.pauseButton.addEventListener("click", () => this.togglePause());
    this.feed.state.textContent = "Waiting for events…";
    this.feed.element.append(h("div", { class: "toolbar" }, this.pauseButton, this.newCount), this.feedList);
    return this.feed.element;
  }

  private showLiveState(state: LiveState): void {
    const text = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", offline: "Offline" }[state];
    this.liveState.textContent = text;
    this.liveState.dataset.state = state;
    this.liveState.dataset.tone = state === "live" ? "good" : state === "offline" ? "bad" : "warn";
  }

  /** The feed starts with what just happened, not empty. */
  private async loadRecent(): Promise<void> {
    try {
      const page = await this.api.events({ limit: 20 });
      const fresh = page.events.filter((event) => !this.feedIds.has(event.id)).reverse();
      fresh.forEach((event) => this.feedIds.add(event.id));
      this.queued.unshift(...fresh);
      if (!this.frame) this.frame = requestAnimationFrame(() => this.renderFrame());
      if (!page.events.length) ok(this.feed.state, "Waiting for events…");
    } catch (error) {
      this.context.failed(error, this.feed.state);
    }
  }

  private receive(incoming: PulseEvent[]): void {
    const events = incoming.filter((event) => !this.feedIds.has(event.id));
    events.forEach((event) => this.feedIds.add(event.id));
    if (this.feedIds.size > 4 * FEED_SIZE) {
      // Only ids still in the feed or its queue can come back.
      const keep = new Set([...this.feedList.querySelectorAll<HTMLElement>("[data-id]")].map((li) => li.dataset.id!));
      this.queued.forEach((event) => keep.add(event.id));
      this.feedIds = keep;
    }
    if (!events.length) return;
    this.countLive(events);
    if (this.paused) {
      this.heldBack += events.length;
      this.newCount.textContent = `${count(this.heldBack)} new`;
    }
    this.queued.push(...events);
    // Bounded: only the newest FEED_SIZE can ever be shown.
    if (this.queued.length > FEED_SIZE) this.queued.splice(0, this.queued.length - FEED_SIZE);
    if (!this.frame) this.frame = requestAnimationFrame(() => this.renderFrame());
    // At most one refresh per interval, however steady the stream.
    this.refreshTimer ??= window.setTimeout(() => {
      this.refreshTimer = undefined;
      void this.loadMetrics();
      void this.loadConversations();
      void this.loadStatus();
    }, REFRESH_AFTER_EVENTS_MS);
  }

  /** Moves the realtime counters at once; the next poll sets them exactly. */
  private countLive(events: PulseEvent[]): void {
    const realtime = this.realtime;
    if (!realtime) return;
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

  /** One DOM update per frame, whatever the rate; the counters and their chart at most every 250 ms. */
  private renderFrame(): void {
    this.frame = 0;
    const now = performance.now();
    if (now - this.realtimeShownAt >= 250) {
      this.realtimeShownAt = now;
      this.showRealtime();
    } else if (!this.realtimeTimer) {
      this.realtimeTimer = window.setTimeout(() => {
        this.realtimeTimer = undefined;
        this.realtimeShownAt = performance.now();
        this.showRealtime();
      }, 250);
    }
    if (!this.paused) this.renderFeed();
  }

  private renderFeed(): void {
    const events = this.queued.splice(0);
    if (!events.length) return;
    const items = events.reverse().map((event) => this.feedItem(event));
    this.feedList.prepend(...items);
    while (this.feedList.children.length > FEED_SIZE) this.feedList.lastElementChild!.remove();
    ok(this.feed.state, "");
  }

  private feedItem(event: PulseEvent): HTMLElement {
    // The details are written when first opened: most events are never opened.
    const raw = h("pre", { class: "raw" });
    const toggle = (): void => {
      if (!raw.textContent) raw.textContent = JSON.stringify(event, null, 2);
    };
    return h(
      "li",
      { class: `event${isFailure(event) ? " failed" : ""}`, "data-type": event.type, "data-id": event.id },
      h(
        "details",
        { ontoggle: toggle },
        h(
          "summary",
          {},
          h("time", { datetime: event.occurred_at, title: dateTime(event.occurred_at) }, time(event.occurred_at)),
          h("span", { class: "type" }, typeLabel(event.type)),
          h("span", { class: "what" }, describe(event)),
          h("span", { class: "who" }, who(event)),
        ),
        raw,
      ),
    );
  }

  private togglePause(): void {
    this.paused = !this.paused;
    this.pauseButton.textContent = this.paused ? "Resume" : "Pause";
    this.pauseButton.setAttribute("aria-pressed", String(this.paused));
    if (!this.paused) {
      this.heldBack = 0;
      this.newCount.textContent = "";
      this.renderFeed();
    } else {
      this.newCount.textContent = "0 new";
    }
  }
}
