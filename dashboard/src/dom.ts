// Building the page from data. Everything a WhatsApp user wrote goes in as text
// (textContent), never as HTML.

type Child = Node | string | number | null | undefined | false;
type Attributes = Record<string, string | number | boolean | null | undefined | EventListener>;

/** An element with attributes (`on…` ones become listeners) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (value === true) {
      element.setAttribute(name, "");
    } else {
      element.setAttribute(name, String(value));
    }
  }
  append(element, ...children);
  return element;
}

export function append(parent: Node, ...children: (Child | Child[])[]): void {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }
}

/** Replaces what an element holds. */
export function fill(parent: Element, ...children: (Child | Child[])[]): void {
  parent.replaceChildren();
  append(parent, ...children);
}

const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

export function count(value: number): string {
  return integer.format(value);
}

export function percent(rate: number | null): string {
  return rate === null ? "–" : `${(rate * 100).toFixed(1)} %`;
}

/** A duration in milliseconds, in the unit a person reads it in. */
export function duration(ms: number | null): string {
  if (ms === null) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = ms / 1000;
  if (seconds < 90) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const minutes = seconds / 60;
  if (minutes < 90) return `${Math.round(minutes)} min`;
  const hours = minutes / 60;
  if (hours < 36) return `${hours.toFixed(1)} h`;
  return `${(hours / 24).toFixed(1)} d`;
}

const stamp = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const clock = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });

export function dateTime(iso: string): string {
  return stamp.format(new Date(iso));
}

const shortStamp = new Intl.DateTimeFormat(undefined, {
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});

/** The time alone when it is today, else a short date with it. */
export function when(iso: string): string {
  const date = new Date(iso);
  return date.toDateString() === new Date().toDateString() ? clock.format(date) : shortStamp.format(date);
}

export function time(iso: string): string {
  return clock.format(new Date(iso));
}

const hourMinute = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });

/** "09:30": the minute alone. */
export function minute(iso: string): string {
  return hourMinute.format(new Date(iso));
}

/** "12 s ago", "3 min ago": how long since a moment. */
export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "never";
  const ms = Math.max(0, now - new Date(iso).getTime());
  return ms < 1000 ? "just now" : `${duration(ms)} ago`;
}

/** "for 3 min": how long something has been going on. */
export function since(iso: string, now = Date.now()): string {
  return `for ${duration(Math.max(1000, now - new Date(iso).getTime()))}`;
}

/** A `<time>` element: readable text, machine-readable value, exact time on hover. */
export function timeElement(iso: string, text = ago(iso)): HTMLTimeElement {
  return h("time", { datetime: iso, title: dateTime(iso) }, text);
}
