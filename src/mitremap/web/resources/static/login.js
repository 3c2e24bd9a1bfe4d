// The sign-in page (only when the server runs with users): on success, back where the user was.
import { api, clearMessages, getSession, showError } from "./app.js";

const form = document.getElementById("login-form");

function nextPage() {
  const next = new URLSearchParams(location.search).get("next") || "/";
  // only a page on this server, never an open redirect: resolved as the browser will (it
  // drops tabs and newlines and reads "\" as "/", so "/\t/evil.example" is "//evil.example")
  try {
    const target = new URL(next, location.origin);
    return target.origin === location.origin ? target.pathname + target.search + target.hash : "/";
  } catch {
    return "/";
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearMessages();
  const name = document.getElementById("login-name").value.trim();
  const password = document.getElementById("login-password").value;
  if (!name || !password) return showError("Give your user name and password.");
  try {
    await api("POST", "/api/login", { name, password });
    location.assign(nextPage());
  } catch (error) {
    showError(error, "Could not sign in");
  }
});

getSession()
  .then((session) => {
    if (!session.auth || session.user) location.replace(nextPage());
  })
  .catch((error) => showError(error, "Could not read the session"));
