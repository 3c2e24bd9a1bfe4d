// The reports list: add a report (paste, file, web address; TLP, tags), search the text and the
// indicators, filter, sort by a column, page; select several to mark them reviewed, delete them
// (admins) or export them as one file; for admins, the model selector (switching asks first),
// new reports' TLP and the retrain button with its progress.
import {
  api,
  can,
  clearMessages,
  download,
  el,
  formatDate,
  initAccount,
  showError,
  showMessage,
  STATUS_LABELS,
  TLP_LABELS,
} from "./app.js";
import { reanalyseAll, renderLearning } from "./learning.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const whole = (value, fallback) => Math.max(1, Number.parseInt(value || "", 10) || fallback);
const FILTERS = ["q", "status", "tag", "tlp", "technique"];
const query = {
  ...Object.fromEntries(FILTERS.map((name) => [name, params.get(name) || ""])),
  sort: params.get("sort") || "-updated",
  page: whole(params.get("page"), 1),
  perPage: Math.min(100, whole(params.get("per_page"), 25)),
};
const selected = new Map(); // report id -> title, across pages
let role = "viewer";

// ---- the list ---------------------------------------------------------------------------------

let asked = 0; // the newest list asked for: an older answer arriving late is dropped

async function loadList() {
  const ticket = ++asked;
  const search = new URLSearchParams({ page: String(query.page), per_page: String(query.perPage) });
  for (const name of FILTERS) if (query[name]) search.set(name, query[name]);
  search.set("sort", query.sort);
  const shown = shownQuery();
  history.replaceState(null, "", shown ? "?" + shown : "/");
  let data;
  try {
    data = await api("GET", "/api/reports?" + search);
  } catch (error) {
    showError(error, "Could not list the reports");
    return;
  }
  if (ticket !== asked) return;
  const pages = Math.max(1, Math.ceil(data.total / data.per_page));
  if (query.page > pages && data.total > 0) {
    query.page = pages;
    return loadList();
  }
  $("reports-body").replaceChildren(...data.items.map(row));
  if (data.items.length === 0) {
    const filtered = FILTERS.some((name) => query[name]);
    const empty = filtered ? "No report matches." : "No report yet: add one above.";
    $("reports-body").append(el("tr", {}, el("td", { colSpan: 11, className: "muted" }, empty)));
  }
  showSort();
  showSelected();
  const noun = data.total === 1 ? "report" : "reports";
  $("list-summary").textContent =
    `${data.total} ${noun}` + (query.q ? ` matching “${query.q}”` : "");
  $("page-info").textContent = `Page ${data.page} of ${pages}`;
  $("page-prev").disabled = data.page <= 1;
  $("page-next").disabled = data.page >= pages;
}

function shownQuery() {
  const shown = new URLSearchParams();
  for (const name of FILTERS) if (query[name]) shown.set(name, query[name]);
  if (query.sort !== "-updated") shown.set("sort", query.sort);
  if (query.page > 1) shown.set("page", String(query.page));
  if (query.perPage !== 25) shown.set("per_page", String(query.perPage));
  return shown.toString();
}

