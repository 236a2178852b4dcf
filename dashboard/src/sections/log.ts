// The event log: every stored event, newest first, filtered by type, text or
// failed delivery, a page at a time, and the page as CSV.

import { EVENT_TYPES, type PulseEvent } from "../api";
import { download, toCsv } from "../csv";
import { dateTime, fill, h, when } from "../dom";
import { describe, isFailure, typeLabel, who } from "../events";
import { ok, section, type Context } from "./section";

const LOG_PAGE = 25;

export interface Log {
  element: HTMLElement;
  load(): Promise<void>;
}

export function createLog(context: Context): Log {
  const { element, state } = section("log", "Event log");
  let query = { type: "", q: "", failed: false };
  /** `before` cursors of the pages behind the current one; the current page's own. */
  let cursors: string[] = [];
  let before: string | undefined;
  let next: string | null = null;
  let events: PulseEvent[] = [];

  const type = h(
    "select",
    { id: "log-type", name: "type" },
    h("option", { value: "" }, "All types"),
    EVENT_TYPES.map((t) => h("option", { value: t.type }, t.label)),
  );
  const search = h("input", { id: "log-search", name: "q", type: "search", maxlength: 200, placeholder: "text, button, status…" });
  const failed = h("input", { id: "log-failed", name: "failed", type: "checkbox" });
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter the event log" },
    h("label", { for: "log-type" }, "Type"),
    type,
    h("label", { for: "log-search" }, "Search"),
    search,
    h("label", { class: "check" }, failed, " Failed deliveries only"),
    h("button", { type: "submit" }, "Apply"),
  );
  form.addEventListener("submit", (submit) => {
    submit.preventDefault();
    query = { type: type.value, q: search.value.trim(), failed: failed.checked };
    type.disabled = failed.checked;
    cursors = [];
    before = undefined;
    void load();
  });
  failed.addEventListener("change", () => form.requestSubmit());
  type.addEventListener("change", () => form.requestSubmit());
  const table = h("div", { class: "table-scroll", id: "log-table", tabindex: 0, role: "region", "aria-label": "Event log" });
  const newer = h("button", { type: "button", id: "log-newer", class: "quiet", onclick: pageNewer }, "← Newer");
  const older = h("button", { type: "button", id: "log-older", class: "quiet", onclick: pageOlder }, "Older →");
  const pageNumber = h("span", { id: "log-page" });
  const csv = h("button", { type: "button", id: "log-csv", class: "quiet", onclick: downloadPage }, "Download CSV");
  element.append(form, table, h("nav", { class: "pager", "aria-label": "Event log pages" }, newer, pageNumber, older, csv));

  async function load(): Promise<void> {
    const { type, q, failed } = query;
    try {
      // Failed deliveries: status updates whose status (or error) says "failed".
      const page = await context.api.events({
        type: failed ? "status_update" : type || undefined,
        q: failed ? "failed" : q || undefined,
        before,
        limit: LOG_PAGE,
      });
      events = failed ? page.events.filter(isFailure) : page.events;
      next = page.next ?? null;
      show();
    } catch (error) {
      context.failed(error, state);
    }
  }

  function show(): void {
    ok(state, events.length ? "" : next ? "No matching event on this page; older pages may have some." : "No matching event.");
    const rows = events.map((event) =>
      h(
        "tr",
        { class: isFailure(event) ? "failed" : null, "data-id": event.id },
        h("td", { class: "when" }, h("time", { datetime: event.occurred_at, title: dateTime(event.occurred_at) }, when(event.occurred_at))),
        h("td", {}, typeLabel(event.type), isFailure(event) ? h("span", { class: "badge bad" }, "failed") : null),
        h("td", { class: "what" }, describe(event)),
        h("td", { class: "who" }, who(event)),
      ),
    );
    fill(
      table,
      events.length
        ? h(
            "table",
            { class: "data log" },
            h("caption", { class: "visually-hidden" }, "Events, newest first"),
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ["Time", "Type", "What", "Contact"].map((t) => h("th", { scope: "col" }, t)),
              ),
            ),
            h("tbody", {}, rows),
          )
        : null,
    );
    newer.disabled = cursors.length === 0 && before === undefined;
    older.disabled = !next;
    pageNumber.textContent = `Page ${cursors.length + (before === undefined ? 1 : 2)}`;
  }

  function pageOlder(): void {
    if (!next) return;
    if (before !== undefined) cursors.push(before);
    before = next;
    void load();
  }

  function pageNewer(): void {
    before = cursors.pop();
    void load();
  }

  function downloadPage(): void {
    const header = ["id", "type", "occurred_at", "received_at", "contact", "name", "what", "status", "error_code", "error_title"];
    const rows = events.map((e) => [
      e.id,
      e.type,
      e.occurred_at,
      e.received_at,
      e.contact?.wa_id,
      e.contact?.name,
      describe(e),
      e.status,
      e.error?.code,
      e.error?.title,
    ]);
    download("pulse-events.csv", toCsv(header, rows));
  }

  return { element, load };
}
