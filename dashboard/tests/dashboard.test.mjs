// The dashboard in Debian's Chromium, driven by playwright-core, against a real
// local stack (`pulse serve`) seeded by `pulse simulate` with a fixed seed. Every
// figure the page shows is compared with what the REST API answers.
//
// Needs PULSE_BIN (the built `pulse`); CHROMIUM defaults to /usr/bin/chromium.
// infra/test/run.sh provides both. Screenshots go to target/screenshots/.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFile } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { chromium } from "playwright-core";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const pulseBin = process.env.PULSE_BIN ?? join(root, "target", "debug", "pulse");
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const screenshots = join(root, "target", "screenshots");
const axeSource = readFileSync(join(root, "dashboard", "node_modules", "axe-core", "axe.min.js"), "utf8");

// ---- the stack ---------------------------------------------------------------

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** `pulse serve` on fixed ports, so that a restart comes back where the page looks. */
class Stack {
  constructor(dataDir, httpPort, wsPort) {
    Object.assign(this, { dataDir, httpPort, wsPort });
    this.base = `http://127.0.0.1:${httpPort}`;
  }

  async start() {
    this.process = spawn(pulseBin, ["serve", "--data-dir", this.dataDir, "--http-port", this.httpPort, "--ws-port", this.wsPort], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    this.stderr = "";
    this.process.stderr.on("data", (chunk) => (this.stderr += chunk));
    for (let i = 0; i < 200; i++) {
      try {
        if ((await fetch(`${this.base}/health`)).ok) break;
      } catch {}
      if (this.process.exitCode !== null) throw new Error(`pulse serve exited: ${this.stderr}`);
      await sleep(50);
    }
    const env = readFileSync(join(this.dataDir, "local.env"), "utf8");
    this.secret = /WHATSAPP_APP_SECRET=(.*)/.exec(env)[1].trim();
    this.token = /DASHBOARD_TOKEN=(.*)/.exec(env)[1].trim();
  }

  async stop() {
    if (!this.process || this.process.exitCode !== null) return;
    const exited = new Promise((resolve) => this.process.once("exit", resolve));
    this.process.kill("SIGINT");
    await exited;
  }

  async api(path) {
    const response = await fetch(`${this.base}${path}`, { headers: { Authorization: `Bearer ${this.token}` } });
    assert.equal(response.status, 200, `${path} answered ${response.status}`);
    return (await response.json()).data;
  }

  /** Posts one signed webhook, as Meta does. */
  async deliver(payload) {
    const body = JSON.stringify(payload);
    const signature = "sha256=" + createHmac("sha256", this.secret).update(body).digest("hex");
    const response = await fetch(`${this.base}/webhook`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-hub-signature-256": signature },
      body,
    });
    assert.equal(response.status, 200, await response.text());
  }

  simulate(args) {
    return promisify(execFile)(pulseBin, ["simulate", "--url", `${this.base}/webhook`, "--data-dir", this.dataDir, ...args]);
  }
}

let sequence = 0;
/** A message from a customer, now. */
function message(fields) {
  sequence += 1;
  const id = `wamid.BROWSERTEST${Date.now()}${sequence}`;
  return {
    id,
    payload: {
      object: "whatsapp_business_account",
      entry: [
        {
          id: "102290129340398",
          changes: [
            {
              field: "messages",
              value: {
                messaging_product: "whatsapp",
                metadata: { display_phone_number: "15550783881", phone_number_id: "106540352242922" },
                contacts: [{ profile: { name: "Test Person" }, wa_id: "919000000001" }],
                messages: [{ from: "919000000001", id, timestamp: String(Math.floor(Date.now() / 1000)), ...fields }],
              },
            },
          ],
        },
      ],
    },
  };
}

const click = (button) => message({ type: "interactive", interactive: { type: "button_reply", button_reply: { id: button, title: button } } });
const text = (body) => message({ type: "text", text: { body } });

// ---- the browser -------------------------------------------------------------

let stack;
let browser;
let dataDir;
const cspViolations = [];

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "pulse-dashboard-"));
  stack = new Stack(dataDir, await freePort(), await freePort());
  await stack.start();
  const { stdout } = await stack.simulate(["--seed", "11", "--rate", "300", "--duration", "2s", "--contacts", "12", "--duplicates", "0.2"]);
  assert.match(stdout, /0 errors/);
  // A week of Click-to-Unlock history, for the funnel and the failures.
  const history = await stack.simulate(["--seed", "12", "--days", "7", "--rate", "300", "--duration", "2s", "--contacts", "20", "--duplicates", "0.1"]);
  assert.match(history.stdout, /0 errors/);
  await stack.deliver(text(`<img src=x onerror="document.body.dataset.pwned=1"> & <b>bold</b>`).payload);
  browser = await chromium.launch({
    executablePath: chromiumPath,
    // As root, without a sandbox; no calls home on a machine with a closed network.
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  mkdirSync(screenshots, { recursive: true });
});

