// The REST API the dashboard reads. Its types are generated from the API's own
// OpenAPI description (openapi.json → api-types.ts, `npm run types`); this file
// names the ones the page uses.

import type { components } from "./api-types";

type Schemas = components["schemas"];

export type EventType = Schemas["EventKind"]["type"];

export const EVENT_TYPES: { type: EventType; label: string }[] = [
  { type: "button_click", label: "Button click" },
  { type: "list_selection", label: "List selection" },
  { type: "text_message", label: "Text message" },
  { type: "media_message", label: "Media message" },
  { type: "other_message", label: "Other message" },
  { type: "status_update", label: "Delivery status" },
  { type: "other_update", label: "Other update" },
];

/** `A | B` → `A & B`. */
type Intersection<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void ? I : never;
/** Each kind's own fields, without the `type` that tells the kinds apart. */
type KindFields = Intersection<Schemas["EventKind"] extends infer K ? (K extends unknown ? Omit<K, "type"> : never) : never>;

/**
 * An event as the API and the live feed show it: the fields every event has,
 * its `type`, and each kind's own fields, optional, to read after its `type`.
 */
export type PulseEvent = Omit<Schemas["Event"], "type"> & { type: EventType } & Partial<KindFields> & {
    /** Set on the live feed's notice for an event over 128 KB. */
    too_large?: boolean;
    bytes?: number;
  };

export type Health = Schemas["HealthAnswer"];
export type Metrics = Schemas["WebhookMetrics"];
export type Conversation = Schemas["Conversation"];
export type Conversations = Schemas["Conversations"];
export type Realtime = Schemas["Realtime"];
export type Funnel = Schemas["Funnel"];
export type Stages = Schemas["Stages"];
export type Failures = Schemas["Failures"];
export type Segments = Schemas["Segments"];
export type SegmentName = Schemas["SegmentName"];
export type Contacts = Schemas["Contacts"];
export type ContactSummary = Schemas["ContactSummary"];
export type ContactDetail = Schemas["ContactDetail"];
export type Alerts = Schemas["Alerts"];
export type Transition = Schemas["Transition"];
export type AlertRule = Schemas["Rule"];
export type AlertNotification = Schemas["Notification"];
export type EventPage = Omit<Schemas["RecentEvents"], "events"> & { events: PulseEvent[] };

/** `/config.json`, the page's settings (the dashboard function's, not the REST API's). */
export interface Config {
  websocket_url: string;
  /** The Click-to-Unlock buttons, shown first and always. */
  known_buttons: string[];
}

/** The token was refused: the session is over. */
export class Unauthorized extends Error {}

/** The server answered with an error, or could not be reached. */
export class ApiError extends Error {}

/** What every route but /health answers: `{ success, data }` or `{ success: false, error }`. */
interface Envelope {
  success?: boolean;
  data?: unknown;
  error?: { message?: string };
}

export class Api {
  constructor(readonly token: string) {}

  private async get<T>(path: string, params: Record<string, string | number | undefined> = {}): Promise<T> {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      if (value !== undefined && value !== "") query.set(key, String(value));
    }
    const url = query.size ? `${path}?${query}` : path;
    let response: Response;
    try {
      response = await fetch(url, { headers: { Authorization: `Bearer ${this.token}` } });
    } catch {
      throw new ApiError("Pulse cannot be reached.");
    }
    if (response.status === 401) throw new Unauthorized("The dashboard token was refused.");
    const body = (await response.json().catch(() => null)) as Envelope | null;
    if (!response.ok || !body || body.success !== true) {
      const message = body?.error?.message ?? `The server answered ${response.status}.`;
      throw new ApiError(message);
    }
    return body.data as T;
  }

  metrics(days: number): Promise<Metrics> {
    return this.get("/api/webhook/metrics", { days });
  }

  conversations(limit = 50): Promise<Conversations> {
    return this.get("/api/webhook/conversations", { limit });
  }

  funnel(days: number): Promise<Funnel> {
    return this.get("/api/webhook/funnel", { days });
  }

  failures(days: number): Promise<Failures> {
    return this.get("/api/webhook/failures", { days });
  }

  contacts(query: { days: number; segment?: string; code?: string; limit?: number; cursor?: string }): Promise<Contacts> {
    return this.get("/api/webhook/contacts", query);
  }

  contact(key: string, days: number): Promise<ContactDetail> {
    return this.get(`/api/webhook/contacts/${encodeURIComponent(key)}`, { days });
  }

  realtime(): Promise<Realtime> {
    return this.get("/api/webhook/stats/realtime");
  }

  alerts(): Promise<Alerts> {
    return this.get("/api/webhook/alerts");
  }

  events(query: { type?: string; q?: string; before?: string; limit?: number; contact?: string }): Promise<EventPage> {
    return this.get("/api/webhook/events/recent", query);
  }
}

/** `/health` needs no token and answers 503, with the same body, when degraded. */
export async function health(): Promise<Health> {
  const response = await fetch("/health");
  return (await response.json()) as Health;
}

export async function config(): Promise<Config> {
  const response = await fetch("/config.json");
  if (!response.ok) throw new ApiError(`/config.json answered ${response.status}.`);
  return (await response.json()) as Config;
}
