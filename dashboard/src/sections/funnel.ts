// Does the content land? The window's outbound messages stage by stage (sent →
// delivered → read → clicked → answered → answer delivered), for templates or
// service replies, per day, and how long each step takes.

import type { Funnel, SegmentName, Segments, Stages } from "../api";
import { BarChart } from "../charts";
import { count, duration, fill, h, percent } from "../dom";
import { byId, ok, section, stat, type Context } from "./section";

export const WINDOWS = [
  { days: 1, label: "Today" },
  { days: 7, label: "7 days" },
  { days: 30, label: "30 days" },
  { days: 90, label: "90 days" },
];

/** Which messages the funnel shows, by Meta's `pricing.category`. */
const KINDS = [
  { id: "all", label: "All messages", matches: () => true },
  { id: "templates", label: "Templates", matches: (c: string) => c !== "service" && c !== "unknown" },
  { id: "service", label: "Service replies", matches: (c: string) => c === "service" },
] as const;
type Kind = (typeof KINDS)[number]["id"];

const STAGES = ["sent", "delivered", "read", "clicked", "failed"] as const;
export type Stage = (typeof STAGES)[number];

function sum(rows: Stages[]): Stages {
  const total: Stages = { sent: 0, delivered: 0, read: 0, clicked: 0, failed: 0 };
  for (const row of rows) for (const stage of STAGES) total[stage] += row[stage];
  return total;
}

/** A radio group shown as segments; `change` gets the chosen value. */
export function segments<T extends string | number>(
  name: string,
  legend: string,
  choices: readonly { value: T; label: string }[],
  chosen: T,
  change: (value: T) => void,
): HTMLFieldSetElement {
  return h(
    "fieldset",
    { class: "segmented" },
    h("legend", {}, legend),
    choices.map((choice) =>
      h(
        "label",
        {},
        h("input", {
          type: "radio",
          name,
          value: String(choice.value),
          checked: choice.value === chosen,
          onchange: () => change(choice.value),
        }),
        h("span", {}, choice.label),
      ),
    ),
  );
}

/** A bar as wide as a share (set through the CSSOM: the page's CSP allows no inline style). */
function bar(share: number): HTMLElement {
  const fill = h("span", {});
  fill.style.width = `${Math.min(100, share * 100).toFixed(1)}%`;
  return h("span", { class: "stage-bar", "aria-hidden": "true" }, fill);
}

/**
 * A day's messages in parts that add up to those sent: clicked, read without a
 * click, delivered and unread, and not delivered (failed or still on its way).
 */
function parts(day: Stages): number[] {
  const clicked = day.clicked;
  const read = Math.max(0, day.read - clicked);
  const delivered = Math.max(0, day.delivered - Math.max(day.read, clicked));
  return [clicked, read, delivered, Math.max(0, day.sent - clicked - read - delivered)];
}

const PARTS = ["Clicked", "Read, no click", "Delivered, unread", "Not delivered yet"];

/** The window's advisors by how far its messages to them got (the API's `contacts`). */
const SEGMENTS: { id: SegmentName; label: string }[] = [
  { id: "engaged", label: "Engaged (clicked)" },
  { id: "reading", label: "Reading, no click" },
  { id: "unread", label: "Delivered, unread" },
  { id: "unreached", label: "Not reached" },
  { id: "none", label: "Nothing sent" },
];

/** What the funnel tells the sections that follow it. */
export interface FunnelListeners {
  /** The window changed: the sections that follow it load it. */
  windowChanged(days: number): void;
  /** The window's advisors by segment. */
  counted(contacts: Segments): void;
  /** A segment's count was chosen: show its advisors. */
  openSegment(segment: SegmentName): void;
  /** A stage was chosen: show the advisors with a message at it. */
  openStage(stage: Stage): void;
}

export interface FunnelSection {
  element: HTMLElement;
  load(): Promise<void>;
}

