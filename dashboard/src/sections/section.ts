// What the sections share: the frame of a card (heading, state line, content),
// its figures, and where a failure to load goes.

import { Unauthorized, type Api } from "../api";
import { h } from "../dom";

/** What a section is given: the API, and where its failures go. */
export interface Context {
  readonly api: Api;
  /** Unauthorized ends the session; anything else is shown in `state`, the section's state line. */
  failed(error: unknown, state?: HTMLElement): void;
}

/** A context whose failures stop counting once the dashboard has stopped. */
export function createContext(api: Api, expired: () => void): Context & { stop(): void } {
  let stopped = false;
  return {
    api,
    failed(error, state) {
      if (stopped) return;
      if (error instanceof Unauthorized) {
        expired();
        return;
      }
      if (state) {
        state.textContent = `Could not load: ${(error as Error).message} Retrying shortly.`;
        state.classList.add("error");
      }
    },
    stop() {
      stopped = true;
    },
  };
}

export interface Section {
  element: HTMLElement;
  /** The line saying what is going on: "Loading…", why it is empty, or what failed. */
  state: HTMLElement;
}

/** A section: heading, a line saying what is going on, then its content. */
export function section(id: string, title: string, ...content: (Node | null)[]): Section {
  const state = h("p", { class: "state", role: "status" }, "Loading…");
  const element = h(
    "section",
    { id, class: "card", "aria-labelledby": `${id}-title` },
    h("h2", { id: `${id}-title` }, title),
    state,
    ...content,
  );
  return { element, state };
}

/** The state line after a load that worked: empty, or why there is nothing to show. */
export function ok(state: HTMLElement, text: string): void {
  state.textContent = text;
  state.classList.remove("error");
}

/** One figure of a `<dl class="stats">`, "–" until it is known. */
export function stat(label: string, id: string): HTMLElement {
  return h("div", { class: "stat" }, h("dt", {}, label), h("dd", { id }, "–"));
}

export function byId(root: ParentNode, id: string): HTMLElement {
  return root.querySelector(`#${id}`)!;
}
