// Live activity: the events as they arrive over the WebSocket, newest first,
// each opening to its full JSON; it can be paused.

import type { PulseEvent } from "../api";
import { count, dateTime, h, time } from "../dom";
import { describe, isFailure, typeLabel, who } from "../events";
import { ok, section, type Context } from "./section";

/** The feed shows this many events; older ones leave it (the log has them all). */
const FEED_SIZE = 200;

export interface Feed {
  element: HTMLElement;
  /** The feed starts with what just happened, not empty. */
  loadRecent(): Promise<void>;
  /** Queues the events not seen yet for the next frame, and returns them. */
  receive(events: PulseEvent[]): PulseEvent[];
  stop(): void;
}

export function createFeed(context: Context): Feed {
  const { element, state } = section("feed", "Live activity");
  const list = h("ol", { class: "feed", tabindex: 0, "aria-label": "Live events, newest first" });
  const pauseButton = h("button", { type: "button", "aria-pressed": "false" }, "Pause");
  const newCount = h("span", { class: "new-count", role: "status" });
  pauseButton.addEventListener("click", togglePause);
  state.textContent = "Waiting for events…";
  element.append(h("div", { class: "toolbar" }, pauseButton, newCount), list);
  let paused = false;
  /** Events waiting for the next frame (or for the feed to be resumed). */
  const queued: PulseEvent[] = [];
  /** Ids shown or queued: the first page of the log and the live feed can overlap. */
  let ids = new Set<string>();
  /** Events received while paused. */
  let heldBack = 0;
  let frame = 0;

  async function loadRecent(): Promise<void> {
    try {
      const page = await context.api.events({ limit: 20 });
      const fresh = page.events.filter((event) => !ids.has(event.id)).reverse();
      fresh.forEach((event) => ids.add(event.id));
      queued.unshift(...fresh);
      renderSoon();
      if (!page.events.length) ok(state, "Waiting for events…");
    } catch (error) {
      context.failed(error, state);
    }
  }

  function receive(incoming: PulseEvent[]): PulseEvent[] {
    const events = incoming.filter((event) => !ids.has(event.id));
    events.forEach((event) => ids.add(event.id));
    if (ids.size > 4 * FEED_SIZE) {
      // Only ids still in the feed or its queue can come back.
      const keep = new Set([...list.querySelectorAll<HTMLElement>("[data-id]")].map((li) => li.dataset.id!));
      queued.forEach((event) => keep.add(event.id));
      ids = keep;
    }
    if (!events.length) return events;
    if (paused) {
      heldBack += events.length;
      newCount.textContent = `${count(heldBack)} new`;
    }
    queued.push(...events);
    // Bounded: only the newest FEED_SIZE can ever be shown.
    if (queued.length > FEED_SIZE) queued.splice(0, queued.length - FEED_SIZE);
    renderSoon();
    return events;
  }

  /** One DOM update per frame, whatever the rate. */
  function renderSoon(): void {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      if (!paused) render();
    });
  }

  function render(): void {
    const events = queued.splice(0);
    if (!events.length) return;
    list.prepend(...events.reverse().map(item));
    while (list.children.length > FEED_SIZE) list.lastElementChild!.remove();
    ok(state, "");
  }

  function item(event: PulseEvent): HTMLElement {
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

  function togglePause(): void {
    paused = !paused;
    pauseButton.textContent = paused ? "Resume" : "Pause";
    pauseButton.setAttribute("aria-pressed", String(paused));
    if (!paused) {
      heldBack = 0;
      newCount.textContent = "";
      render();
    } else {
      newCount.textContent = "0 new";
    }
  }

  function stop(): void {
    cancelAnimationFrame(frame);
  }

  return { element, loadRecent, receive, stop };
}
