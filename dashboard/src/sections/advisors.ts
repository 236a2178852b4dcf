// Advisors: who engages. The window's advisors with their own figures, by
// segment (the funnel's counts on the tabs), or behind a failure code; a name
// search, sortable columns, pages and CSV; and a panel with one advisor's
// figures and timeline, read as a conversation.

import type { ContactDetail, ContactSummary, PulseEvent, SegmentName, Segments } from "../api";
import { download, toCsv } from "../csv";
import { count, dateTime, fill, h, time, when } from "../dom";
import { segments, type Stage } from "./funnel";
import { ok, section, type Context } from "./section";

export const SEGMENT_LABELS: Record<SegmentName, string> = {
  engaged: "Engaged",
  reading: "Reading, no click",
  unread: "Delivered, unread",
  unreached: "Not reached",
  none: "Nothing sent",
};
const SEGMENTS = Object.keys(SEGMENT_LABELS) as SegmentName[];
type Tab = SegmentName | "all";

const PAGE = 200;

const STAGE_WORDS: Record<Stage, string> = { sent: "sent", delivered: "delivered", read: "read", clicked: "clicked", failed: "failed" };

/** The columns, each with how it sorts. */
const COLUMNS: { id: string; label: string; value: (c: ContactSummary) => string | number; numeric?: boolean }[] = [
  { id: "name", label: "Advisor", value: (c) => (c.name ?? "").toLocaleLowerCase() },
  { id: "segment", label: "Segment", value: (c) => SEGMENTS.indexOf(c.segment) },
  { id: "sent", label: "Sent", value: (c) => c.window.sent, numeric: true },
  { id: "read", label: "Read", value: (c) => c.window.read, numeric: true },
  { id: "clicked", label: "Clicked", value: (c) => c.window.clicked, numeric: true },
  { id: "failed", label: "Failed", value: (c) => c.window.failed, numeric: true },
  { id: "activity", label: "Last activity", value: (c) => c.last_activity },
];

export interface AdvisorsSection {
  element: HTMLElement;
  load(days?: number): Promise<void>;
  /** The funnel's segment counts, for the tabs. */
  showCounts(contacts: Segments): void;
  /** Lists a segment's advisors, those behind a failure code or with a message at a stage, and moves there. */
  open(filter: { segment?: SegmentName; code?: number | null; stage?: Stage }): void;
}

