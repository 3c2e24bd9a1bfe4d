// Users and API tokens: everyone signed in changes their password and manages their own
// tokens; admins also add users, change roles, reset passwords, disable users, see every
// token and read the audit log. Every change goes through the JSON API, which records it.
import {
  api,
  can,
  clearMessages,
  el,
  formatDate,
  initAccount,
  showError,
  showMessage,
} from "./app.js";

const $ = (id) => document.getElementById(id);
const ROLES = ["viewer", "analyst", "admin"];
const AUDIT_PER_PAGE = 20;
let me = null; // {name, role}
let signIn = false; // whether this server asks for a login
let auditPage = 1;

const when = (value) => (value ? formatDate(value) : "never");

// ---- users (admins) ---------------------------------------------------------------------------

async function loadUsers() {
  let data;
  try {
    data = await api("GET", "/api/users");
  } catch (error) {
    showError(error, "Could not list the users");
    return;
  }
  $("users-body").replaceChildren(...data.items.map(userRow));
  $("token-user").replaceChildren(
    ...data.items.filter((u) => !u.disabled).map((u) => el("option", { value: u.name }, u.name)),
  );
  $("token-user").value = me.name;
}

function userRow(user) {
  const role = el(
    "select",
    { "aria-label": `Role of ${user.name}` },
    ROLES.map((r) => el("option", { value: r, selected: r === user.role }, r)),
  );
  role.addEventListener("change", () => changeUser(user, { role: role.value }, role));
  const status = [user.has_password ? "password" : "no sign-in"];
  if (user.disabled) status.push("disabled");
  const actions = el("div", { className: "row-actions" });
  if (user.has_password) {
    const reset = el("button", { type: "button" }, "Reset password");
    reset.setAttribute("aria-label", `Reset the password of ${user.name}`);
    reset.addEventListener("click", () => resetPassword(user));
    actions.append(reset);
  }
  if (user.name !== me.name) {
    const label = user.disabled ? "Enable" : "Disable";
    const kind = user.disabled ? "" : "danger";
    const toggle = el("button", { type: "button", className: kind }, label);
    toggle.setAttribute("aria-label", `${label} ${user.name}`);
    toggle.addEventListener("click", () => changeUser(user, { disabled: !user.disabled }));
    actions.append(toggle);
  }
  return el(
    "tr",
    { dataset: { user: user.name }, className: user.disabled ? "disabled" : "" },
    el("td", { className: "title" }, user.name),
    el("td", {}, role),
    el("td", {}, status.join(" · ")),
    el("td", {}, actions),
  );
}

async function changeUser(user, change, control) {
  clearMessages();
  try {
    await api("PATCH", `/api/users/${encodeURIComponent(user.name)}`, change);
    const what =
      "role" in change
        ? `${user.name} is now ${change.role}.`
        : `${user.name} is ${change.disabled ? "disabled: their sessions ended" : "enabled"}.`;
    showMessage(what, { kind: "info" });
  } catch (error) {
    if (control) control.value = user.role;
    showError(error, `Could not change ${user.name}`);
  }
  await Promise.all([loadUsers(), loadTokens(), loadAudit()]);
}

function resetPassword(user) {
  const dialog = $("reset-dialog");
  $("reset-name").textContent = user.name;
  $("reset-password").value = "";
  dialog.returnValue = "";
  dialog.addEventListener(
    "close",
    async () => {
      const password = $("reset-password").value;
      $("reset-password").value = "";
      if (dialog.returnValue !== "reset") return;
      clearMessages();
      try {
        await api("POST", `/api/users/${encodeURIComponent(user.name)}/password`, { password });
        showMessage(`New password set for ${user.name}; their sessions ended.`, { kind: "info" });
      } catch (error) {
        showError(error, `Could not set the password of ${user.name}`);
      }
      await loadAudit();
    },
    { once: true },
  );
  dialog.showModal();
}

function initUserForm() {
  $("user-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    clearMessages();
    const name = $("user-name").value.trim();
    const password = $("user-password").value;
    if (!name || !password) return showError("Give the user's name and a password.");
    try {
      await api("POST", "/api/users", { name, role: $("user-role").value, password });
    } catch (error) {
      return showError(error, "Could not add the user");
    }
    $("user-form").reset();
    showMessage(`Added ${name}.`, { kind: "info" });
    // the first user with a password turns sign-in on: the next call asks for a login
    await Promise.all([loadUsers(), loadAudit()]);
  });
}

// ---- tokens -----------------------------------------------------------------------------------

async function loadTokens() {
  const everyone = can(me.role, "admin") && $("tokens-all").checked;
  let data;
  try {
    data = await api("GET", "/api/tokens" + (everyone ? "?all=true" : ""));
  } catch (error) {
    showError(error, "Could not list the API tokens");
    return;
  }
  $("tokens-body").replaceChildren(...data.items.map(tokenRow));
  if (data.items.length === 0) {
    const none = everyone ? "No API token yet." : "You have no API token yet.";
    $("tokens-body").append(el("tr", {}, el("td", { colSpan: 7, className: "muted" }, none)));
  }
}

