// The top bar: the name, two pills (is the webhook healthy, is the live feed
// connected) and the sign-out button.

import { h } from "../dom";
import type { LiveState } from "../live";

export type WebhookHealth = "healthy" | "degraded" | "unreachable";

export interface Header {
  element: HTMLElement;
  // Plain functions (no `this`): they can be handed on as they are.
  showWebhook: (health: WebhookHealth) => void;
  showLiveState: (state: LiveState) => void;
}

export function createHeader(signOut: () => void): Header {
  const webhookPill = h("span", { class: "pill", id: "webhook-pill" }, "Webhook: checking…");
  const liveState = h("span", { class: "pill", id: "live-state", role: "status" }, "Connecting…");
  const element = h(
    "header",
    { class: "top" },
    h("h1", {}, "Pulse"),
    h("div", { class: "pills" }, webhookPill, liveState),
    h("button", { type: "button", class: "quiet", onclick: () => signOut() }, "Sign out"),
  );

  function showWebhook(health: WebhookHealth): void {
    webhookPill.textContent = { healthy: "Webhook healthy", degraded: "Webhook degraded", unreachable: "Pulse unreachable" }[health];
    webhookPill.dataset.tone = health === "healthy" ? "good" : "bad";
  }

  function showLiveState(state: LiveState): void {
    liveState.textContent = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", offline: "Offline" }[state];
    liveState.dataset.state = state;
    liveState.dataset.tone = state === "live" ? "good" : state === "offline" ? "bad" : "warn";
  }

  return { element, showWebhook, showLiveState };
}
