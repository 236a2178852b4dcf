// The dashboard: its sections (sections/), each fed by one REST route, polled,
// and moved by the live feed between polls.

import type { Api, Config, PulseEvent } from "./api";
import { ago, h, since } from "./dom";
import { LiveConnection } from "./live";
import { createAdvisors } from "./sections/advisors";
import { createAlertBanner, createAlertHistory } from "./sections/alerts";
import { createClicks } from "./sections/clicks";
import { createConversations } from "./sections/conversations";
import { createFailures } from "./sections/failures";
import { createFeed } from "./sections/feed";
import { createFunnel } from "./sections/funnel";
import { createHeader } from "./sections/header";
import { createLog } from "./sections/log";
import { createContext } from "./sections/section";
import { createWebhook } from "./sections/webhook";

const POLL_STATUS_MS = 10_000;
const POLL_METRICS_MS = 30_000;
/** Live events ask for fresh figures at most this often. */
const REFRESH_AFTER_EVENTS_MS = 2_000;

export interface Callbacks {
  signOut(): void;
  /** The token was refused: the session has ended. */
  expired(): void;
}

export interface Dashboard {
  element: HTMLElement;
  start(): void;
  stop(): void;
}

export function createDashboard(api: Api, settings: Config, callbacks: Callbacks): Dashboard {
  const context = createContext(api, () => callbacks.expired());
  const header = createHeader(() => callbacks.signOut());
  const webhook = createWebhook(context, header.showWebhook);
  const feed = createFeed(context);
  const chats = createConversations(context);
  const advisors = createAdvisors(context);
  const failures = createFailures(context, (code) => advisors.open({ code }));
  const funnel = createFunnel(context, {
    windowChanged: (days) => {
      void failures.load(days);
      void advisors.load(days);
    },
    counted: (contacts) => advisors.showCounts(contacts),
    openSegment: (segment) => advisors.open({ segment }),
    openStage: (stage) => advisors.open({ stage }),
  });
  const banner = createAlertBanner();
  const alerts = createAlertHistory(context, (answer) => {
    banner.show(answer);
    webhook.showAlerts([...answer.active, ...answer.recent]);
  });
  const clicks = createClicks(context, settings.known_buttons);
  const log = createLog(context);
  const live = new LiveConnection(settings.websocket_url, api.token, {
    onEvents: receive,
    onState: header.showLiveState,
    onRefused: () => void api.realtime().catch((e) => context.failed(e)),
  });
  const timers: number[] = [];
  let refreshTimer: number | undefined;

  const element = h(
    "div",
    { class: "shell" },
    header.element,
    // The alerts firing now above all; then two columns on a desk; on a phone,
    // what is happening now comes first.
    h(
      "main",
      { id: "main", class: "grid" },
      banner.announcer,
      banner.element,
      h("div", { class: "column" }, webhook.element, feed.element, chats.element),
      h("div", { class: "column wide" }, funnel.element, failures.element, alerts.element, advisors.element, clicks.element, log.element),
    ),
  );

  function receive(incoming: PulseEvent[]): void {
    const events = feed.receive(incoming);
    if (!events.length) return;
    webhook.countLive(events);
    // At most one refresh per interval, however steady the stream.
    refreshTimer ??= window.setTimeout(() => {
      refreshTimer = undefined;
      void clicks.load();
      void chats.load();
      void webhook.load();
      void alerts.load();
      void funnel.load();
      void failures.load();
      void advisors.load();
    }, REFRESH_AFTER_EVENTS_MS);
  }

  /** "12 s ago" keeps moving between polls. */
  function tick(): void {
    for (const time of element.querySelectorAll<HTMLTimeElement>("time[data-live]")) {
      time.textContent = time.dataset.ago === "for" ? since(time.dateTime) : ago(time.dateTime);
    }
    const last = element.querySelector<HTMLTimeElement>("#last-event time");
    if (last) last.textContent = ago(last.dateTime);
  }

  function start(): void {
    live.start();
    void webhook.load();
    void alerts.load();
    void clicks.load();
    void funnel.load();
    void failures.load();
    void advisors.load();
    void chats.load();
    void log.load();
    void feed.loadRecent();
    timers.push(
      window.setInterval(() => {
        void webhook.load();
        void alerts.load();
      }, POLL_STATUS_MS),
    );
    timers.push(
      window.setInterval(() => {
        void clicks.load();
        void funnel.load();
        void failures.load();
        void advisors.load();
        void chats.load();
      }, POLL_METRICS_MS),
    );
    timers.push(window.setInterval(tick, 1_000));
  }

  function stop(): void {
    context.stop();
    live.stop();
    timers.forEach(clearInterval);
    clearTimeout(refreshTimer);
    webhook.stop();
    feed.stop();
  }

  return { element, start, stop };
}
