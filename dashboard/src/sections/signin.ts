// The sign-in page: the dashboard token, tried against the API before it is
// accepted, and why it was not.

import { Api, Unauthorized } from "../api";
import { fill, h } from "../dom";

/** Shows the sign-in page in `app`; `signedIn` gets a token the API accepted. */
export function showSignIn(app: HTMLElement, notice: string, signedIn: (token: string) => Promise<void>): void {
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
      await signedIn(token);
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