after(async () => {
  await browser?.close();
  await stack?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function newPage(options = {}) {
  const context = await browser.newContext({ viewport: { width: 1440, height: 1000 }, acceptDownloads: true, ...options });
  const page = await context.newPage();
  page.on("console", (entry) => {
    if (/Content Security Policy/i.test(entry.text())) cspViolations.push(entry.text());
  });
  page.on("pageerror", (error) => cspViolations.push(`page error: ${error.message}`));
  return page;
}

async function signIn(page, token = stack.token, base = stack.base) {
  await page.goto(base);
  await page.getByLabel("Dashboard token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
}

/** The text of an element once it equals `expected` (the page polls and re-renders). */
async function expectText(page, selector, expected) {
  await page.waitForFunction(
    ([selector, expected]) => document.querySelector(selector)?.textContent?.trim() === expected,
    [selector, String(expected)],
    { timeout: 10_000 },
  ).catch(async () => {
    const actual = await page.locator(selector).first().textContent().catch(() => "(missing)");
    assert.fail(`${selector}: expected ${JSON.stringify(String(expected))}, shown ${JSON.stringify(actual)}`);
  });
}

const shown = (n) => new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 }).format(n);

/** What `probe` gives once it gives something (it is asked every 200 ms, for up to `ms`). */
async function until(probe, what, ms = 15_000) {
  const end = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > end) assert.fail(`waited ${ms} ms for ${what}`);
    await sleep(200);
  }
}

/** The table of the daily clicks chart, opened (it is written when shown). */
async function dailyTable(page) {
  const figure = page.locator("#clicks figure").first();
  if (!(await figure.locator("details").evaluate((details) => details.open))) await figure.locator("details summary").click();
  // The table is written on the toggle event, which comes after the click.
  await figure.locator("table.data tbody tr").first().waitFor();
  return figure.locator("table.data");
}

async function download(page, button) {
  const [file] = await Promise.all([page.waitForEvent("download"), page.locator(button).click()]);
  return readFileSync(await file.path(), "utf8");
}

// ---- the tests ---------------------------------------------------------------

