// The dashboard's sections, each fed by one REST route and moved by the live feed.

import { Api, health, type Config, type PulseEvent, type Realtime } from "./api";
import { BarChart } from "./charts";
import { ago, count, dateTime, fill, h, since, time, timeElement } from "./dom";
import { describe, isFailure, typeLabel, who } from "./events";
import { LiveConnection, type LiveState } from "./live";
import { createClicks, type Clicks } from "./sections/clicks";
import { createConversations, type ConversationsSection } from "./sections/conversations";
import { createLog, type Log } from "./sections/log";
import { byId, createContext, ok, section, stat, type Context } from "./sections/section";

/** The feed shows this many events; older ones leave it (the log has them all). */
const FEED_SIZE = 200;
const POLL_STATUS_MS = 10_000;
const POLL_METRICS_MS = 30_000;
/** Live events ask for fresh figures at most this often. */
const REFRESH_AFTER_EVENTS_MS = 2_000;

interface Callbacks {
  signOut(): void;
  expired(): void;
}

export class Dashboard {
  readonly element: HTMLElement;
  private readonly live: LiveConnection;
  private readonly timers: number[] = [];
  private realtime: Realtime | null = null;
  private refreshTimer: number | undefined;
  private realtimeTimer: number | undefined;
  private realtimeShownAt = 0;
  private readonly context: Context & { stop(): void };
  private readonly clicks: Clicks;
  private readonly chats: ConversationsSection;
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
    this.clicks = createClicks(this.context);
    this.chats = createConversations(this.context);
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
        h("div", { class: "column" }, this.buildStatus(), this.buildFeed(), this.chats.element),
        h("div", { class: "column wide" }, this.clicks.element, this.log.element),
      ),
    );
  }

  start(): void {
    this.live.start();
    void this.loadStatus();
    void this.clicks.load();
    void this.chats.load();
    void this.log.load();
    void this.loadRecent();
    this.timers.push(window.setInterval(() => void this.loadStatus(), POLL_STATUS_MS));
    this.timers.push(
      window.setInterval(() => {
        void this.clicks.load();
        void this.chats.load();
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
      void this.clicks.load();
      void this.chats.load();
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
