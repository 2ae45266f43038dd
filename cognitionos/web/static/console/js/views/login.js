// Log in; then back to where the person was going.

import { login, session } from "../client.js";
import { errorBox, h } from "../ui.js";

const REASONS = {
  expired: "Your session has expired. Log in again to continue where you were.",
  elsewhere: "You were logged out (in another tab, or the login was revoked).",
};

export default {
  title: "Log in",
  mount(root, { query, go }) {
    const next = query.next && query.next.startsWith("/") && !query.next.startsWith("/login")
      ? query.next : "/executions";
    if (session.signedIn) {
      go(next);
      return null;
    }
    const email = h("input", { id: "login-email", type: "email", name: "email", required: true,
      autocomplete: "username", "data-testid": "login-email" });
    const password = h("input", { id: "login-password", type: "password", name: "password",
      required: true, autocomplete: "current-password", "data-testid": "login-password" });
    const submit = h("button", { type: "submit", "data-testid": "login-submit" }, "Log in");
    const problems = h("div", { "aria-live": "polite" });
    const form = h("form", { class: "panel", novalidate: true },
      h("div", { class: "field" }, h("label", { for: "login-email" }, "Email"), email),
      h("div", { class: "field" }, h("label", { for: "login-password" }, "Password"), password),
      problems,
      submit);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      problems.replaceChildren();
      if (!email.value || !password.value) {
        problems.append(errorBox({ message: "Enter your email and password." }));
        (email.value ? password : email).focus();
        return;
      }
      submit.disabled = true;
      submit.textContent = "Logging in…";
      try {
        await login(email.value.trim(), password.value);
        const [path, search] = next.split("?");
        location.hash = `#${path}${search ? `?${search}` : ""}`;
      } catch (err) {
        problems.append(errorBox(err));
        password.select();
        password.focus();
      } finally {
        submit.disabled = false;
        submit.textContent = "Log in";
      }
    });
    root.append(h("section", { class: "login" },
      h("h1", {}, "Log in to CognitionOS"),
      REASONS[query.reason] ? h("p", { class: "error-box", role: "status" }, REASONS[query.reason]) : null,
      form,
      h("p", { class: "sub" }, "No account yet? An administrator creates one with ",
        h("code", {}, "cognitionos users create"), ". The API is also open in ",
        h("a", { href: "/graphql" }, "GraphiQL"), ".")));
    email.focus();
    return null;
  },
};
