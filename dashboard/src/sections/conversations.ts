// Conversations: how many are active, today's volume, and the latest contacts
// with whether they are waiting for a reply.

import type { Conversations } from "../api";
import { ago, count, dateTime, fill, h, since } from "../dom";
import { byId, ok, section, stat, type Context } from "./section";

const CONVERSATIONS_SHOWN = 20;

export interface ConversationsSection {
  element: HTMLElement;
  load(): Promise<void>;
}

export function createConversations(context: Context): ConversationsSection {
  const { element, state } = section("conversations", "Conversations");
  const table = h("div", {
    class: "table-scroll",
    id: "conversation-table",
    tabindex: 0,
    role: "region",
    "aria-label": "Conversations list",
  });
  element.append(
    h(
      "dl",
      { class: "stats" },
      stat("Active now (last 30 min)", "active-conversations"),
      stat("Chats today", "daily-chat-volume"),
      stat("Waiting for a reply", "pending-count"),
    ),
    table,
  );

  async function load(): Promise<void> {
    try {
      show(await context.api.conversations(CONVERSATIONS_SHOWN));
    } catch (error) {
      context.failed(error, state);
    }
  }

  function show(data: Conversations): void {
    ok(state, data.conversations.length ? "" : "No conversations yet.");
    byId(element, "active-conversations").textContent = count(data.active_conversations);
    byId(element, "daily-chat-volume").textContent = count(data.daily_chat_volume);
    const pending = data.conversations.filter((c) => c.reply_pending).length;
    byId(element, "pending-count").textContent = count(pending);
    const rows = data.conversations.map((c) =>
      h(
        "tr",
        { class: c.reply_pending ? "pending" : null },
        h("th", { scope: "row" }, h("span", { class: "name" }, c.name || "(no name)"), h("span", { class: "phone" }, c.wa_id)),
        h("td", {}, h("time", { datetime: c.last_activity, title: dateTime(c.last_activity), "data-live": "" }, ago(c.last_activity))),
        h("td", { class: "num" }, count(c.messages_in)),
        h("td", { class: "num" }, count(c.messages_out)),
        h("td", {}, c.last_button ?? "–"),
        h(
          "td",
          {},
          c.reply_pending
            ? h(
                "span",
                { class: "badge warn" },
                "Waiting ",
                c.pending_since
                  ? h(
                      "time",
                      { datetime: c.pending_since, title: dateTime(c.pending_since), "data-live": "", "data-ago": "for" },
                      since(c.pending_since),
                    )
                  : null,
              )
            : "Answered",
        ),
      ),
    );
    fill(
      table,
      data.conversations.length
        ? h(
            "table",
            { class: "data" },
            h("caption", { class: "visually-hidden" }, "Conversations, most recent first"),
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ["Contact", "Last activity", "In", "Out", "Last button", "Reply"].map((t, i) =>
                  h("th", { scope: "col", class: i === 2 || i === 3 ? "num" : null }, t),
                ),
              ),
            ),
            h("tbody", {}, rows),
          )
        : null,
    );
  }

  return { element, load };
}