export function createAdvisors(context: Context): AdvisorsSection {
  const { element, state } = section("advisors", "Advisors");
  let days = 7;
  let tab: Tab = "all";
  let code: string | undefined;
  /** Only the advisors with a message of the window at this stage (of those loaded). */
  let stage: Stage | undefined;
  let rows: ContactSummary[] = [];
  let next: string | null = null;
  let sort = { column: "activity", descending: true };
  let generation = 0;

  const tabs = segments<Tab>(
    "advisor-segment",
    "Segment",
    [{ value: "all", label: "All" }, ...SEGMENTS.map((s) => ({ value: s, label: SEGMENT_LABELS[s] }))],
    tab,
    (value) => {
      tab = value;
      code = undefined;
      stage = undefined;
      rows = [];
      void load();
    },
  );
  const search = h("input", {
    type: "search",
    id: "advisor-search",
    placeholder: "Name",
    autocomplete: "off",
    oninput: () => show(),
  });
  const codeChip = h("p", { class: "note", id: "advisor-code" });
  const table = h("div", { class: "table-scroll", id: "advisor-table", tabindex: 0, role: "region", "aria-label": "Advisors list" });
  const more = h(
    "button",
    { type: "button", class: "quiet", id: "advisors-more", hidden: true, onclick: () => void loadMore() },
    "Load more",
  );
  const csv = h("button", { type: "button", class: "quiet", id: "advisors-csv", onclick: () => exportCsv() }, "Download CSV");
  const panel = createPanel(context, () => days);

  element.append(
    h("div", { class: "toolbar" }, tabs, h("label", { class: "search" }, "Find by name ", search)),
    codeChip,
    h("p", { class: "note", id: "advisors-note", "aria-live": "polite" }),
    table,
    h("div", { class: "toolbar" }, more, csv),
    panel.element,
  );

  async function load(newDays = days): Promise<void> {
    if (newDays !== days) rows = [];
    days = newDays;
    const asked = ++generation;
    try {
      // A refresh keeps what was loaded (up to the API's 200).
      const limit = Math.min(200, Math.max(PAGE, rows.length));
      const page = await context.api.contacts({ days, segment: tab === "all" ? undefined : tab, code, limit });
      if (asked !== generation) return;
      rows = page.contacts;
      next = page.next ?? null;
      show();
    } catch (error) {
      context.failed(error, state);
    }
  }

  async function loadMore(): Promise<void> {
    if (!next) return;
    const asked = generation;
    try {
      const page = await context.api.contacts({ days, segment: tab === "all" ? undefined : tab, code, limit: PAGE, cursor: next });
      if (asked !== generation) return;
      rows = rows.concat(page.contacts);
      next = page.next ?? null;
      show();
    } catch (error) {
      context.failed(error, state);
    }
  }

  function shown(): ContactSummary[] {
    const wanted = search.value.trim().toLocaleLowerCase();
    const column = COLUMNS.find((c) => c.id === sort.column)!;
    const order = sort.descending ? -1 : 1;
    return rows
      .filter((c) => !stage || c.window[stage] > 0)
      .filter((c) => !wanted || (c.name ?? "").toLocaleLowerCase().includes(wanted))
      .sort((a, b) => {
        const [x, y] = [column.value(a), column.value(b)];
        return (x < y ? -1 : x > y ? 1 : 0) * order;
      });
  }

  function show(): void {
    const list = shown();
    ok(
      state,
      rows.length ? "" : code ? `No advisor's message failed with ${code} in this window.` : "No advisor in this segment in this window.",
    );
    codeChip.replaceChildren();
    const narrowed = code
      ? `Advisors with a message that failed with code ${code}. `
      : stage
        ? `Advisors with a message ${STAGE_WORDS[stage]} in this window. `
        : "";
    if (narrowed) {
      codeChip.append(narrowed, h("button", { type: "button", class: "quiet", onclick: () => void showAll() }, "Show all advisors"));
    }
    element.querySelector("#advisors-note")!.textContent = rows.length
      ? `${count(list.length)} of ${count(rows.length)} advisors loaded${next ? " (more to load)" : ""}, with their messages of the last ${days} ${days === 1 ? "day" : "days"}.`
      : "";
    more.hidden = !next;
    fill(
      table,
      list.length
        ? h(
            "table",
            { class: "data advisors" },
            h("caption", { class: "visually-hidden" }, "Advisors, with their messages in this window"),
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                COLUMNS.map((column) =>
                  h(
                    "th",
                    {
                      scope: "col",
                      class: column.numeric ? "num" : null,
                      "aria-sort": sort.column === column.id ? (sort.descending ? "descending" : "ascending") : null,
                    },
                    h("button", { type: "button", class: "sort", "data-sort": column.id, onclick: () => sortBy(column.id) }, column.label),
                  ),
                ),
              ),
            ),
            h(
              "tbody",
              {},
              list.map((c) =>
                h(
                  "tr",
                  { "data-key": c.key, "data-segment": c.segment },
                  h(
                    "th",
                    { scope: "row" },
                    h(
                      "button",
                      { type: "button", class: "link", onclick: (e: Event) => void panel.open(c.key, e.currentTarget as HTMLElement) },
                      c.name || "(no name)",
                    ),
                    h("span", { class: "phone" }, c.wa_id),
                  ),
                  h("td", { "data-label": "Segment" }, h("span", { class: `segment ${c.segment}` }, SEGMENT_LABELS[c.segment])),
                  h("td", { class: "num", "data-label": "Sent" }, count(c.window.sent)),
                  h("td", { class: "num", "data-label": "Read" }, count(c.window.read)),
                  h("td", { class: "num", "data-label": "Clicked" }, count(c.window.clicked)),
                  h("td", { class: "num", "data-label": "Failed" }, count(c.window.failed)),
                  h(
                    "td",
                    { "data-label": "Last activity" },
                    h("time", { datetime: c.last_activity, title: dateTime(c.last_activity) }, when(c.last_activity)),
                  ),
                ),
              ),
            ),
          )
        : null,
    );
  }

  function sortBy(column: string): void {
    sort = { column, descending: sort.column === column ? !sort.descending : column !== "name" };
    show();
    table.querySelector<HTMLButtonElement>(`button[data-sort="${column}"]`)?.focus();
  }

  function showAll(): void {
    code = undefined;
    stage = undefined;
    rows = [];
    setTab("all");
    void load();
  }

  function setTab(value: Tab): void {
    tab = value;
    const input = tabs.querySelector<HTMLInputElement>(`input[value="${value}"]`);
    if (input) input.checked = true;
  }

  function showCounts(contacts: Segments): void {
    const total = SEGMENTS.reduce((sum, s) => sum + contacts[s], 0);
    for (const value of ["all", ...SEGMENTS] as Tab[]) {
      const label = tabs.querySelector(`input[value="${value}"] + span`);
      const n = value === "all" ? total : contacts[value];
      if (label) label.textContent = `${value === "all" ? "All" : SEGMENT_LABELS[value]} (${count(n)})`;
    }
  }

  function open(filter: { segment?: SegmentName; code?: number | null; stage?: Stage }): void {
    stage = filter.stage;
    if (filter.code !== undefined) {
      code = filter.code === null ? "none" : String(filter.code);
      setTab("all");
    } else {
      code = undefined;
      setTab(filter.segment ?? "all");
    }
    search.value = "";
    rows = [];
    void load().then(() => {
      element.scrollIntoView({ block: "start" });
      element.querySelector<HTMLElement>("#advisor-table")?.focus();
    });
  }

  function exportCsv(): void {
    const header = [
      "name",
      "wa_id",
      "segment",
      "sent",
      "delivered",
      "read",
      "clicked",
      "failed",
      "clicks",
      "inbound",
      "last_activity",
      "last_click",
      "last_read",
      "last_failure",
      "last_failure_code",
    ];
    const cells = shown().map((c) => [
      c.name,
      c.wa_id,
      c.segment,
      c.window.sent,
      c.window.delivered,
      c.window.read,
      c.window.clicked,
      c.window.failed,
      c.window.clicks,
      c.window.inbound,
      c.last_activity,
      c.last_click,
      c.last_read,
      c.last_failure,
      c.last_failure_code,
    ]);
    download(`pulse-advisors-${days}d.csv`, toCsv(header, cells));
  }

  return { element, load, showCounts, open };
}

