// Sign-in: the name and password go once to the registry, which answers with an HttpOnly cookie;
// nothing is kept in the page or in storage the page can read.

import { ApiError, session, signIn } from "../lib/api.js";
import { fill, h, link } from "../lib/dom.js";

export function render({ container, url, navigate }) {
  const next = url.searchParams.get("next") ?? "/";
  const safeNext = next.startsWith("/") && !next.startsWith("//") ? next : "/";
  if (session.auth === "none" || !session.signIn) {
    fill(
      container,
      h(
        "div",
        { class: "card login" },
        h("h1", { tabindex: "-1" }, "Sign in"),
        h(
          "p",
          { class: "muted" },
          session.auth === "none"
            ? "This registry does not ask anyone to sign in."
            : "This registry signs users in through an external token server; the web interface cannot sign in here.",
        ),
        h("p", null, link("/", "Go to the repositories")),
      ),
    );
    return "Sign in";
  }
  if (session.user) {
    fill(
      container,
      h(
        "div",
        { class: "card login" },
        h("h1", { tabindex: "-1" }, "Signed in"),
        h("p", { class: "muted" }, `You are signed in as ${session.user}.`),
        h("p", null, link(safeNext, "Continue")),
      ),
    );
    return "Signed in";
  }
  const user = h("input", {
    name: "username",
    autocomplete: "username",
    required: true,
    autofocus: true,
    autocapitalize: "none",
    spellcheck: "false",
  });
  const password = h("input", {
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const error = h("p", { class: "error", role: "alert" });
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        error.textContent = "";
        submit.disabled = true;
        try {
          await signIn(user.value, password.value);
          password.value = "";
          navigate(safeNext, { replace: true });
        } catch (failure) {
          error.textContent = failure instanceof ApiError && failure.status === 429
            ? "Too many failed attempts: wait a few minutes and try again."
            : failure.message;
          password.select();
        } finally {
          submit.disabled = false;
        }
      },
    },
    h("label", null, "User name", user),
    h("label", null, "Password", password),
    error,
    submit,
  );
  fill(
    container,
    h(
      "div",
      { class: "card login" },
      h("h1", { tabindex: "-1" }, "Sign in to Simple Registry"),
      h("p", { class: "muted" }, `Use your registry account for ${session.host}.`),
      form,
    ),
  );
  return "Sign in";
}
