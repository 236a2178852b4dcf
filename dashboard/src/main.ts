// Pulse's dashboard: sign in with the dashboard token, then the dashboard. The
// token is kept for the browser session; a refused one leads back to sign-in.

import "./style.css";
import { Api, ApiError, config } from "./api";
import { createDashboard, type Dashboard } from "./dashboard";
import { h, fill } from "./dom";
import { showSignIn } from "./sections/signin";

/** The token lives for the browser session only (closed tab, gone). */
const TOKEN_KEY = "pulse.dashboard-token";

const app = document.getElementById("app")!;
let dashboard: Dashboard | null = null;

function signIn(notice = ""): void {
  dashboard?.stop();
  dashboard = null;
  sessionStorage.removeItem(TOKEN_KEY);
  showSignIn(app, notice, async (token) => {
    sessionStorage.setItem(TOKEN_KEY, token);
    await open(token);
  });
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
