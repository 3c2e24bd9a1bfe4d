// The sign-in page (only when the server runs with users): on success, back where the user was.
import { api, clearMessages, getSession, showError } from "./app.js";

const form = document.getElementById("login-form");

function nextPage() {
  const next = new URLSearchParams(location.search).get("next") || "/";
  // only a path on this server: never an open redirect
  return next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\") ? next : "/";
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
