// The reports list: add a report (paste, file, web address), search, page, delete; for admins,
// the model selector and the retrain button with its progress.
import {
  api,
  can,
  clearMessages,
  el,
  formatDate,
  initAccount,
  showError,
  showMessage,
  STATUS_LABELS,
} from "./app.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const whole = (value, fallback) => Math.max(1, Number.parseInt(value || "", 10) || fallback);
const query = {
  q: params.get("q") || "",
  status: params.get("status") || "",
  page: whole(params.get("page"), 1),
  perPage: Math.min(100, whole(params.get("per_page"), 25)),
};
let role = "viewer";

// ---- the list ---------------------------------------------------------------------------------

async function loadList() {
  const search = new URLSearchParams({ page: String(query.page), per_page: String(query.perPage) });
  if (query.q) search.set("q", query.q);
  if (query.status) search.set("status", query.status);
  const shown = shownQuery();
  history.replaceState(null, "", shown ? "?" + shown : "/");
  let data;
  try {
    data = await api("GET", "/api/reports?" + search);
  } catch (error) {
    showError(error, "Could not list the reports");
    return;
  }
  const pages = Math.max(1, Math.ceil(data.total / data.per_page));
  if (query.page > pages && data.total > 0) {
    query.page = pages;
    return loadList();
  }
  $("reports-body").replaceChildren(...data.items.map(row));
  if (data.items.length === 0) {
    const empty = query.q || query.status ? "No report matches." : "No report yet: add one above.";
    $("reports-body").append(el("tr", {}, el("td", { colSpan: 8, className: "muted" }, empty)));
  }
  const noun = data.total === 1 ? "report" : "reports";
  $("list-summary").textContent =
    `${data.total} ${noun}` + (query.q ? ` matching “${query.q}”` : "");
  $("page-info").textContent = `Page ${data.page} of ${pages}`;
  $("page-prev").disabled = data.page <= 1;
  $("page-next").disabled = data.page >= pages;
}

function shownQuery() {
  const shown = new URLSearchParams();
  if (query.q) shown.set("q", query.q);
  if (query.status) shown.set("status", query.status);
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
  const cells = [
    el("td", { className: "title" }, link),
    el("td", { className: "source" }, report.source || ""),
    el("td", {}, el("time", { dateTime: report.created_at }, formatDate(report.created_at))),
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
    remove.addEventListener("click", () => confirmDelete(report));
    cells[7].append(remove);
  }
  return el("tr", { dataset: { id: String(report.id) } }, ...cells);
}

function confirmDelete(report) {
  const dialog = $("confirm-delete");
  $("confirm-title").textContent = report.title || String(report.id);
  dialog.returnValue = "";
  dialog.addEventListener(
    "close",
    async () => {
      if (dialog.returnValue !== "delete") return;
      try {
        await api("DELETE", `/api/reports/${encodeURIComponent(report.id)}`);
        showMessage(`Deleted “${report.title || report.id}”.`, { kind: "info" });
        await loadList();
      } catch (error) {
        showError(error, "Could not delete the report");
      }
    },
    { once: true },
  );
  dialog.showModal();
}

function initSearch() {
  $("search-q").value = query.q;
  $("search-status").value = query.status;
  let timer;
  $("search-q").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      query.q = $("search-q").value.trim();
      query.page = 1;
      loadList();
    }, 250);
  });
  $("search-status").addEventListener("change", () => {
    query.status = $("search-status").value;
    query.page = 1;
    loadList();
  });
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    query.q = $("search-q").value.trim();
    query.page = 1;
    loadList();
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
        { value: item.name, selected: item.active },
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
}

function initModels() {
  $("model-section").hidden = false;
  $("model-select").addEventListener("change", async () => {
    const name = $("model-select").value;
    try {
      await api("POST", `/api/models/${encodeURIComponent(name)}/activate`);
      showMessage(`Model “${name}” is now in use for new analyses.`, { kind: "info" });
    } catch (error) {
      showError(error, "Could not switch the model");
    }
    loadModels();
  });
  $("retrain").addEventListener("click", async () => {
    $("retrain").disabled = true;
    try {
      const { job } = await api("POST", "/api/retrain");
      sessionStorage.setItem("mitremap-retrain", job.id);
      followJob(job);
    } catch (error) {
      $("retrain").disabled = false;
      showError(error, "Could not start retraining");
    }
  });
  const running = sessionStorage.getItem("mitremap-retrain");
  if (running) {
    api("GET", `/api/retrain/${encodeURIComponent(running)}`)
      .then(({ job }) => followJob(job))
      .catch(() => sessionStorage.removeItem("mitremap-retrain"));
  }
  loadModels();
}

function followJob(job) {
  $("retrain-progress").hidden = false;
  $("retrain-bar").value = Number(job.progress) || 0;
  $("retrain-message").textContent = `${job.state}: ${job.message || ""}`;
  if (job.state === "done" || job.state === "failed") {
    sessionStorage.removeItem("mitremap-retrain");
    $("retrain").disabled = false;
    if (job.state === "done") {
      showMessage(`Retrained: model “${job.model}” is now in use.`, { kind: "info" });
      loadModels();
    } else {
      showMessage(`Retraining failed: ${job.message || "no reason given"}`);
    }
    return;
  }
  $("retrain").disabled = true;
  setTimeout(async () => {
    try {
      followJob((await api("GET", `/api/retrain/${encodeURIComponent(job.id)}`)).job);
    } catch (error) {
      $("retrain").disabled = false;
      showError(error, "Lost track of the retraining job");
    }
  }, 1000);
}

// ---- start --------------------------------------------------------------------------------------

async function start() {
  const current = await initAccount();
  role = current?.user?.role || "viewer";
  if (can(role, "write")) initAddForm();
  if (can(role, "admin")) initModels();
  initSearch();
  await loadList();
}

start();