function row(report) {
  const link = el(
    "a",
    { href: `/reports/${encodeURIComponent(report.id)}` },
    report.title || "(untitled)",
  );
  const techniques = report.techniques || [];
  const shown =
    techniques.slice(0, 8).join(", ") + (techniques.length > 8 ? ` +${techniques.length - 8}` : "");
  const pick = el("input", { type: "checkbox", checked: selected.has(report.id) });
  pick.setAttribute("aria-label", `Select “${report.title || report.id}”`);
  pick.addEventListener("change", () => {
    if (pick.checked) selected.set(report.id, report.title);
    else selected.delete(report.id);
    showSelected();
  });
  const tags = (report.tags || []).map((t) => el("span", { className: "chip" }, t));
  const cells = [
    el("td", { className: "pick" }, pick),
    el(
      "td",
      { className: "title" },
      link,
      tags.length ? el("div", { className: "tags" }, ...tags) : null,
    ),
    el("td", { className: "source" }, report.source_org || report.source || ""),
    el("td", {}, el("time", { dateTime: report.created_at }, formatDate(report.created_at))),
    el("td", {}, report.published || ""),
    el(
      "td",
      {},
      el(
        "span",
        { className: `tlp tlp-${report.tlp.replace("+", "-")}` },
        TLP_LABELS[report.tlp] || report.tlp,
      ),
    ),
    el(
      "td",
      {},
      el(
        "span",
        { className: `badge ${report.status}` },
        STATUS_LABELS[report.status] || report.status,
      ),
    ),
    el(
      "td",
      { className: "num" },
      String(report.accepted) + (report.added ? ` + ${report.added} added` : ""),
    ),
    el("td", { className: "num" }, String(report.pending)),
    el("td", { className: "tech-list" }, shown),
    el("td", {}),
  ];
  if (can(role, "admin")) {
    const remove = el("button", { type: "button", className: "danger small" }, "Delete");
    remove.setAttribute("aria-label", `Delete “${report.title || report.id}”`);
    remove.addEventListener("click", () => confirmDelete([report.id], report.title || report.id));
    cells.at(-1).append(remove);
  }
  return el("tr", { dataset: { id: String(report.id) } }, ...cells);
}

/** Ask, then delete one report or several (admins). */
function confirmDelete(ids, name) {
  const dialog = $("confirm-delete");
  $("confirm-title").textContent = String(name);
  dialog.returnValue = "";
  dialog.addEventListener(
    "close",
    async () => {
      if (dialog.returnValue !== "delete") return;
      try {
        if (ids.length === 1) await api("DELETE", `/api/reports/${encodeURIComponent(ids[0])}`);
        else await api("POST", "/api/reports/bulk", { ids, action: "delete" });
        for (const id of ids) selected.delete(id);
        showMessage(`Deleted “${name}”.`, { kind: "info" });
        await loadList();
      } catch (error) {
        showError(error, "Could not delete");
      }
    },
    { once: true },
  );
  dialog.showModal();
}

// ---- sorting and selecting --------------------------------------------------------------------

function showSort() {
  const key = query.sort.replace(/^-/, "");
  for (const th of document.querySelectorAll("th[data-sort]")) {
    const on = th.dataset.sort === key;
    th.setAttribute(
      "aria-sort",
      on ? (query.sort.startsWith("-") ? "descending" : "ascending") : "none",
    );
  }
}

function initSort() {
  for (const th of document.querySelectorAll("th[data-sort]")) {
    th.querySelector("button").addEventListener("click", () => {
      const key = th.dataset.sort;
      const first = ["created", "updated", "published", "accepted", "pending"].includes(key)
        ? "-"
        : "";
      const current = query.sort.replace(/^-/, "");
      query.sort = current === key ? (query.sort.startsWith("-") ? key : `-${key}`) : first + key;
      query.page = 1;
      loadList();
    });
  }
}

function showSelected() {
  const count = selected.size;
  $("bulk-bar").hidden = count === 0;
  $("bulk-count").textContent = `${count} selected`;
  $("bulk-reviewed").hidden = !can(role, "write");
  $("bulk-delete").hidden = !can(role, "admin");
  const boxes = [...document.querySelectorAll("#reports-body input[type=checkbox]")];
  $("pick-all").checked = boxes.length > 0 && boxes.every((b) => b.checked);
}

function initBulk() {
  $("pick-all").addEventListener("change", () => {
    const wanted = $("pick-all").checked;
    for (const box of document.querySelectorAll("#reports-body input[type=checkbox]")) {
      if (box.checked !== wanted) box.click();
    }
  });
  $("bulk-clear").addEventListener("click", () => {
    selected.clear();
    for (const box of document.querySelectorAll("#reports-body input[type=checkbox]"))
      box.checked = false;
    showSelected();
  });
  $("bulk-reviewed").addEventListener("click", async () => {
    try {
      const done = await api("POST", "/api/reports/bulk", {
        ids: [...selected.keys()],
        action: "mark_reviewed",
      });
      showMessage(`Marked ${done.done.length} reports reviewed.`, { kind: "info" });
      await loadList();
    } catch (error) {
      showError(error, "Could not mark them reviewed");
    }
  });
  $("bulk-delete").addEventListener("click", () =>
    confirmDelete([...selected.keys()], `${selected.size} selected reports`),
  );
  for (const button of document.querySelectorAll("[data-bulk-format]")) {
    button.addEventListener("click", async () => {
      button.closest("details").removeAttribute("open");
      const ids = [...selected.keys()].join(",");
      const format = button.dataset.bulkFormat;
      try {
        await download(
          `/api/reports/export?${new URLSearchParams({ ids, format })}`,
          `reports.${format}.json`,
        );
      } catch (error) {
        showError(error, "Could not export the selected reports");
      }
    });
  }
}

