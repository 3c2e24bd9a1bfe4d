// Shared by every page: the JSON API client (CSRF, one error shape), messages, the account bar,
// and small DOM helpers. Report data only ever reaches the page as text (textContent or
// attributes set through the DOM), never as markup.

/** An error answer of the API: `{"error": {"code", "message"}}` (a stale change also says how
 * things stand now: `current`). */
export class ApiError extends Error {
  constructor(code, message, status, current = null) {
    super(message);
    this.code = code;
    this.status = status;
    this.current = current;
  }
}

let csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
let session = null;

/** The session (`GET /api/session`), fetched once per page. */
export async function getSession() {
  if (!session) {
    session = await api("GET", "/api/session");
    if (session && session.csrf_token) csrf = session.csrf_token;
  }
  return session;
}

async function csrfToken() {
  if (!csrf) await getSession();
  return csrf;
}

/**
 * Call the JSON API. `body` is an object (sent as JSON) or FormData; non-GET requests carry the
 * CSRF token; `headers` adds some (If-Match); `keepalive` lets a request outlive the page.
 * Answers the parsed JSON (null for 204); throws ApiError with the API's message.
 */
export async function api(
  method,
  path,
  body,
  { raw = false, headers: extra = {}, keepalive } = {},
) {
  const headers = { Accept: "application/json", ...extra };
  let payload;
  if (body instanceof FormData) {
    payload = body;
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = await csrfToken();
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: payload,
      credentials: "same-origin",
      keepalive,
    });
  } catch (error) {
    throw new ApiError("network", "The server could not be reached; check that it is running.", 0);
  }
  if (!response.ok) throw await errorOf(response);
  if (raw) return response;
  if (response.status === 204) return null;
  return (response.headers.get("content-type") || "").includes("json") ? response.json() : null;
}

let leavingForLogin = false;

/** Go to the login page once: several calls answered 401 at once must not restart the navigation. */
function goToLogin() {
  if (leavingForLogin) return;
  leavingForLogin = true;
  location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
}

async function errorOf(response) {
  let error = null;
  try {
    error = (await response.json()).error;
  } catch {
    // not JSON: fall through to the status line
  }
  if (response.status === 401 && location.pathname !== "/login") goToLogin();
  if (error && typeof error === "object") {
    return new ApiError(
      String(error.code || "error"),
      String(error.message || ""),
      response.status,
      error.current && typeof error.current === "object" ? error.current : null,
    );
  }
  const message = typeof error === "string" ? error : `The server answered ${response.status}.`;
  return new ApiError("http_" + response.status, message, response.status);
}

/** Create an element: `el("a", {href, className}, "text", child)`. Strings become text nodes. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("aria-") || key === "role") node.setAttribute(key, String(value));
    else node[key] = value;
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Show a message in the page's message area (errors by default); it stays until dismissed. */
export function showMessage(text, { kind = "error" } = {}) {
  const area = document.getElementById("messages");
  const close = el("button", { type: "button", className: "link" }, "Dismiss");
  const box = el("div", { className: `message ${kind}` }, el("p", {}, text), close);
  close.addEventListener("click", () => box.remove());
  area.append(box);
  return box;
}

export function clearMessages() {
  document.getElementById("messages").replaceChildren();
}

/** Report an error from `api()` (or anything else) in the message area. */
export function showError(error, prefix = "") {
  const text = error instanceof ApiError ? error.message : String(error?.message || error);
  showMessage(prefix ? `${prefix}: ${text}` : text);
}

/** Only http(s) links are ever made clickable. */
export function safeUrl(url) {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
  } catch {
    return null;
  }
}

export const STATUS_LABELS = { new: "new", in_review: "in review", reviewed: "reviewed" };

/** "just now", "5 minutes ago", "3 hours ago", else the date: how long ago something was. */
export function ago(value) {
  const then = new Date(value).getTime();
  if (Number.isNaN(then)) return String(value ?? "");
  const seconds = Math.max(0, (Date.now() - then) / 1000);
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.round(seconds / 60)} minutes ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} hours ago`;
  return formatDate(value);
}

export const TLP_LABELS = {
  clear: "TLP:CLEAR",
  green: "TLP:GREEN",
  amber: "TLP:AMBER",
  "amber+strict": "TLP:AMBER+STRICT",
  red: "TLP:RED",
};

export function formatDate(value) {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value ?? "");
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function can(role, action) {
  const rank = { viewer: 0, analyst: 1, admin: 2 }[role] ?? -1;
  return { read: 0, write: 1, admin: 2 }[action] <= rank;
}

/** Fill the account bar: who is signed in, and a sign-out button when auth is on. */
export async function initAccount() {
  const nav = document.getElementById("account");
  let current;
  try {
    current = await getSession();
  } catch (error) {
    showError(error, "Could not read the session");
    return null;
  }
  const user = current.user;
  if (user) {
    nav.append(el("span", {}, `${user.name} · ${user.role}`));
    if (location.pathname !== "/admin") {
      const label = can(user.role, "admin") ? "Users & tokens" : "Tokens";
      nav.append(el("a", { href: "/admin" }, label));
    }
    if (current.auth) {
      const out = el("button", { type: "button", className: "link" }, "Sign out");
      out.addEventListener("click", async () => {
        try {
          await api("POST", "/api/logout");
          location.assign("/login");
        } catch (error) {
          showError(error, "Could not sign out");
        }
      });
      nav.append(out);
    }
  } else if (current.auth && location.pathname !== "/login") {
    goToLogin();
  }
  return current;
}

/** Download an API answer as a file, named by its Content-Disposition. */
export async function download(path, fallbackName) {
  const response = await api("GET", path, undefined, { raw: true });
  const disposition = response.headers.get("content-disposition") || "";
  const match = /filename\*=UTF-8''([^;]+)|filename="?([^";]+)"?/i.exec(disposition);
  const name = match ? decodeURIComponent(match[1] || match[2]) : fallbackName;
  const url = URL.createObjectURL(await response.blob());
  const link = el("a", { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return name;
}
