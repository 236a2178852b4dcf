// Why sends fail: the window's failed messages by Meta's error code, with its
// title, the advisors behind it, what to do about it, and the trend per day.

import type { Failures } from "../api";
import { BarChart } from "../charts";
import { count, fill, h } from "../dom";
import { ok, section, type Context } from "./section";

/** One plain line on what to do, for the codes operators meet most. */
const ADVICE: Record<number, string> = {
  131047: "More than 24 hours since the advisor last wrote: send an approved template instead of a free-form message.",
  131026: "The number cannot receive it (no WhatsApp, old app, or not accepted the terms): check the number with the advisor.",
  131049: "Meta held back a marketing message to keep engagement healthy: send fewer marketing templates to this advisor, or use utility.",
  131050: "The advisor stopped marketing messages: only utility templates and service replies reach them now.",
  131048: "Too many messages flagged as spam: slow down and check the template's quality rating.",
  131056: "Too many messages to one advisor in a short time: space them out.",
  130472: "The advisor is in Meta's marketing experiment group: nothing to fix; it is not delivered by design.",
};

/** Template errors share a range: the template or its parameters. */
function advice(code: number | null | undefined): string {
  if (code === null || code === undefined) return "Meta gave no code: see the failed status in the feed.";
  if (ADVICE[code]) return ADVICE[code];
  if (code >= 132000 && code < 133000)
    return "A template error: check that the template exists, is approved, and gets the parameters it expects.";
  return "See Meta's error codes reference for this code.";
}

/** The most common codes get a series of their own in the trend. */
const TREND_CODES = 5;

export interface FailuresSection {
  element: HTMLElement;
  load(days?: number): Promise<void>;
}

/** `openCode` lists the advisors behind a code. */
export function createFailures(context: Context, openCode: (code: number | null) => void): FailuresSection {
  const { element, state } = section("failures", "Why sends fail");
  let days = 7;
  const table = h("div", { class: "table-scroll", id: "failure-table" });
  const trend = new BarChart({ title: "Failed messages per day by code", xTitle: "Day", time: false, stacked: true });
  element.append(h("p", { class: "note", id: "failures-total" }), table, trend.element);

  async function load(newDays = days): Promise<void> {
    days = newDays;
    const asked = days;
    try {
      const answer = await context.api.failures(asked);
      if (asked !== days) return;
      show(answer);
    } catch (error) {
      context.failed(error, state);
    }
  }

  function show(failures: Failures): void {
    const { window, codes } = failures;
    ok(state, failures.total ? "" : "No message failed in this window.");
    element.querySelector("#failures-total")!.textContent = failures.total
      ? `${count(failures.total)} messages failed from ${window.from} to ${window.to}.`
      : "";
    fill(
      table,
      codes.length
        ? h(
            "table",
            { class: "data failures" },
            h("caption", { class: "visually-hidden" }, "Failed messages by Meta's error code, most first"),
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                h("th", { scope: "col" }, "Code"),
                h("th", { scope: "col" }, "What Meta said"),
                h("th", { scope: "col", class: "num" }, "Messages"),
                h("th", { scope: "col", class: "num" }, "Advisors"),
                h("th", { scope: "col" }, "What to do"),
              ),
            ),
            h(
              "tbody",
              {},
              codes.map((code) =>
                h(
                  "tr",
                  { "data-code": code.code ?? "none" },
                  h("th", { scope: "row" }, code.code === null || code.code === undefined ? "none" : String(code.code)),
                  h("td", { class: "what" }, code.title ?? "–"),
                  h("td", { class: "num", "data-label": "Messages", "data-messages": "" }, count(code.messages)),
                  h(
                    "td",
                    { class: "num", "data-label": "Advisors" },
                    h(
                      "button",
                      {
                        type: "button",
                        class: "figure",
                        "data-contacts": "",
                        "aria-label": `${count(code.contacts)} advisors: list them`,
                        onclick: () => openCode(code.code ?? null),
                      },
                      count(code.contacts),
                    ),
                  ),
                  h("td", { class: "what advice" }, advice(code.code)),
                ),
              ),
            ),
          )
        : null,
    );
    const top = codes.slice(0, TREND_CODES);
    const days = top[0]?.daily ?? [];
    const others = codes.slice(TREND_CODES);
    const series = top.map((code) => ({ label: String(code.code ?? "none"), values: code.daily.map((d) => d.messages) }));
    if (others.length) {
      series.push({
        label: "Other codes",
        values: days.map((_, i) => others.reduce((total, code) => total + (code.daily[i]?.messages ?? 0), 0)),
      });
    }
    trend.update(
      { xs: days.map((_, i) => i), xLabels: days.map((d) => d.date), series },
      failures.total
        ? `${count(failures.total)} failed; most often ${top[0]?.code ?? "without a code"} (${count(top[0]?.messages ?? 0)}).`
        : "No failures.",
    );
  }

  return { element, load };
}
