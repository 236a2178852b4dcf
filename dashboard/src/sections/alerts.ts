// Alerts: the rules the stack checks (WhatsApp silent, deliveries refused, sends
// failing, store failing). A banner at the top for each alert firing now, and the
// history of fires and resolves, newest first, with how each notification went.
// One poll of /api/webhook/alerts feeds both, and the events-per-minute chart.

import type { AlertNotification, AlertRule, Alerts, Transition } from "../api";
import { ago, dateTime, duration, fill, h, when } from "../dom";
import { ok, section, type Context } from "./section";

export const RULE_TITLES: Record<AlertRule, string> = {
  silence: "WhatsApp is silent",
  refused: "Deliveries refused",
  failures: "Sends failing",
  store: "Store failing",
};

export function ruleTitle(rule: string): string {
  return RULE_TITLES[rule as AlertRule] ?? rule;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/**
 * How a transition's notification went, for a person; `null` when there is
 * none (no ALERT_WEBHOOK_URL). `tone` is the badge's colour.
 */
export function notificationText(
  notification: AlertNotification | null | undefined,
): { text: string; tone: "good" | "warn" | "bad" } | null {
  if (!notification) return null;
  const { state, attempts, error } = notification;
  switch (state) {
    case "sent":
      return { text: attempts > 1 ? `Sent (after ${plural(attempts, "attempt")})` : "Sent", tone: "good" };
    case "failed":
      return { text: `Not delivered: ${error ?? "no answer"} (gave up after ${plural(attempts, "attempt")})`, tone: "bad" };
    default:
      return error
        ? { text: `Not delivered yet: ${error} (${plural(attempts, "attempt")}; retrying)`, tone: "bad" }
        : { text: "Being sent…", tone: "warn" };
  }
}

/** The same alert (a rule's firing) wherever it shows. */
const alertKey = (t: Transition): string => `${t.rule}@${t.since}`;

// ---- the banner --------------------------------------------------------------

export interface AlertBanner {
  /** The banner itself, hidden while no alert fires. */
  element: HTMLElement;
  /** A polite live region, always in the page, that says what fired and what resolved. */
  announcer: HTMLElement;
  show(alerts: Alerts): void;
}

export function createAlertBanner(): AlertBanner {
  const list = h("ul", { class: "alert-list" });
  const element = h(
    "section",
    { id: "alert-banner", class: "alert-banner", "aria-labelledby": "alert-banner-title", hidden: true },
    h(
      "div",
      { class: "alert-banner-head" },
      h("h2", { id: "alert-banner-title" }, "Active alerts"),
      h("a", { href: "#alerts" }, "Alert history"),
    ),
    list,
  );
  // Only what changed is written here, never the whole banner at each poll.
  const announcer = h("p", { id: "alert-announcer", class: "visually-hidden", role: "status", "aria-atomic": "true" });
  let shownKey = "";
  /** The alerts of the last poll, by key; `null` before the first. */
  let known: Map<string, Transition> | null = null;

  function show(alerts: Alerts): void {
    const { active } = alerts;
    const key = JSON.stringify(active);
    // Unchanged: left alone, so that focus and selection inside it stay put.
    if (key !== shownKey) {
      shownKey = key;
      element.hidden = active.length === 0;
      fill(list, active.map(item));
    }
    announce(active);
  }

  function announce(active: Transition[]): void {
    const now = new Map(active.map((t) => [alertKey(t), t]));
    const fired = [...now.values()].filter((t) => !known?.has(alertKey(t)));
    const resolved = known ? [...known.values()].filter((t) => !now.has(alertKey(t))) : [];
    known = now;
    if (!fired.length && !resolved.length) return;
    announcer.textContent = [
      ...fired.map((t) => `Alert: ${ruleTitle(t.rule)}. ${t.message}`),
      ...resolved.map((t) => `Resolved: ${ruleTitle(t.rule)}.`),
    ].join(" ");
  }

  function item(alert: Transition): HTMLElement {
    const notification = notificationText(alert.notification);
    return h(
      "li",
      { class: "alert-item", "data-rule": alert.rule },
      h("h3", {}, ruleTitle(alert.rule)),
      h(
        "p",
        { class: "alert-since" },
        "Since ",
        h("time", { datetime: alert.since, title: dateTime(alert.since) }, when(alert.since)),
        " (",
        h("time", { datetime: alert.since, "data-live": "" }, ago(alert.since)),
        ")",
      ),
      h("p", { class: "alert-message" }, alert.message),
      notification
        ? h(
            "p",
            { class: `alert-notification ${notification.tone}` },
            `Notification ${notification.text.charAt(0).toLowerCase()}${notification.text.slice(1)}`,
          )
        : null,
    );
  }

  return { element, announcer, show };
}

// ---- the history -------------------------------------------------------------

export interface AlertHistory {
  element: HTMLElement;
  /** Reads the alerts and shows them here, in the banner and on the chart (`shown`). */
  load(): Promise<void>;
}

export function createAlertHistory(context: Context, shown: (alerts: Alerts) => void): AlertHistory {
  const { element, state } = section("alerts", "Alert history");
  const note = h("p", { class: "note", id: "alerts-note" });
  const table = h("div", {
    class: "table-scroll",
    id: "alert-table",
    tabindex: 0,
    role: "region",
    "aria-label": "Alert fires and resolves",
  });
  element.append(note, table);
  let shownKey = "";

  async function load(): Promise<void> {
    try {
      const alerts = await context.api.alerts();
      show(alerts.recent);
      shown(alerts);
    } catch (error) {
      context.failed(error, state);
    }
  }

  function show(recent: Transition[]): void {
    ok(state, recent.length ? "" : "No alert has fired.");
    const key = JSON.stringify(recent);
    if (key === shownKey) return;
    shownKey = key;
    note.textContent = recent.length
      ? "Newest first; the latest 50 are listed."
      : "Pulse checks that WhatsApp is heard from, that its deliveries are accepted, that sends go through and that the store " +
        "answers. When one is not so, an alert shows at the top of the page, and here.";
    table.hidden = !recent.length;
    fill(
      table,
      recent.length
        ? h(
            "table",
            { class: "data alerts" },
            h("caption", { class: "visually-hidden" }, "Alerts fired and resolved, newest first"),
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ["Time", "Alert", "Change", "What to check", "Notification"].map((t) => h("th", { scope: "col" }, t)),
              ),
            ),
            h("tbody", {}, recent.map(row)),
          )
        : null,
    );
  }

  function row(transition: Transition): HTMLElement {
    const firing = transition.state === "firing";
    const notification = notificationText(transition.notification);
    const lasted = Date.parse(transition.at) - Date.parse(transition.since);
    return h(
      "tr",
      { class: firing ? "firing" : "resolved", "data-rule": transition.rule, "data-state": transition.state },
      h("td", { class: "when" }, h("time", { datetime: transition.at, title: dateTime(transition.at) }, when(transition.at))),
      h("th", { scope: "row" }, ruleTitle(transition.rule)),
      h(
        "td",
        { class: "change" },
        h("span", { class: `badge ${firing ? "bad" : "good"}` }, firing ? "Fired" : "Resolved"),
        firing ? null : h("span", { class: "lasted" }, ` after ${duration(Math.max(1000, lasted))}`),
      ),
      // A resolve repeats what fired it; the Change column already says it resolved.
      h("td", { class: "what" }, transition.message.replace(/^Resolved: /, "")),
      h(
        "td",
        { class: "notification", "data-label": "Notification:" },
        notification ? h("span", { class: notification.tone }, notification.text) : "–",
      ),
    );
  }

  return { element, load };
}