function initSearch() {
  let timer;
  const apply = () => {
    clearTimeout(timer);
    for (const name of FILTERS) query[name] = $(`search-${name}`).value.trim();
    query.page = 1;
    loadList();
  };
  for (const name of FILTERS) {
    const field = $(`search-${name}`);
    if (query[name]) field.value = query[name];
    if (field.tagName === "SELECT") field.addEventListener("change", apply);
    else
      field.addEventListener("input", () => {
        clearTimeout(timer);
        timer = setTimeout(apply, 250);
      });
  }
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    apply();
  });
  $("page-prev").addEventListener("click", () => {
    query.page = Math.max(1, query.page - 1);
    loadList();
  });
  $("page-next").addEventListener("click", () => {
    query.page += 1;
    loadList();
  });
}

// ---- adding a report ----------------------------------------------------------------------------

function chosenSource() {
  return document.querySelector('input[name="source"]:checked').value;
}

function initAddForm() {
  $("add-section").hidden = false;
  for (const radio of document.querySelectorAll('input[name="source"]')) {
    radio.addEventListener("change", () => {
      for (const part of document.querySelectorAll("[data-source]")) {
        part.hidden = part.dataset.source !== chosenSource();
      }
    });
  }
  $("add-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const title = $("add-title").value.trim();
    const source = chosenSource();
    let body;
    if (source === "file") {
      const file = $("add-file").files[0];
      if (!file) return showMessage("Choose a file to upload first.");
      body = new FormData();
      body.append("file", file, file.name);
      if (title) body.append("title", title);
    } else if (source === "url") {
      const url = $("add-url").value.trim();
      if (!/^https?:\/\//i.test(url))
        return showMessage("Give the report’s web address, starting with https://.");
      body = { url, ...(title ? { title } : {}) };
    } else {
      const text = $("add-text").value;
      if (!text.trim()) return showMessage("Paste the report’s text first.");
      body = { text, ...(title ? { title } : {}) };
    }
    const meta = {
      tlp: $("add-tlp").value,
      tags: $("add-tags").value,
      source_org: $("add-org").value,
    };
    for (const [key, value] of Object.entries(meta)) {
      if (!value.trim()) continue;
      if (body instanceof FormData) body.append(key, value);
      else body[key] = value;
    }
    clearMessages();
    busy(true);
    try {
      const report = await api("POST", "/api/reports", body);
      location.assign(`/reports/${encodeURIComponent(report.id)}`);
    } catch (error) {
      busy(false); // the input stays as it was: nothing typed is lost
      showError(error, "The report was not added");
    }
  });
}

function busy(on) {
  $("add-progress").hidden = !on;
  $("add-submit").disabled = on;
  $("add-form").setAttribute("aria-busy", String(on));
}

// ---- the model: selector and retraining -------------------------------------------------------

async function loadModels() {
  let data;
  try {
    data = await api("GET", "/api/models");
  } catch (error) {
    showError(error, "Could not list the models");
    return;
  }
  const select = $("model-select");
  select.replaceChildren(
    ...data.items.map((item) =>
      el(
        "option",
        {
          value: item.name,
          selected: item.active,
          dataset: { active: String(Boolean(item.active)) },
        },
        item.name +
          (item.created_at ? ` (${formatDate(item.created_at)})` : "") +
          (item.active ? " — active" : ""),
      ),
    ),
  );
  const active = data.items.find((item) => item.active);
  const card = active?.card || {};
  const parts = [];
  if (card.backend) parts.push(`backend ${card.backend}`);
  if (card.attack_version) parts.push(`ATT&CK ${card.attack_version}`);
  if (card.labels !== undefined) parts.push(`${card.labels} techniques`);
  $("model-card").textContent = parts.length ? "Active model: " + parts.join(" · ") : "";
  renderLearning(active);
}