/** The panel of one advisor: its figures, then its timeline as a conversation. */
function createPanel(context: Context, days: () => number) {
  const title = h("h3", { id: "advisor-panel-title" }, "Advisor");
  const body = h("div", { class: "panel-body" });
  const dialog = h(
    "dialog",
    { id: "advisor-panel", class: "panel", "aria-labelledby": "advisor-panel-title" },
    h("div", { class: "panel-head" }, title, h("button", { type: "button", class: "quiet", onclick: () => dialog.close() }, "Close")),
    body,
  );
  let opener: HTMLElement | null = null;
  dialog.addEventListener("close", () => opener?.focus());

  async function open(key: string, from: HTMLElement): Promise<void> {
    opener = from;
    title.textContent = "Advisor";
    fill(body, h("p", { class: "state", role: "status" }, "Loading…"));
    dialog.showModal();
    try {
      const [contact, timeline] = await Promise.all([context.api.contact(key, days()), context.api.events({ contact: key, limit: 200 })]);
      title.textContent = `${contact.name || "(no name)"} · ${contact.wa_id}`;
      fill(
        body,
        figures(contact),
        conversation(timeline.events),
        timeline.next ? h("p", { class: "note" }, "Older events are in the event log.") : null,
      );
    } catch (error) {
      context.failed(error, body.querySelector<HTMLElement>(".state") ?? undefined);
    }
  }

  return { element: dialog, open };
}

function figures(contact: ContactDetail): HTMLElement {
  const row = (label: string, f: ContactDetail["window"]) =>
    h(
      "tr",
      {},
      h("th", { scope: "row" }, label),
      [f.sent, f.delivered, f.read, f.clicked, f.failed, f.clicks, f.inbound].map((n) => h("td", { class: "num" }, count(n))),
    );
  const period = contact.period;
  return h(
    "div",
    { class: "panel-figures" },
    h(
      "p",
      {},
      h("span", { class: `segment ${contact.segment}` }, SEGMENT_LABELS[contact.segment]),
      ` in ${period.from === period.to ? period.from : `${period.from} to ${period.to}`}.`,
    ),
    h(
      "div",
      { class: "table-scroll" },
      h(
        "table",
        { class: "data", id: "advisor-figures" },
        h("caption", { class: "visually-hidden" }, "The advisor's messages, clicks and inbound messages"),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("td", {}),
            ["Sent", "Delivered", "Read", "Clicked", "Failed", "Clicks", "Inbound"].map((l) => h("th", { scope: "col", class: "num" }, l)),
          ),
        ),
        h("tbody", {}, row("This window", contact.window), row("Since first seen", contact.lifetime)),
      ),
    ),
  );
}

