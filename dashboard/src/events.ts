// How an event reads in the feed and the log.

import { EVENT_TYPES, type PulseEvent } from "./api";

export function typeLabel(type: string): string {
  return EVENT_TYPES.find((t) => t.type === type)?.label ?? type;
}

/** One line saying what happened, from the event's own fields. */
export function describe(event: PulseEvent): string {
  if (event.too_large) return `Event of ${event.bytes ?? "?"} bytes, too large for the live feed: find it in the event log`;
  switch (event.type) {
    case "button_click":
      return `${event.button_id ?? "?"}${event.title ? ` “${event.title}”` : ""}`;
    case "list_selection":
      return `${event.selection_id ?? "?"}${event.title ? ` “${event.title}”` : ""}`;
    case "text_message":
      return event.body ?? "";
    case "media_message":
      return `${event.media_type ?? "media"}${event.caption ? `: ${event.caption}` : ""}`;
    case "other_message":
      return event.message_type ?? "message";
    case "status_update":
      return `${event.status ?? "?"}${failureText(event)}`;
    case "other_update":
      return event.field ?? "update";
    default:
      return "";
  }
}

export function failureText(event: PulseEvent): string {
  if (!event.error) return "";
  const { code, title } = event.error;
  return ` – ${title ?? "error"}${code !== undefined ? ` (${code})` : ""}`;
}

export function isFailure(event: PulseEvent): boolean {
  return event.type === "status_update" && event.status === "failed";
}

/** Who: the contact's name and masked number, when the event has one. */
export function who(event: PulseEvent): string {
  if (!event.contact) return "";
  return [event.contact.name, event.contact.wa_id].filter(Boolean).join(" · ");
}
