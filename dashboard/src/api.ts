// The REST API the dashboard reads, typed as the server writes it (README, "API").

export type EventType =
  "button_click" | "list_selection" | "text_message" | "media_message" | "other_message" | "status_update" | "other_update";

export const EVENT_TYPES: { type: EventType; label: string }[] = [
  { type: "button_click", label: "Button click" },
  { type: "list_selection", label: "List selection" },
  { type: "text_message", label: "Text message" },
  { type: "media_message", label: "Media message" },
  { type: "other_message", label: "Other message" },
  { type: "status_update", label: "Delivery status" },
  { type: "other_update", label: "Other update" },
];

export interface PulseEvent {
  id: string;
  type: EventType;
  occurred_at: string;
  received_at: string;
  implausible_timestamp?: number;
  phone_number_id?: string;
  contact?: { wa_id: string; name?: string };
  message_id?: string;
  button_id?: string;
  selection_id?: string;
  title?: string;
  context_message_id?: string;
  body?: string;
  media_type?: string;
  caption?: string;
  message_type?: string;
  status?: string;
  error?: { code?: number; title?: string };
  field?: string;
  /** Set on the live feed's notice for an event over 128 KB. */
  too_large?: boolean;
  bytes?: number;
}

export interface Health {
  status: "healthy" | "degraded";
  store: { reachable: boolean; latency_ms: number };
  last_event_at: string | null;
  version: string;
}

export interface Metrics {
  window: { days: number; from: string; to: string; timezone: string };
  button_clicks: {
    total: number;
    by_button: Record<string, number>;
    daily: { date: string; total: number; by_button: Record<string, number> }[];
    hourly: number[];
  };
  messages: { text: number; media: number; other: number; total: number };
  statuses: { sent: number; delivered: number; read: number; failed: number };
  delivery_success_rate: number | null;
  response_time_ms: { count: number; avg: number | null; p50: number | null; p95: number | null };
}

export interface Conversation {
  wa_id: string;
  name?: string | null;
  last_activity: string;
  messages_in: number;
  messages_out: number;
  last_button?: string | null;
  reply_pending: boolean;
  pending_since?: string | null;
}

export interface Conversations {
  active_conversations: number;
  active_minutes: number;
  daily_chat_volume: number;
  conversations: Conversation[];
}

export interface Realtime {
  last_minute: number;
  last_5_minutes: number;
  last_hour: number;
  per_minute: { minute: string; count: number }[];
  last_event_at: string | null;
}

export interface EventPage {
  events: PulseEvent[];
  next?: string | null;
}

export interface Config {
  websocket_url: string;
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

  realtime(): Promise<Realtime> {
    return this.get("/api/webhook/stats/realtime");
  }

  events(query: { type?: string; q?: string; before?: string; limit?: number }): Promise<EventPage> {
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