function tokenRow(token) {
  const revoke = el("button", { type: "button", className: "danger" }, "Revoke");
  revoke.setAttribute("aria-label", `Revoke the token “${token.label || token.id}”`);
  revoke.addEventListener("click", () => revokeToken(token));
  const expires = token.expired
    ? el("span", { className: "badge rejected" }, "expired")
    : token.expires_at
      ? formatDate(token.expires_at)
      : "never";
  return el(
    "tr",
    { dataset: { token: String(token.id) } },
    el("td", { className: "title" }, token.label || `#${token.id}`),
    el("td", {}, token.user),
    el("td", {}, token.role),
    el("td", {}, when(token.created_at)),
    el("td", {}, when(token.last_used_at)),
    el("td", {}, expires),
    el("td", {}, el("div", { className: "row-actions" }, revoke)),
  );
}

function revokeToken(token) {
  const dialog = $("revoke-dialog");
  $("revoke-label").textContent = token.label || `#${token.id}`;
  dialog.returnValue = "";
  dialog.addEventListener(
    "close",
    async () => {
      if (dialog.returnValue !== "revoke") return;
      clearMessages();
      try {
        await api("DELETE", `/api/tokens/${encodeURIComponent(token.id)}`);
        showMessage(`Revoked “${token.label || token.id}”.`, { kind: "info" });
      } catch (error) {
        showError(error, "Could not revoke the token");
      }
      await Promise.all([loadTokens(), loadAudit()]);
    },
    { once: true },
  );
  dialog.showModal();
}

function initTokenForm() {
  const rank = ROLES.indexOf(me.role);
  for (const option of $("token-role").options) {
    option.hidden = option.value !== "" && ROLES.indexOf(option.value) > rank;
  }
  $("token-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    clearMessages();
    const days = $("token-expires").value;
    const body = {
      label: $("token-label").value.trim(),
      role: $("token-role").value || null,
      expires_days: days ? Number(days) : null,
    };
    if (can(me.role, "admin") && $("token-user").value) body.user = $("token-user").value;
    let made;
    try {
      made = await api("POST", "/api/tokens", body);
    } catch (error) {
      return showError(error, "Could not create the token");
    }
    $("token-form").reset();
    $("token-user").value = me.name;
    $("token-created").hidden = false;
    $("token-value").value = made.token;
    $("token-value").select();
    await Promise.all([loadTokens(), loadAudit()]);
  });
  $("tokens-all").addEventListener("change", loadTokens);
}

// ---- own password -----------------------------------------------------------------------------

function initPasswordForm() {
  $("password-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    clearMessages();
    const current = $("password-current").value;
    const password = $("password-new").value;
    if (password !== $("password-again").value) {
      return showError("The two new passwords differ.");
    }
    try {
      await api("POST", "/api/account/password", { current, password });
    } catch (error) {
      return showError(error, "Could not change your password");
    }
    $("password-form").reset();
    showMessage("Your password is changed; your other sessions ended.", { kind: "info" });
    await loadAudit();
  });
}

// ---- audit log (admins) -----------------------------------------------------------------------

async function loadAudit() {
  if (!can(me.role, "admin")) return;
  let data;
  try {
    const search = new URLSearchParams({ page: String(auditPage), per_page: "20" });
    data = await api("GET", "/api/audit?" + search);
  } catch (error) {
    showError(error, "Could not read the audit log");
    return;
  }
  $("audit-body").replaceChildren(
    ...data.items.map((e) =>
      el(
        "tr",
        {},
        el("td", {}, el("time", { dateTime: e.at }, formatDate(e.at))),
        el("td", {}, e.actor),
        el("td", {}, e.action),
        el("td", {}, e.target),
        el("td", {}, e.detail),
      ),
    ),
  );
  const pages = Math.max(1, Math.ceil(data.total / AUDIT_PER_PAGE));
  $("audit-info").textContent = `Page ${data.page} of ${pages}`;
  $("audit-prev").disabled = data.page <= 1;
  $("audit-next").disabled = data.page >= pages;
}

function initAudit() {
  $("audit-prev").addEventListener("click", () => {
    auditPage = Math.max(1, auditPage - 1);
    loadAudit();
  });
  $("audit-next").addEventListener("click", () => {
    auditPage += 1;
    loadAudit();
  });
}

// ---- start ------------------------------------------------------------------------------------

async function main() {
  const session = await initAccount();
  if (!session || !session.user) return; // initAccount sends a visitor to sign in
  me = session.user;
  signIn = session.auth;
  $("tokens-section").hidden = false;
  $("password-section").hidden = !signIn;
  initTokenForm();
  initPasswordForm();
  const tasks = [loadTokens()];
  if (can(me.role, "admin")) {
    $("users-section").hidden = false;
    $("audit-section").hidden = false;
    $("tokens-all-label").hidden = false;
    $("token-user-field").hidden = false;
    $("no-login-note").hidden = signIn;
    initUserForm();
    initAudit();
    tasks.push(loadUsers(), loadAudit());
  }
  await Promise.all(tasks);
}

main();