const STATUS_LABELS: Record<string, string> = { sent: "Sent", delivered: "Delivered", read: "Read", failed: "Failed" };

/**
 * The timeline, oldest first: each outbound message once, with its statuses;
 * each inbound message or click; a click's answer (the next outbound message
 * within a day) marked as such.
 */
function conversation(events: PulseEvent[]): HTMLElement {
  type Item = { at: string; side: "in" | "out"; node: HTMLElement; messageId?: string };
  const items: Item[] = [];
  const outbound = new Map<string, { at: string; statuses: PulseEvent[] }>();
  for (const event of [...events].reverse()) {
    if (event.type === "status_update" && event.message_id) {
      const message = outbound.get(event.message_id) ?? { at: event.occurred_at, statuses: [] };
      if (event.occurred_at < message.at) message.at = event.occurred_at;
      message.statuses.push(event);
      outbound.set(event.message_id, message);
    } else if (event.type !== "status_update" && event.type !== "other_update") {
      items.push({ at: event.occurred_at, side: "in", node: inbound(event), messageId: event.context_message_id ?? undefined });
    }
  }
  for (const [id, message] of outbound) {
    const statuses = message.statuses
      .sort((a, b) => a.occurred_at.localeCompare(b.occurred_at))
      .map((s) =>
        h(
          "li",
          { class: `status ${s.status === "failed" ? "bad" : ""}` },
          `${STATUS_LABELS[s.status ?? ""] ?? s.status} `,
          h("time", { datetime: s.occurred_at, title: dateTime(s.occurred_at) }, time(s.occurred_at)),
          s.status === "failed" && s.error ? ` · ${s.error.code ?? ""} ${s.error.title ?? ""}` : "",
        ),
      );
    const category = message.statuses.find((s) => s.category)?.category;
    items.push({
      at: message.at,
      side: "out",
      messageId: id,
      node: h(
        "div",
        {},
        h("p", { class: "what" }, `Message ${id}${category ? ` (${category})` : ""}`),
        h("ul", { class: "statuses", "aria-label": "Its statuses" }, statuses),
      ),
    });
  }
  items.sort((a, b) => a.at.localeCompare(b.at));
  // A click is answered by the next outbound message within a day.
  for (let i = 0; i < items.length; i++) {
    const click = items[i];
    if (click.side !== "in" || !click.node.hasAttribute("data-click")) continue;
    const answer = items.slice(i + 1).find((item) => item.side === "out");
    const answers = answer && Date.parse(answer.at) - Date.parse(click.at) <= 86_400_000;
    if (answer && answers && !answer.node.querySelector(".badge")) {
      answer.node.prepend(h("span", { class: "badge" }, "Answer to the click"));
    }
  }
  if (!items.length) return h("p", { class: "note" }, "No events of this advisor are kept.");
  return h(
    "ol",
    { class: "conversation", "aria-label": "Timeline, oldest first" },
    items.map((item) =>
      h(
        "li",
        { class: `bubble ${item.side}` },
        h(
          "span",
          { class: "who" },
          item.side === "in" ? "Advisor" : "Sent to the advisor",
          " · ",
          h("time", { datetime: item.at, title: dateTime(item.at) }, when(item.at)),
        ),
        item.node,
      ),
    ),
  );
}

function inbound(event: PulseEvent): HTMLElement {
  switch (event.type) {
    case "button_click":
      return h(
        "p",
        { class: "what", "data-click": "" },
        "Clicked ",
        h("strong", {}, event.button_id ?? "a button"),
        event.context_message_id ? ` on message ${event.context_message_id}` : "",
      );
    case "text_message":
      return h("p", { class: "what" }, event.body ?? "");
    case "media_message":
      return h("p", { class: "what" }, `${event.media_type ?? "Media"}${event.caption ? `: ${event.caption}` : ""}`);
    default:
      return h("p", { class: "what" }, event.type.replaceAll("_", " "));
  }
}