describe("the dashboard", () => {
  test("a wrong token is refused and says so; the right one opens the dashboard", async () => {
    const page = await newPage();
    await signIn(page, "not-the-token");
    await page.getByRole("alert").filter({ hasText: "That token is not right" }).waitFor();
    assert.equal(await page.locator("#clicks").count(), 0);
    await page.getByLabel("Dashboard token").fill(stack.token);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator("#clicks-total").waitFor();
    await page.context().close();
  });

  test("every widget shows what the API answers", async () => {
    const page = await newPage({ locale: "en-US" });
    await signIn(page);
    for (const [label, days] of [["7 days", 7], ["30 days", 30], ["Today", 1]]) {
      await page.locator("#clicks").getByRole("radio", { name: label }).check();
      const metrics = await stack.api(`/api/webhook/metrics?days=${days}`);
      assert.ok(metrics.button_clicks.total > 0, "the seed clicked");
      await expectText(page, "#clicks-total", shown(metrics.button_clicks.total));
      for (const [button, clicks] of Object.entries(metrics.button_clicks.by_button)) {
        await expectText(page, `[data-button="${button}"]`, shown(clicks));
      }
      for (const status of ["sent", "delivered", "read", "failed"]) {
        await expectText(page, `#status-${status}`, shown(metrics.statuses[status]));
      }
      await expectText(page, "#delivery-rate", `${(metrics.delivery_success_rate * 100).toFixed(1)} %`);
      await expectText(page, "#rt-count", shown(metrics.response_time_ms.count));
      assert.match(await page.locator("#timezone").textContent(), new RegExp(`counted in ${metrics.window.timezone}`));
      // At rest, the stacked chart's legend gives each button's clicks over the
      // window (and follows the window as it changes).
      const legend = Object.fromEntries(
        Object.entries(metrics.button_clicks.by_button).map(([button, clicks]) => [button, shown(clicks)]),
      );
      await page
        .waitForFunction((expected) => {
          const series = [...document.querySelectorAll("#clicks figure:first-of-type .u-legend .u-series")].slice(1);
          const got = Object.fromEntries(series.map((s) => [s.querySelector(".u-label")?.textContent, s.querySelector(".u-value")?.textContent]));
          return Object.entries(expected).every(([button, clicks]) => got[button] === clicks);
        }, legend, { timeout: 10_000 })
        .catch(async () => {
          const got = await page.locator("#clicks figure").first().locator(".u-legend").textContent();
          assert.fail(`the daily chart's legend: expected ${JSON.stringify(legend)}, shown ${JSON.stringify(got)}`);
        });
      // The chart's table holds the same daily numbers.
      const rows = await (await dailyTable(page)).locator("tbody tr").count();
      assert.equal(rows, metrics.button_clicks.daily.length);
      // The weekday × hour table: every cell is the API's number, as text.
      const cells = metrics.button_clicks.weekday_hourly.flatMap((row, day) => row.map((clicks, hour) => ({ day, hour, clicks })));
      assert.equal(cells.length, 7 * 24);
      assert.equal(cells.reduce((sum, cell) => sum + cell.clicks, 0), metrics.button_clicks.total);
      await page
        .waitForFunction(
          (expected) =>
            expected.every(
              ({ day, hour, clicks }) =>
                document.querySelector(`#clicks-heatmap td[data-day="${day}"][data-hour="${hour}"]`)?.textContent === clicks,
            ),
          cells.map((cell) => ({ ...cell, clicks: shown(cell.clicks) })),
          { timeout: 10_000 },
        )
        .catch(() => assert.fail(`the weekday × hour table does not show ${JSON.stringify(metrics.button_clicks.weekday_hourly)}`));
    }
    const conversations = await stack.api("/api/webhook/conversations?limit=20");
    await expectText(page, "#active-conversations", shown(conversations.active_conversations));
    await expectText(page, "#daily-chat-volume", shown(conversations.daily_chat_volume));
    assert.equal(await page.locator("#conversation-table tbody tr").count(), conversations.conversations.length);
    const pending = conversations.conversations.filter((c) => c.reply_pending).length;
    assert.ok(pending > 0, "some contacts wait for a reply");
    assert.equal(await page.locator("#conversation-table tr.pending").count(), pending);
    const first = conversations.conversations[0];
    assert.match(await page.locator("#conversation-table tbody tr").first().textContent(), new RegExp(first.wa_id.replaceAll("•", ".")));
    const realtime = await stack.api("/api/webhook/stats/realtime");
    await expectText(page, "#events-last-hour", shown(realtime.last_hour));
    await page.context().close();
  });

  test("the funnel and the failures show what the API answers, for each window and kind of message", async () => {
    const page = await newPage({ locale: "en-US" });
    await signIn(page);
    const funnel = page.locator("#funnel");
    const stage = (id) => `#funnel-stages [data-stage="${id}"] .stage-value`;
    const percentOf = (part, whole) => (whole ? `${((part / whole) * 100).toFixed(1)} %` : "–");
    for (const [label, days] of [["7 days", 7], ["30 days", 30]]) {
      await funnel.getByRole("radio", { name: label }).check();
      await funnel.getByRole("radio", { name: "All messages" }).check();
      const data = await stack.api(`/api/webhook/funnel?days=${days}`);
      assert.ok(data.sent > 0 && data.read > 0 && data.clicked > 0 && data.failed > 0, "the history has every stage");
      for (const id of ["sent", "delivered", "read", "clicked", "failed"]) await expectText(page, stage(id), shown(data[id]));
      await expectText(page, stage("answered"), shown(data.answers.answered));
      await expectText(page, stage("answer-delivered"), shown(data.answers.answered_delivered));
      await expectText(page, `#funnel-stages [data-stage="read"] .stage-share`, percentOf(data.read, data.sent));
      // Every advisor of the window in one segment.
      const segments = ["engaged", "reading", "unread", "unreached", "none"];
      assert.ok(data.contacts.engaged > 0 && data.contacts.unreached > 0, "the history has engaged and unreached advisors");
      for (const id of segments) await expectText(page, `#segment-${id}`, shown(data.contacts[id]));
      // Templates: every category but service replies (and messages without one).
      await funnel.getByRole("radio", { name: "Templates" }).check();
      const templates = Object.entries(data.by_category).filter(([c]) => c !== "service" && c !== "unknown");
      const total = (key) => templates.reduce((sum, [, stages]) => sum + stages[key], 0);
      assert.ok(total("sent") > 0 && total("sent") < data.sent, "templates are part of what was sent");
      for (const id of ["sent", "delivered", "read", "clicked", "failed"]) await expectText(page, stage(id), shown(total(id)));
      await funnel.getByRole("radio", { name: "Service replies" }).check();
      await expectText(page, stage("sent"), shown(data.by_category.service.sent));
      assert.equal(await page.locator(stage("answered")).count(), 0, "answers go with the templates clicked");
      // The chart's parts add up to what was sent each day.
      const chart = funnel.locator("figure");
      if (!(await chart.locator("details").evaluate((details) => details.open))) await chart.locator("details summary").click();
      await chart.locator("table.data tbody tr").first().waitFor();
      assert.equal(await chart.locator("table.data tbody tr").count(), data.daily.length);
      // Failures follow the funnel's window.
      const failures = await stack.api(`/api/webhook/failures?days=${days}`);
      assert.ok(failures.codes.length >= 3, "a mix of codes");
      await page.waitForFunction((n) => document.querySelectorAll("#failure-table tbody tr").length === n, failures.codes.length);
      for (const code of failures.codes) {
        const row = page.locator(`#failure-table tr[data-code="${code.code ?? "none"}"]`);
        assert.equal(await row.locator("[data-messages]").textContent(), shown(code.messages));
        assert.equal(await row.locator("[data-contacts]").textContent(), shown(code.contacts));
        assert.ok((await row.locator("td.advice").textContent()).length > 20, "each code says what to do");
      }
      await expectText(page, "#failures-total", `${shown(failures.total)} messages failed from ${failures.window.from} to ${failures.window.to}.`);
    }
    // The kind of message by keyboard.
    await funnel.getByRole("radio", { name: "All messages" }).focus();
    await page.keyboard.press("ArrowRight");
    assert.equal(await funnel.getByRole("radio", { name: "Templates" }).isChecked(), true);
    await page.context().close();
  });

  test("the advisors: each segment and failure code opens the advisors behind it; one opens a panel with its figures and timeline", async () => {
    const page = await newPage({ locale: "en-US" });
    await signIn(page);
    const advisors = page.locator("#advisors");
    const funnel = await stack.api("/api/webhook/funnel?days=7");
    const all = await stack.api("/api/webhook/contacts?days=7&limit=200");
    const total = Object.values(funnel.contacts).reduce((a, b) => a + b, 0);
    assert.equal(all.contacts.length, total, "the list holds every advisor the funnel counts");
    // The tabs carry the funnel's counts; the list, the API's advisors.
    await expectText(page, '#advisors input[value="all"] + span', `All (${shown(total)})`);
    await expectText(page, '#advisors input[value="unreached"] + span', `Not reached (${shown(funnel.contacts.unreached)})`);
    await page.waitForFunction((n) => document.querySelectorAll("#advisor-table tbody tr").length === n, all.contacts.length);
    // A segment count of the funnel opens its advisors.
    await page.locator("#segment-engaged").click();
    await page.waitForFunction(
      (n) => {
        const rows = [...document.querySelectorAll("#advisor-table tbody tr")];
        return rows.length === n && rows.every((row) => row.dataset.segment === "engaged");
      },
      funnel.contacts.engaged,
    );
    assert.equal(await advisors.getByRole("radio", { name: /^Engaged/ }).isChecked(), true);
    // A stage of the funnel opens the advisors with a message at it.
    await page.locator('#funnel-stages [data-stage="read"] button').click();
    const readers = all.contacts.filter((c) => c.window.read > 0);
    assert.ok(readers.length > 0);
    await page.waitForFunction((n) => document.querySelectorAll("#advisor-table tbody tr").length === n, readers.length);
    const shownKeys = await page.locator("#advisor-table tbody tr").evaluateAll((rows) => rows.map((row) => row.dataset.key).sort());
    assert.deepEqual(shownKeys, readers.map((c) => c.key).sort());
    // A failure code's advisors count opens them.
    const failures = await stack.api("/api/webhook/failures?days=7");
    const code = failures.codes[0];
    const behind = await stack.api(`/api/webhook/contacts?days=7&code=${code.code ?? "none"}&limit=200`);
    assert.equal(behind.contacts.length, code.contacts);
    await page.locator(`#failure-table tr[data-code="${code.code ?? "none"}"] button[data-contacts]`).click();
    await expectText(page, "#advisor-code", `Advisors with a message that failed with code ${code.code ?? "none"}. Show all advisors`);
    await page.waitForFunction((n) => document.querySelectorAll("#advisor-table tbody tr").length === n, code.contacts);
    const keys = await page.locator("#advisor-table tbody tr").evaluateAll((rows) => rows.map((row) => row.dataset.key).sort());
    assert.deepEqual(keys, behind.contacts.map((c) => c.key).sort());
    await advisors.getByRole("button", { name: "Show all advisors" }).click();
    await page.waitForFunction((n) => document.querySelectorAll("#advisor-table tbody tr").length === n, all.contacts.length);
    // Search by name, and sort by a column (the header says which way).
    const named = all.contacts.find((c) => c.name);
    await page.locator("#advisor-search").fill(named.name);
    const found = await page.locator("#advisor-table tbody tr th button").allTextContents();
    assert.ok(found.length >= 1 && found.every((name) => name.toLowerCase().includes(named.name.toLowerCase())), found.join());
    await page.locator("#advisor-search").fill("");
    await page.locator('#advisor-table button[data-sort="sent"]').click();
    assert.equal(await page.locator('#advisor-table th:has(button[data-sort="sent"])').getAttribute("aria-sort"), "descending");
    const sent = await page.locator('#advisor-table tbody td[data-label="Sent"]').allTextContents();
    const numbers = sent.map((s) => Number(s.replaceAll(",", "")));
    assert.deepEqual(numbers, [...numbers].sort((a, b) => b - a));
    // CSV: what the table shows.
    const csv = (await download(page, "#advisors-csv")).trim().split("\r\n");
    assert.equal(csv[0], "name,wa_id,segment,sent,delivered,read,clicked,failed,clicks,inbound,last_activity,last_click,last_read,last_failure,last_failure_code");
    assert.equal(csv.length, all.contacts.length + 1);
    assert.ok(!csv.some((line) => /\d{10}/.test(line)), "no full number in the CSV");
    // An advisor opens by keyboard; its panel shows the API's figures and timeline.
    const first = all.contacts.find((c) => c.window.sent > 0 && c.window.clicks > 0) ?? all.contacts[0];
    const detail = await stack.api(`/api/webhook/contacts/${first.key}?days=7`);
    await page.locator(`#advisor-table tr[data-key="${first.key}"] th button`).focus();
    await page.keyboard.press("Enter");
    const panel = page.getByRole("dialog");
    await panel.locator("#advisor-figures").waitFor();
    const windowRow = await panel.locator("#advisor-figures tbody tr").first().locator("td").allTextContents();
    assert.deepEqual(windowRow, [detail.window.sent, detail.window.delivered, detail.window.read, detail.window.clicked, detail.window.failed, detail.window.clicks, detail.window.inbound].map(shown));
    const timeline = await stack.api(`/api/webhook/events/recent?contact=${first.key}&limit=200`);
    const messages = new Set(timeline.events.filter((e) => e.type === "status_update").map((e) => e.message_id));
    const inbound = timeline.events.filter((e) => !["status_update", "other_update"].includes(e.type)).length;
    assert.equal(await panel.locator(".conversation .bubble.out").count(), messages.size, "each outbound message once");
    assert.equal(await panel.locator(".conversation .bubble.in").count(), inbound);
    await page.screenshot({ path: join(screenshots, "advisor-panel-1440.png") });
    await page.keyboard.press("Escape");
    assert.equal(await panel.isVisible(), false);
    assert.equal(await page.evaluate(() => document.activeElement?.closest("tr")?.dataset.key), first.key, "focus returns to the advisor");
    await page.context().close();
  });

  test("a webhook appears in the live feed and moves the counters, without a reload", async () => {
    const page = await newPage();
    await signIn(page);
    await page.locator("#live-state[data-state=live]").waitFor();
    const before = await stack.api("/api/webhook/metrics?days=7");
    const { id, payload } = click("RETRIEVE_CONTENT");
    await stack.deliver(payload);
    const item = page.locator("#feed .event", { hasText: "RETRIEVE_CONTENT" }).first();
    await item.waitFor();
    await expectText(page, "#clicks-total", shown(before.button_clicks.total + 1));
    // Expanded, an event shows its details (masked, as the API gives them).
    await item.locator("summary").click();
    // The JSON is written on the toggle event, which comes after the click.
    await item.locator("pre", { hasText: '"button_id": "RETRIEVE_CONTENT"' }).waitFor();
    assert.doesNotMatch(await item.locator("pre").textContent(), new RegExp(id));
    await page.context().close();
  });

  test("pause holds new events back and counts them; resume shows them", async () => {
    const page = await newPage();
    await signIn(page);
    await page.locator("#live-state[data-state=live]").waitFor();
    await page.getByRole("button", { name: "Pause" }).click();
    const held = [text("held back one"), text("held back two")];
    for (const { payload } of held) await stack.deliver(payload);
    await expectText(page, ".new-count", "2 new");
    assert.equal(await page.locator("#feed .event", { hasText: "held back" }).count(), 0);
    await page.getByRole("button", { name: "Resume" }).click();
    await page.locator("#feed .event", { hasText: "held back two" }).waitFor();
    assert.equal(await page.locator("#feed .event", { hasText: "held back" }).count(), 2);
    await expectText(page, ".new-count", "");
    await page.context().close();
  });

  test("the event log filters, searches and pages as the API does; text stays text", async () => {
    const page = await newPage();
    await signIn(page);
    const log = page.locator("#log-table tbody tr");
    const all = await stack.api("/api/webhook/events/recent?limit=25");
    await page.locator(`#log-table tr[data-id="${all.events[0].id}"]`).waitFor();
    assert.equal(await log.count(), all.events.length);

    await page.getByLabel("Type").selectOption("text_message");
    const texts = await stack.api("/api/webhook/events/recent?limit=25&type=text_message");
    await page.locator(`#log-table tr[data-id="${texts.events.at(-1).id}"]`).waitFor();
    assert.equal(await log.count(), texts.events.length);
    for (const type of await page.locator("#log-table tbody td:nth-child(2)").allTextContents()) assert.equal(type, "Text message");
    // What a WhatsApp user wrote is shown as text, never run as HTML.
    await page.getByLabel("Search").fill("onerror");
    await page.getByRole("button", { name: "Apply" }).click();
    await page.locator("#log-table td.what", { hasText: `<img src=x onerror="document.body.dataset.pwned=1"> & <b>bold</b>` }).waitFor();
    assert.equal(await page.evaluate(() => document.body.dataset.pwned), undefined);
    assert.equal(await page.locator("#log-table img, #log-table b").count(), 0);

    await page.getByLabel("Search").fill("SIP");
    await page.getByRole("button", { name: "Apply" }).click();
    const searched = await stack.api("/api/webhook/events/recent?limit=25&type=text_message&q=SIP");
    assert.ok(searched.events.length > 0);
    await page.waitForFunction((n) => document.querySelectorAll("#log-table tbody tr").length === n, searched.events.length);
    for (const row of await page.locator("#log-table tbody td.what").allTextContents()) assert.match(row, /SIP/);

    await page.getByLabel("Search").fill("");
    await page.getByLabel("Type").selectOption("");
    await page.getByLabel("Failed deliveries only").check();
    const failed = (await stack.api("/api/webhook/events/recent?limit=25&type=status_update&q=failed")).events.filter((e) => e.status === "failed");
    assert.ok(failed.length > 0, "the seed has failed deliveries");
    await page.locator(`#log-table tr[data-id="${failed[0].id}"]`).waitFor();
    assert.equal(await log.count(), failed.length);
    assert.equal(await page.locator("#log-table tr.failed .badge").count(), failed.length);
    // Meta's title and code, as the API has them.
    const error = failed[0].error;
    assert.ok(error?.code && error?.title, "a failed status carries Meta's error");
    assert.ok((await page.locator("#log-table tr.failed").first().textContent()).includes(`${error.title} (${error.code})`));

    // Paging with the cursor, and back.
    await page.getByLabel("Failed deliveries only").uncheck();
    await page.locator(`#log-table tr[data-id="${all.events[0].id}"]`).waitFor();
    const second = await stack.api(`/api/webhook/events/recent?limit=25&before=${encodeURIComponent(all.next)}`);
    await page.getByRole("button", { name: "Older →" }).click();
    await page.locator(`#log-table tr[data-id="${second.events[0].id}"]`).waitFor();
    await expectText(page, "#log-page", "Page 2");
    assert.deepEqual(await log.evaluateAll((rows) => rows.map((r) => r.dataset.id)), second.events.map((e) => e.id));
    const csv = await download(page, "#log-csv");
    const lines = csv.trim().split("\r\n");
    assert.equal(lines[0], "id,type,occurred_at,received_at,contact,name,what,status,error_code,error_title");
    assert.deepEqual(lines.slice(1).map((line) => line.split(",")[0]), second.events.map((e) => e.id));
    await page.getByRole("button", { name: "← Newer" }).click();
    await page.locator(`#log-table tr[data-id="${all.events[0].id}"]`).waitFor();
    await expectText(page, "#log-page", "Page 1");
    await page.context().close();
  });

  test("the clicks CSV holds the chart's numbers", async () => {
    const page = await newPage();
    await signIn(page);
    await page.locator("#clicks").getByRole("radio", { name: "30 days" }).check();
    const metrics = await stack.api("/api/webhook/metrics?days=30");
    await expectText(page, "#clicks-total", shown(metrics.button_clicks.total));
    const csv = (await download(page, "#clicks-csv")).trim().split("\r\n").map((line) => line.split(","));
    const [header, ...rows] = csv;
    assert.equal(header[0], "date");
    assert.equal(header.at(-1), "total");
    assert.equal(rows.length, metrics.button_clicks.daily.length);
    rows.forEach((row, i) => {
      const day = metrics.button_clicks.daily[i];
      assert.equal(row[0], day.date);
      assert.equal(Number(row.at(-1)), day.total);
      header.slice(1, -1).forEach((button, k) => assert.equal(Number(row[k + 1]), day.by_button[button] ?? 0, `${day.date} ${button}`));
    });
    const table = await (await dailyTable(page)).locator("tbody tr").evaluateAll((trs) => trs.map((tr) => tr.lastElementChild.textContent));
    assert.deepEqual(table, metrics.button_clicks.daily.map((d) => shown(d.total)));
    await page.context().close();
  });

  test("a session whose token is refused returns to sign-in; sign-out forgets the token", async () => {
    const page = await newPage();
    await signIn(page);
    await page.locator("#clicks-total").waitFor();
    await page.evaluate(() => sessionStorage.setItem("pulse.dashboard-token", "a-token-since-rotated"));
    await page.reload();
    await page.getByRole("alert").filter({ hasText: "Your session has ended" }).waitFor();
    await signIn(page);
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("Dashboard token").waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem("pulse.dashboard-token")), null);
    await page.context().close();
  });

  test("the stack stopped and started again: offline, then live by itself", async () => {
    const page = await newPage();
    await signIn(page);
    await page.locator("#live-state[data-state=live]").waitFor();
    await stack.stop();
    await page.locator("#live-state[data-state=offline]").waitFor({ timeout: 30_000 });
    assert.equal(await page.locator("#live-state").textContent(), "Offline");
    await stack.start();
    await page.locator("#live-state[data-state=live]").waitFor({ timeout: 45_000 });
    // And events flow again.
    await stack.deliver(text("after the restart").payload);
    await page.locator("#feed .event", { hasText: "after the restart" }).waitFor();
    await page.context().close();
  });

  test("no serious or critical accessibility violation (axe-core), light and dark, signed out and in", async () => {
    for (const colorScheme of ["light", "dark"]) {
      const page = await newPage({ colorScheme });
      await page.goto(stack.base);
      await page.getByLabel("Dashboard token").waitFor();
      const signInViolations = await axe(page);
      assert.deepEqual(signInViolations, [], `sign-in, ${colorScheme}`);
      await signIn(page);
      await page.locator("#clicks-total").waitFor();
      await page.locator("#log-table tbody tr").first().waitFor();
      // Open the chart tables and a feed item: they are part of the page too.
      await page.locator("details summary").first().click();
      assert.deepEqual(await axe(page), [], `dashboard, ${colorScheme}`);
      await page.context().close();
    }
  });

  test("keyboard: the window, the log filters and the pager are reachable and work with keys", async () => {
    const page = await newPage();
    await signIn(page);
    await page.locator("#clicks-total").waitFor();
    await page.locator("#clicks").getByRole("radio", { name: "7 days" }).focus();
    await page.keyboard.press("ArrowRight");
    assert.equal(await page.locator("#clicks").getByRole("radio", { name: "30 days" }).isChecked(), true);
    const metrics = await stack.api("/api/webhook/metrics?days=30");
    await expectText(page, "#clicks-total", shown(metrics.button_clicks.total));
    await page.getByLabel("Search").focus();
    await page.keyboard.type("SIP");
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => [...document.querySelectorAll("#log-table td.what")].every((td) => td.textContent.includes("SIP")));
    await page.context().close();
  });

  test("phone, tablet and desk widths: no sideways scrolling; screenshots", async () => {
    for (const [width, height, colorScheme] of [[375, 812, "dark"], [768, 1024, "light"], [1440, 1000, "light"]]) {
      const page = await newPage({ viewport: { width, height }, colorScheme });
      await signIn(page);
      await page.locator("#clicks-total").waitFor();
      await page.locator("#log-table tbody tr").first().waitFor();
      await page.locator(".uplot").first().waitFor();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.equal(overflow, 0, `${width} px scrolls sideways by ${overflow} px`);
      await page.screenshot({ path: join(screenshots, `dashboard-${width}.png`) });
      await page.screenshot({ path: join(screenshots, `dashboard-${width}-full.png`), fullPage: true });
      await page.context().close();
    }
  });

  test("the live feed keeps up with 200 events a second and stays bounded (figures printed)", async () => {
    const page = await newPage();
    await signIn(page);
    await page.locator("#live-state[data-state=live]").waitFor();
    await page.evaluate(() => {
      window.longTasks = [];
      new PerformanceObserver((list) => window.longTasks.push(...list.getEntries().map((e) => e.duration))).observe({ type: "longtask" });
    });
    const { stdout } = await stack.simulate(["--rate", "200", "--duration", "5s", "--duplicates", "0"]);
    assert.match(stdout, /0 errors/);
    const stored = Number(/(\d+) events stored/.exec(stdout)[1]);
    await page.waitForFunction(() => document.querySelectorAll("#feed .event").length === 200);
    // Still responsive: pausing answers at once.
    await page.getByRole("button", { name: "Pause" }).click();
    await expectText(page, ".new-count", "0 new");
    const longTasks = await page.evaluate(() => window.longTasks);
    console.log(
      `live feed: ${stored} events in 5 s; feed holds ${await page.locator("#feed .event").count()}; ` +
        `long tasks: ${longTasks.length}, longest ${Math.round(Math.max(0, ...longTasks))} ms`,
    );
    await page.context().close();
  });

  test("first load: within the 150 KB budget, compressed; time to interactive (figures printed)", async () => {
    const page = await newPage();
    const started = Date.now();
    await page.goto(stack.base);
    await page.getByLabel("Dashboard token").waitFor();
    const interactive = Date.now() - started;
    const load = await page.evaluate(() => {
      const [navigation] = performance.getEntriesByType("navigation");
      const resources = performance.getEntriesByType("resource").filter((r) => /\.(js|css)$/.test(new URL(r.name).pathname));
      return {
        domInteractive: navigation.domInteractive,
        html: navigation.encodedBodySize,
        scriptsAndStyles: resources.reduce((sum, r) => sum + r.encodedBodySize, 0),
        decoded: resources.reduce((sum, r) => sum + r.decodedBodySize, 0),
        files: resources.length,
      };
    });
    assert.ok(load.files >= 2, "a script and a stylesheet");
    assert.ok(load.scriptsAndStyles < load.decoded / 2, "served compressed");
    assert.ok(load.scriptsAndStyles <= 150 * 1024, `JavaScript and CSS of the first load: ${load.scriptsAndStyles} bytes`);
    const signedIn = Date.now();
    await page.getByLabel("Dashboard token").fill(stack.token);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator("#clicks-total").waitFor();
    await page.locator("#log-table tbody tr").first().waitFor();
    console.log(
      `first load: html ${load.html} B, scripts and styles ${load.scriptsAndStyles} B compressed (${load.decoded} B decoded); ` +
        `DOM interactive ${Math.round(load.domInteractive)} ms, sign-in form usable ${interactive} ms; ` +
        `signed in to figures shown ${Date.now() - signedIn} ms`,
    );
    await page.context().close();
  });

  test("alerts: a refused delivery shows a named, announced banner, a history row and a chart mark; a good one resolves it", async () => {
    // A stack of its own that checks every second and alerts at the first refusal,
    // with a notification receiver that answers 404, as a deleted incoming webhook does.
    const receiver = createHttpServer((request, response) => {
      request.resume();
      response.writeHead(404, { "content-type": "text/plain" }).end("no_team");
    });
    await new Promise((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    const alertDir = mkdtempSync(join(tmpdir(), "pulse-alerts-"));
    writeFileSync(
      join(alertDir, "local.env"),
      `ALERT_CHECK_SECONDS=1\nALERT_REFUSED_COUNT=1\nALERT_WEBHOOK_URL=http://127.0.0.1:${receiver.address().port}/hook\n`,
    );
    const alerting = new Stack(alertDir, await freePort(), await freePort());
    let page;
    try {
      await alerting.start();
      assert.match(readFileSync(join(alertDir, "local.env"), "utf8"), /ALERT_REFUSED_COUNT=1/, "the settings stay beside the generated secrets");
      // Before: no banner, and the history says no alert has fired.
      page = await newPage({ locale: "en-US", viewport: { width: 1280, height: 900 } });
      await signIn(page, alerting.token, alerting.base);
      await expectText(page, "#alerts .state", "No alert has fired.");
      assert.equal(await page.locator("#alert-banner").isVisible(), false);
      assert.equal(await page.locator("#alert-table tbody tr").count(), 0);
      assert.equal(await page.locator("#webhook .chart-marks").textContent(), "");

      const refused = await fetch(`${alerting.base}/webhook`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-hub-signature-256": "sha256=00" },
        body: JSON.stringify(text("forged").payload),
      });
      assert.equal(refused.status, 401);
      const fired = await until(async () => (await alerting.api("/api/webhook/alerts")).active.find((a) => a.rule === "refused"), "the refused alert");
      assert.match(fired.message, /WHATSAPP_APP_SECRET/);

      // The banner: a region named "Active alerts", the rule, since when, what to check, the notification.
      const banner = page.getByRole("region", { name: "Active alerts" });
      const item = banner.locator('.alert-item[data-rule="refused"]');
      // The page's next poll brings it, without a reload.
      await item.waitFor({ timeout: 20_000 });
      assert.equal(await item.getByRole("heading").textContent(), "Deliveries refused");
      assert.match(await item.locator(".alert-since").textContent(), /^Since \d{1,2}:\d{2}:\d{2} [AP]M \((just now|[\d.]+ s ago)\)$/);
      assert.equal(await item.locator(".alert-message").textContent(), fired.message);
      // The receiver's 404 (the first attempt may still be on its way at the first poll).
      await page.waitForFunction(
        () => /^Notification not delivered yet: HTTP 404: no_team \(\d+ attempts?; retrying\)$/.test(document.querySelector(".alert-notification")?.textContent ?? ""),
        null,
        { timeout: 20_000 },
      );
      // Announced politely, once, not as an alert re-read at every poll.
      const announcer = page.locator("#alert-announcer");
      assert.equal(await announcer.getAttribute("role"), "status");
      await expectText(page, "#alert-announcer", `Alert: Deliveries refused. ${fired.message}`);
      assert.equal(await page.locator("[role=alert]").count(), 0);
      await expectText(page, "#health-status", "Degraded: 1 alert");
      // Reachable by keyboard: from the top of the page, a few tabs reach its link to the history.
      await page.locator("body").focus();
      let focused = "";
      for (let i = 0; i < 6 && !focused; i++) {
        await page.keyboard.press("Tab");
        focused = await page.evaluate(() => (document.activeElement?.closest("#alert-banner") ? document.activeElement.textContent : ""));
      }
      assert.equal(focused, "Alert history");
      await page.keyboard.press("Enter");
      assert.equal(await page.evaluate(() => location.hash), "#alerts");
      // The history lists it, with its notification.
      const firedRow = page.locator('#alert-table tr[data-rule="refused"][data-state="firing"]');
      await firedRow.waitFor();
      assert.equal(await firedRow.locator("th").textContent(), "Deliveries refused");
      assert.equal(await firedRow.locator("td.change").textContent(), "Fired");
      assert.match(await firedRow.locator("td.what").textContent(), /WHATSAPP_APP_SECRET/);
      assert.match(await firedRow.locator("td.notification").textContent(), /HTTP 404: no_team/);
      // The events-per-minute chart marks it, and says so in words.
      assert.match(await page.locator("#webhook .chart-marks").textContent(), /^Alert fired at \d{1,2}:\d{2} [AP]M \(Deliveries refused\)/);
      // Light and dark, with the banner: no serious or critical violation; phone and desk, no sideways scrolling.
      assert.deepEqual(await axe(page), [], "banner, light");
      for (const [width, height, colorScheme] of [[390, 844, "light"], [390, 844, "dark"], [1100, 800, "light"], [1280, 900, "light"]]) {
        await page.emulateMedia({ colorScheme });
        await page.setViewportSize({ width, height });
        await page.evaluate(() => window.scrollTo(0, 0));
        await page.locator("#webhook .uplot").waitFor();
        await sleep(300);
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
        assert.equal(overflow, 0, `${width} px scrolls sideways by ${overflow} px`);
        const name = `alerts-${width}${colorScheme === "dark" ? "-dark" : ""}`;
        await page.screenshot({ path: join(screenshots, `${name}.png`) });
        await page.locator("#alerts").screenshot({ path: join(screenshots, `${name}-history.png`) });
        if (colorScheme === "dark") assert.deepEqual(await axe(page), [], "banner, dark");
      }

      // A delivery signed with the right secret resolves it: the banner goes, the history says so.
      await alerting.deliver(text("signed as it should be").payload);
      await page.locator("#alert-banner").waitFor({ state: "hidden", timeout: 30_000 });
      const resolvedRow = page.locator('#alert-table tr[data-rule="refused"][data-state="resolved"]');
      await resolvedRow.waitFor({ timeout: 30_000 });
      assert.match(await resolvedRow.locator("td.change").textContent(), /^Resolved after [\d.]+ (s|min)$/);
      assert.deepEqual(await page.locator("#alert-table tbody tr").evaluateAll((rows) => rows.map((r) => r.dataset.state)), ["resolved", "firing"]);
      await expectText(page, "#alert-announcer", "Resolved: Deliveries refused.");
      await expectText(page, "#health-status", "Healthy");
      await page.locator("#alerts").screenshot({ path: join(screenshots, "alerts-1280-resolved-history.png") });
      // The chart keeps the mark for the hour, beside the delivery's bar.
      await expectText(page, "#webhook .stat #events-last-hour", "1");
      assert.match(await page.locator("#webhook .chart-marks").textContent(), /\(Deliveries refused\)/);
      await page.locator("#webhook figure").screenshot({ path: join(screenshots, "alerts-1280-resolved-chart.png") });
    } finally {
      await page?.context().close();
      await alerting.stop();
      receiver.close();
      rmSync(alertDir, { recursive: true, force: true });
    }
  });

  test("no Content-Security-Policy violation and no page error anywhere above", () => {
    assert.deepEqual(cspViolations, []);
  });
});

async function axe(page) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join("; ")})`);
}