/** The active model is everyone's: switching it asks first (and the API records who did). */
function confirmModel(name, before) {
  const dialog = $("confirm-model");
  $("confirm-model-name").textContent = name;
  $("confirm-model-before").textContent = before;
  dialog.returnValue = "";
  dialog.addEventListener(
    "close",
    async () => {
      if (dialog.returnValue !== "switch") return loadModels(); // the select shows it again
      try {
        await api("POST", `/api/models/${encodeURIComponent(name)}/activate`);
        showMessage(`Model “${name}” is now in use for everyone’s new analyses.`, { kind: "info" });
      } catch (error) {
        showError(error, "Could not switch the model");
      }
      loadModels();
    },
    { once: true },
  );
  dialog.showModal();
}

function initModels() {
  $("model-section").hidden = false;
  $("model-select").addEventListener("change", () => {
    const active = [...$("model-select").options].find((o) => o.dataset.active === "true");
    confirmModel($("model-select").value, active?.value || "the current model");
  });
  $("default-tlp").addEventListener("change", async () => {
    try {
      const saved = await api("PATCH", "/api/settings", { default_tlp: $("default-tlp").value });
      $("add-tlp").value = saved.default_tlp;
      showMessage(`New reports are marked ${TLP_LABELS[saved.default_tlp]}.`, { kind: "info" });
    } catch (error) {
      showError(error, "Could not change the default TLP");
    }
  });
  for (const [button, mode] of [
    ["retrain", "full"],
    ["quick-update", "quick"],
  ]) {
    $(button).addEventListener("click", async () => {
      jobButtons(true);
      try {
        const { job } = await api("POST", "/api/retrain", { mode });
        sessionStorage.setItem("mitremap-retrain", job.id);
        followJob(job);
      } catch (error) {
        jobButtons(false);
        showError(error, "Could not start learning from the reviews");
      }
    });
  }
  $("reanalyse-all").addEventListener("click", reanalyseAll);
  const running = sessionStorage.getItem("mitremap-retrain");
  if (running) {
    api("GET", `/api/retrain/${encodeURIComponent(running)}`)
      .then(({ job }) => followJob(job))
      .catch(() => sessionStorage.removeItem("mitremap-retrain"));
  }
  loadModels();
}

function jobButtons(running) {
  $("retrain").disabled = running;
  $("quick-update").disabled = running;
}

function followJob(job) {
  $("retrain-progress").hidden = false;
  $("retrain-bar").value = Number(job.progress) || 0;
  $("retrain-message").textContent = `${job.state}: ${job.message || ""}`;
  if (job.state === "done" || job.state === "failed") {
    sessionStorage.removeItem("mitremap-retrain");
    jobButtons(false);
    if (job.state === "done") {
      showMessage(
        `Learned from the reviews: model “${job.model}” is now in use. Analyse the reports ` +
          "again to see what it changes on them.",
        { kind: "info" },
      );
      loadModels();
    } else {
      showMessage(`Learning from the reviews failed: ${job.message || "no reason given"}`);
    }
    return;
  }
  jobButtons(true);
  setTimeout(async () => {
    try {
      followJob((await api("GET", `/api/retrain/${encodeURIComponent(job.id)}`)).job);
    } catch (error) {
      jobButtons(false);
      showError(error, "Lost track of the learning job");
    }
  }, 1000);
}

// ---- start --------------------------------------------------------------------------------------

async function loadSettings() {
  try {
    const settings = await api("GET", "/api/settings");
    $("add-tlp").value = settings.default_tlp;
    $("default-tlp").value = settings.default_tlp;
  } catch (error) {
    showError(error, "Could not read the workspace's settings");
  }
}

async function start() {
  initSearch(); // first: what is typed while the page starts is not lost
  initSort();
  initBulk();
  const current = await initAccount();
  role = current?.user?.role || "viewer";
  if (can(role, "write")) initAddForm();
  if (can(role, "admin")) initModels();
  loadSettings();
  await loadList();
}

start();
