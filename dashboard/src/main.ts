// Pulse's dashboard: sign in with the dashboard token, then the dashboard.

import "./style.css";
import { Api, ApiError, Unauthorized, config } from "./api";
import { createDashboard, type Dashboard } from "./dashboard";
import { h, fill } from "./dom";

/** The token lives for the browser session only (closed tab, gone). */
const TOKEN_KEY = "pulse.dashboard-token";

const app = document.getElementById("app")!;
let dashboard: Dashboard | null = null;

function signIn(notice = ""): void {
  dashboard?.stop();
  dashboard = null;
  sessionStorage.removeItem(TOKEN_KEY);
  document.title = "Sign in · Pulse";
  const input = h("input", {
    id: "token",
    name: "token",
    type: "password",
    autocomplete: "current-password",
    required: true,
    "aria-describedby": "token-help signin-error",
  });
  const error = h("p", { id: "signin-error", class: "error", role: "alert" }, notice);
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    { class: "signin card", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Pulse"),
    h(
      "p",
      { id: "token-help" },
      "Sign in with the dashboard token (",
      h("code", {}, "DASHBOARD_TOKEN"),
      "; locally it is in ",
      h("code", {}, "data/local.env"),
      ").",
    ),
    h("label", { for: "token" }, "Dashboard token"),
    input,
    error,
    button,
  );
  const submitToken = async (): Promise<void> => {
    const token = input.value.trim();
    button.disabled = true;
    error.textContent = "";
    try {
      await new Api(token).realtime();
      sessionStorage.setItem(TOKEN_KEY, token);
      await open(token);
    } catch (failure) {
      error.textContent =
        failure instanceof Unauthorized
          ? "That token is not right: the server refused it."
          : `Cannot sign in: ${(failure as Error).message}`;
      button.disabled = false;
      input.focus();
      input.select();
    }
  };
  form.addEventListener("submit", (submit) => {
    submit.preventDefault();
    void submitToken();
  });
  fill(app, h("main", { id: "main", class: "signin-page" }, form));
  input.focus();
}

async function open(token: string): Promise<void> {
  let settings;
  try {
    settings = await config();
  } catch (failure) {
    fill(
      app,
      h(
        "main",
        { id: "main", class: "signin-page" },
        h("p", { class: "error", role: "alert" }, `Pulse cannot be reached: ${(failure as ApiError).message}`),
      ),
    );
    return;
  }
  document.title = "Pulse · WhatsApp webhook dashboard";
  dashboard = createDashboard(new Api(token), settings, {
    signOut: () => signIn(),
    expired: () => signIn("Your session has ended (the token was refused). Sign in again."),
  });
  fill(app, dashboard.element);
  dashboard.start();
}

const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) void open(saved);
else signIn();
