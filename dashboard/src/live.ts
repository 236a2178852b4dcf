// The live feed: one WebSocket, reconnected with exponential backoff and jitter.

import type { PulseEvent } from "./api";

export type LiveState = "connecting" | "live" | "reconnecting" | "offline";

export interface LiveHandlers {
  onEvents(events: PulseEvent[]): void;
  onState(state: LiveState): void;
  /** The server refused the token (the handshake failed while REST says 401). */
  onRefused(): void;
}

/** Failed attempts in a row after which the page says "offline" (it keeps trying). */
const OFFLINE_AFTER = 3;
const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 30_000;
/** Idle sockets are closed by API Gateway after 10 minutes; a ping keeps it open. */
const PING_EVERY_MS = 5 * 60_000;

export class LiveConnection {
  private socket: WebSocket | null = null;
  private failures = 0;
  private timer: number | undefined;
  private ping: number | undefined;
  private stopped = false;
  /** Ids already shown: a broadcast retried after a failure can repeat an event. */
  private readonly seen = new Set<string>();

  constructor(
    private readonly url: string,
    private readonly token: string,
    private readonly handlers: LiveHandlers,
  ) {}

  start(): void {
    this.stopped = false;
    this.connect();
    addEventListener("online", this.reconnectNow);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.ping);
    removeEventListener("online", this.reconnectNow);
    this.socket?.close();
    this.socket = null;
  }

  private readonly reconnectNow = (): void => {
    if (this.stopped || this.socket?.readyState === WebSocket.OPEN) return;
    clearTimeout(this.timer);
    this.connect();
  };

  private connect(): void {
    this.handlers.onState(this.failures === 0 ? "connecting" : this.failures >= OFFLINE_AFTER ? "offline" : "reconnecting");
    const url = new URL(this.url);
    url.searchParams.set("token", this.token);
    const socket = new WebSocket(url);
    this.socket = socket;
    let opened = false;
    socket.onopen = () => {
      opened = true;
      this.failures = 0;
      this.handlers.onState("live");
      clearInterval(this.ping);
      this.ping = window.setInterval(() => socket.send(JSON.stringify({ type: "ping" })), PING_EVERY_MS);
    };
    socket.onmessage = (message) => this.receive(message.data);
    socket.onclose = () => {
      clearInterval(this.ping);
      if (this.stopped || this.socket !== socket) return;
      if (!opened) this.failures += 1;
      this.handlers.onState(this.failures >= OFFLINE_AFTER || !navigator.onLine ? "offline" : "reconnecting");
      if (!opened && this.failures >= 2) this.handlers.onRefused();
      this.timer = window.setTimeout(() => this.connect(), this.delay());
    };
  }

  /** Full jitter over an exponential ceiling: clients that lost the server together do not return together. */
  private delay(): number {
    const ceiling = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** this.failures);
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  private receive(data: unknown): void {
    if (typeof data !== "string") return;
    let message: { type?: string; events?: PulseEvent[] };
    try {
      message = JSON.parse(data) as typeof message;
    } catch {
      return;
    }
    if (message.type !== "events" || !Array.isArray(message.events)) return;
    const fresh = message.events.filter((event) => {
      if (this.seen.has(event.id)) return false;
      this.seen.add(event.id);
      return true;
    });
    if (this.seen.size > 10_000) {
      // Keep the newest half: repeats come within seconds of the original.
      const keep = [...this.seen].slice(-5_000);
      this.seen.clear();
      keep.forEach((id) => this.seen.add(id));
    }
    if (fresh.length) this.handlers.onEvents(fresh);
  }
}