export function createFunnel(context: Context, listeners: FunnelListeners): FunnelSection {
  const { element, state } = section("funnel", "Content funnel");
  let days = 7;
  let kind: Kind = "all";
  let funnel: Funnel | null = null;
  const trend = new BarChart({ title: "Messages sent per day, by how far they got", xTitle: "Day", time: false, stacked: true });

  element.append(
    h(
      "div",
      { class: "toolbar" },
      segments(
        "funnel-window",
        "Window",
        WINDOWS.map((w) => ({ value: w.days, label: w.label })),
        days,
        (value) => {
          days = value;
          listeners.windowChanged(value);
          void load();
        },
      ),
      segments(
        "funnel-kind",
        "Messages",
        KINDS.map((k) => ({ value: k.id, label: k.label })),
        kind,
        (value) => {
          kind = value;
          if (funnel) show(funnel);
        },
      ),
    ),
    h("p", { class: "note", id: "funnel-window-note" }),
    h("ol", { class: "funnel", id: "funnel-stages", "aria-label": "Stages, each as a share of sent" }),
    h("p", { class: "note", id: "funnel-unattributed" }),
    trend.element,
    h(
      "dl",
      { class: "stats" },
      stat("Time to read (median)", "ttr-p50"),
      stat("Time to read (p95)", "ttr-p95"),
      stat("Time to click (median)", "ttc-p50"),
      stat("Time to click (p95)", "ttc-p95"),
      stat("Time to answer (median)", "answer-p50"),
      stat("Time to answer (p95)", "answer-p95"),
    ),
    h("h3", { id: "segments-title" }, "Advisors in this window"),
    h("p", { class: "note", id: "segments-note" }),
    h(
      "dl",
      { class: "stats segments", "aria-labelledby": "segments-title" },
      SEGMENTS.map((segment) =>
        h(
          "div",
          { class: "stat" },
          h("dt", {}, segment.label),
          h(
            "dd",
            {},
            h(
              "button",
              {
                type: "button",
                class: "figure",
                id: `segment-${segment.id}`,
                "aria-label": `${segment.label}: list them`,
                onclick: () => listeners.openSegment(segment.id),
              },
              "–",
            ),
          ),
        ),
      ),
    ),
  );

  async function load(): Promise<void> {
    const asked = days;
    try {
      const answer = await context.api.funnel(asked);
      if (asked !== days) return;
      funnel = answer;
      show(answer);
    } catch (error) {
      context.failed(error, state);
    }
  }

  function show(funnel: Funnel): void {
    const chosen = KINDS.find((k) => k.id === kind)!;
    const categories = Object.entries(funnel.by_category).filter(([category]) => chosen.matches(category));
    const stages = kind === "all" ? funnel : sum(categories.map(([, stages]) => stages));
    const { window } = funnel;
    ok(state, stages.sent ? "" : `No ${kind === "all" ? "messages" : chosen.label.toLowerCase()} sent in this window yet.`);
    byId(element, "funnel-window-note").textContent =
      `Messages sent ${window.from === window.to ? `on ${window.from}` : `from ${window.from} to ${window.to}`}, by the day of their first status (${window.timezone}).`;
    // Answers follow clicks, which are on templates: shown with them.
    const answers = kind === "service" ? null : funnel.answers;
    const rows: { id: string; label: string; value: number; tone?: string }[] = [
      { id: "sent", label: "Sent", value: stages.sent },
      { id: "delivered", label: "Delivered", value: stages.delivered },
      { id: "read", label: "Read", value: stages.read },
      { id: "clicked", label: "Clicked", value: stages.clicked },
    ];
    if (answers) {
      rows.push(
        { id: "answered", label: "Answered", value: answers.answered },
        { id: "answer-delivered", label: "Answer delivered", value: answers.answered_delivered },
      );
    }
    rows.push({ id: "failed", label: "Failed", value: stages.failed, tone: stages.failed ? "bad" : undefined });
    fill(
      byId(element, "funnel-stages"),
      rows.map((row) => {
        const share = stages.sent ? row.value / stages.sent : null;
        return h(
          "li",
          { class: `stage ${row.tone ?? ""}`, "data-stage": row.id },
          h("span", { class: "stage-label" }, row.label),
          h(
            "span",
            { class: "stage-value" },
            // A stage of all messages opens the advisors behind it.
            kind === "all" && (STAGES as readonly string[]).includes(row.id)
              ? h(
                  "button",
                  {
                    type: "button",
                    class: "figure",
                    "aria-label": `${row.label}: ${count(row.value)}, list the advisors`,
                    onclick: () => listeners.openStage(row.id as Stage),
                  },
                  count(row.value),
                )
              : count(row.value),
          ),
          h("span", { class: "stage-share" }, percent(share)),
          bar(share ?? 0),
        );
      }),
    );
    const clicks = funnel.clicks;
    byId(element, "funnel-unattributed").textContent = [
      answers ? `${count(answers.clicks)} clicks on these messages, ${count(answers.answered)} answered within a day.` : "",
      clicks.unattributed
        ? `${count(clicks.unattributed)} clicks in this window were on messages Pulse has no status for; they are not in the funnel.`
        : "",
    ]
      .filter(Boolean)
      .join(" ");
    // The API counts days for all messages together.
    trend.update(
      {
        xs: funnel.daily.map((_, i) => i),
        xLabels: funnel.daily.map((d) => d.date),
        series: PARTS.map((label, part) => ({ label, values: funnel.daily.map((d) => parts(d)[part] ?? 0) })),
      },
      `All messages: ${count(funnel.sent)} sent over ${funnel.daily.length} ${funnel.daily.length === 1 ? "day" : "days"}, ${percent(funnel.rates.read ?? null)} read, ${percent(funnel.rates.clicked ?? null)} clicked.`,
    );
    byId(element, "ttr-p50").textContent = duration(funnel.time_to_read_ms.p50 ?? null);
    byId(element, "ttr-p95").textContent = duration(funnel.time_to_read_ms.p95 ?? null);
    byId(element, "ttc-p50").textContent = duration(funnel.time_to_click_ms.p50 ?? null);
    byId(element, "ttc-p95").textContent = duration(funnel.time_to_click_ms.p95 ?? null);
    byId(element, "answer-p50").textContent = duration(funnel.answers.answer_ms.p50 ?? null);
    byId(element, "answer-p95").textContent = duration(funnel.answers.answer_ms.p95 ?? null);
    const advisors = SEGMENTS.reduce((sum, segment) => sum + funnel.contacts[segment.id], 0);
    byId(element, "segments-note").textContent =
      `${count(advisors)} ${advisors === 1 ? "advisor" : "advisors"} had activity in this window; each is counted once, by the furthest any message to them got (all messages).`;
    for (const segment of SEGMENTS) {
      const n = count(funnel.contacts[segment.id]);
      const button = byId(element, `segment-${segment.id}`);
      button.textContent = n;
      button.setAttribute("aria-label", `${segment.label}: ${n}, list them`);
    }
    listeners.counted(funnel.contacts);
  }

  return { element, load };
}
