// The review page of one report: the text with its evidence highlighted, the suggested
// techniques to accept or reject (whole or per passage), techniques added to a selected passage,
// the report's indicators, history and comments (tabs), its metadata, the ATT&CK matrix
// (review-matrix.js), the status and the exports. Everything shown comes from the API, so it
// survives a reload; after each change the report is read again from the server. Every change
// is sent with the version the page shows (If-Match): one overtaken by another analyst's is
// refused, and the page says who changed what and shows it as it is now.
import {
  ago,
  api,
  ApiError,
  can,
  download,
  el,
  formatDate,
  initAccount,
  safeUrl,
  showError,
  showMessage,
  STATUS_LABELS,
  TLP_LABELS,
} from "./app.js";
import { draftInput, Drafts } from "./drafts.js";
import { describe, renderComments, renderHistory } from "./review-history.js";
import { defang, indicatorKey, renderIndicators } from "./review-indicators.js";
import { renderMatrix as drawMatrix } from "./review-matrix.js";

const $ = (id) => document.getElementById(id);
const reportId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
const apiPath = `/api/reports/${encodeURIComponent(reportId)}`;
const POLL_MS = 15_000; // how often an open page asks whether someone else changed the report

const state = {
  report: null,
  role: "viewer",
  user: "",
  tab: "techniques", // techniques | indicators | history | comments
  current: null, // technique id of the card the shortcuts act on
  indicator: null, // draft key of the indicator last shown in the text
  showMore: false,
  selection: null, // {start, end} in the API's offsets (code points)
  chosen: null, // {id, name} picked in the technique search
  busy: false,
  drafts: null,
};

// ---- offsets: the API counts code points, the DOM counts UTF-16 units ---------------------------

let unitsOf = (i) => i;
let pointsOf = (u) => u;

function indexOffsets(text) {
  if (!/[\uD800-\uDFFF]/.test(text)) {
    unitsOf = (i) => i;
    pointsOf = (u) => u;
    return;
  }
  const units = [0];
  const points = new Int32Array(text.length + 1);
  let u = 0;
  let p = 0;
  for (const char of text) {
    for (let k = 0; k < char.length; k += 1) points[u + k] = p;
    u += char.length;
    p += 1;
    units.push(u);
    points[u] = p;
  }
  unitsOf = (i) => units[Math.max(0, Math.min(i, units.length - 1))];
  pointsOf = (x) => points[Math.max(0, Math.min(x, points.length - 1))];
}

function slice(start, end) {
  return state.report.text.slice(unitsOf(start), unitsOf(end));
}

// ---- loading ------------------------------------------------------------------------------------

async function load() {
  let report;
  try {
    report = await api("GET", apiPath);
  } catch (error) {
    $("report-title").textContent =
      error.status === 404 ? "Report not found" : "The report could not be loaded";
    showError(error);
    return;
  }
  const textChanged = !state.report || state.report.text !== report.text;
  state.report = report;
  if (textChanged) indexOffsets(report.text);
  if (!state.current || !findSuggestion(state.current)) state.current = visibleIds()[0] || null;
  render();
}

/** Someone else changed the report: say who and what, and show it (unless a field is being
 * typed in: then only say so, with a button to show it). */
async function poll() {
  if (document.visibilityState !== "visible" || state.busy || !state.report) return;
  const seen = state.report.version;
  let answer;
  try {
    answer = await api("GET", apiPath, undefined, {
      raw: true,
      headers: { "If-None-Match": `"v${seen}"` },
    });
  } catch {
    return; // a 304 (nothing changed) or a network hiccup: ask again later
  }
  if (answer.status !== 200 || state.busy) return;
  const history = await api("GET", `${apiPath}/history?since=${seen}&per_page=1000`).catch(
    () => ({ items: [] }),
  );
  const news = history.items.filter((e) => e.user !== state.user);
  if (news.length) {
    const last = news.at(-1);
    const more = news.length > 1 ? ` (and ${news.length - 1} more changes)` : "";
    showMessage(`Changed by ${last.user} ${ago(last.at)}: ${describe(last)}${more}.`, {
      kind: "info",
    });
  }
  if (document.activeElement?.closest?.("input, textarea, select")) return;
  await load();
}

/** The header that makes a change conditional on the version the page shows. */
function ifMatch() {
  return state.report ? { "If-Match": `"v${state.report.version}"` } : {};
}

/** A change refused as stale: who changed it and when, then the page as it is now. */
async function stale(error, what) {
  const now = error.current || {};
  const where = now.state ? ` (now ${now.state})` : "";
  showMessage(
    `Not saved: ${what} was changed by ${now.changed_by || "someone"} ` +
      `${now.changed_at ? ago(now.changed_at) : "meanwhile"}${where}. ` +
      "The page now shows it as it is; decide again if you still want to.",
  );
  await load();
}

/** Send a change with the page's version; a stale one is explained, others reported. */
async function write(method, path, body, what) {
  try {
    return await api(method, path, body, { headers: ifMatch() });
  } catch (error) {
    if (error instanceof ApiError && error.code === "stale") await stale(error, what);
    else showError(error, `Could not change ${what}`);
    return null;
  }
}

function findSuggestion(id) {
  return state.report.suggestions.find((s) => s.technique === id) || null;
}

/** Shown in the main list: above the threshold, or decided on (even if below it). */
function isMain(s) {
  return Boolean(s.above_threshold || s.decision || (s.passages || []).length);
}

function visibleIds() {
  const all = state.report.suggestions;
  const ids = all.filter(isMain).map((s) => s.technique);
  if (state.showMore) ids.push(...all.filter((s) => !isMain(s)).map((s) => s.technique));
  return ids;
}

// ---- decisions ----------------------------------------------------------------------------------

async function decide(technique, action, extra = {}) {
  if (state.busy || !can(state.role, "write")) return;
  state.busy = true;
  document.body.setAttribute("aria-busy", "true");
  const body = { technique, action, ...extra };
  if (body.note === "" || body.note === undefined) delete body.note;
  try {
    const done = await write("POST", `${apiPath}/decisions`, body, technique);
    if (!done) return;
    state.drafts.forget(action === "add" ? "add" : `technique:${technique}`);
    await load();
    // the cards were drawn again: a keyboard user stays on the technique they were on
    if (document.activeElement === document.body) {
      document.querySelector(".card.current")?.focus({ preventScroll: true });
    }
  } finally {
    state.busy = false;
    document.body.removeAttribute("aria-busy");
  }
}

async function decideIndicator(item, action, note) {
  if (state.busy || !can(state.role, "write")) return;
  state.busy = true;
  const body = { type: item.type, value: item.value, action, ...(note ? { note } : {}) };
  try {
    const what = defang(item.type, item.value);
    const done = await write("POST", `${apiPath}/indicators/decisions`, body, what);
    if (!done) return;
    state.drafts.forget(indicatorKey(item));
    state.indicator = indicatorKey(item);
    await load();
  } finally {
    state.busy = false;
  }
}

function noteOf(technique) {
  const input = document.querySelector(`.card[data-technique="${CSS.escape(technique)}"] .note`);
  return input ? input.value.trim() : "";
}

// ---- rendering ----------------------------------------------------------------------------------

function render() {
  renderHead();
  renderText();
  renderCards();
  renderAdded();
  renderMatrix();
  renderTabs();
}

function renderHead() {
  const r = state.report;
  document.title = `${r.title || "Report"} · MitreMap`;
  $("report-title").textContent = r.title || "(untitled)";
  const meta = [];
  if (r.source) meta.push(`Source: ${r.source}`);
  meta.push(`added ${formatDate(r.created_at)}`);
  const model = r.model || {};
  const modelName = model.name || model.backend;
  if (modelName)
    meta.push(
      `model ${modelName}` + (model.attack_version ? ` (ATT&CK ${model.attack_version})` : ""),
    );
  meta.push(`threshold ${r.threshold}`);
  if (r.source_org) meta.push(`by ${r.source_org}`);
  if (r.published) meta.push(`published ${r.published}`);
  if (r.tags?.length) meta.push(`tags: ${r.tags.join(", ")}`);
  const metaLine = $("report-meta");
  metaLine.replaceChildren(meta.join(" · "));
  const origin = safeUrl(r.origin || "");
  if (origin) {
    metaLine.append(
      " · ",
      el("a", { href: origin, target: "_blank", rel: "noopener noreferrer" }, "original"),
    );
  }
  $("report-tlp").textContent = TLP_LABELS[r.tlp] || r.tlp;
  $("report-tlp").className = `tlp tlp-${r.tlp.replace("+", "-")}`;
  renderDuplicates(r.duplicates || []);
  renderMetaForm(r);
  $("report-status").value = r.status;
  $("report-status").disabled = !can(state.role, "write");
  const counts = [
    `${r.accepted} accepted`,
    `${r.rejected} rejected`,
    `${r.pending} pending`,
    `${r.added.length} added`, // the detail lists what was added; the summary counts it
  ];
  $("report-counts").textContent = `${STATUS_LABELS[r.status] || r.status}: ${counts.join(" · ")}`;
  $("threshold-info").textContent =
    `Techniques with a confidence of at least ${r.threshold}; ` +
    "the outlined one is the one the keyboard shortcuts act on.";
}

/** Other reports with the same text or from the same URL: a warning, with links to them. */
function renderDuplicates(found) {
  const box = $("duplicates");
  box.hidden = !found.length;
  if (!found.length) return box.replaceChildren();
  const links = found.map((d, i) => [
    i ? "; " : "",
    el("a", { href: `/reports/${encodeURIComponent(d.id)}` }, d.title || `report ${d.id}`),
    ` (${d.reason}, added by ${d.created_by || "?"} ${formatDate(d.created_at)})`,
  ]);
  box.replaceChildren(el("p", {}, "This report may be kept already: ", ...links.flat(), "."));
}

function renderMetaForm(r) {
  if ($("meta-form").contains(document.activeElement)) return; // being edited: left as it is
  $("meta-tlp").value = r.tlp;
  $("meta-tags").value = (r.tags || []).join(", ");
  $("meta-org").value = r.source_org || "";
  $("meta-published").value = r.published || "";
  for (const field of $("meta-form").elements) field.disabled = !can(state.role, "write");
}

/** The text cut at every span boundary; each piece gets the classes of what covers it. */
function renderText() {
  const r = state.report;
  const text = r.text;
  const spans = state.tab === "indicators" ? indicatorSpans(r) : [];
  const shown = new Set(state.tab === "indicators" ? [] : visibleIds());
  for (const s of r.suggestions) {
    if (!shown.has(s.technique)) continue;
    const passageState = new Map((s.passages || []).map((p) => [`${p.start}:${p.end}`, p.action]));
    for (const e of s.evidence) {
      const verdict = passageState.get(`${e.start}:${e.end}`) || s.decision?.action || null;
      spans.push({ start: e.start, end: e.end, kind: "ev", technique: s.technique, verdict });
    }
    if (s.technique === state.current) {
      const top = Math.max(0, ...(s.attributions || []).map((a) => Math.abs(a.weight))) || 1;
      for (const a of s.attributions || []) {
        const level = Math.min(3, 1 + Math.floor((3 * Math.abs(a.weight)) / top));
        spans.push({
          start: a.start,
          end: a.end,
          kind: a.weight >= 0 ? `attr-pos-${level}` : `attr-neg-${level}`,
        });
      }
    }
  }
  if (state.tab !== "indicators")
    for (const a of r.added)
      spans.push({ start: a.start, end: a.end, kind: "added", technique: a.technique });
  const cuts = new Set([0, text.length]);
  const clean = [];
  for (const span of spans) {
    const start = Math.max(0, unitsOf(span.start));
    const end = Math.min(text.length, unitsOf(span.end));
    if (start >= end) continue;
    clean.push({ ...span, start, end });
    cuts.add(start);
    cuts.add(end);
  }
  const points = [...cuts].sort((a, b) => a - b);
  const pieces = document.createDocumentFragment(); // appended one by one: a long report has many
  for (let i = 0; i + 1 < points.length; i += 1) {
    const left = points[i];
    const right = points[i + 1];
    const piece = text.slice(left, right);
    const covering = clean.filter((s) => s.start <= left && s.end >= right);
    if (covering.length === 0) {
      pieces.append(piece);
      continue;
    }
    pieces.append(pieceElement(piece, left, covering));
  }
  $("report-text").replaceChildren(pieces);
}

/** Where the indicators occur, for the text when the Indicators tab is open. */
function indicatorSpans(r) {
  const spans = [];
  for (const item of r.indicator_review || []) {
    const key = indicatorKey(item);
    for (const o of item.occurrences) {
      if (typeof o.start !== "number" || typeof o.end !== "number") continue;
      const verdict = item.state === "pending" && item.benign ? "context" : item.state;
      spans.push({ start: o.start, end: o.end, kind: "ioc", key, verdict });
    }
  }
  return spans;
}

function pieceElement(piece, start, covering) {
  const classes = new Set();
  const techniques = new Set();
  const titles = [];
  const evidence = covering.filter((s) => s.kind === "ev");
  if (evidence.length) {
    classes.add("ev");
    evidence.forEach((s) => techniques.add(s.technique));
    const mine = evidence.filter((s) => s.technique === state.current);
    if (mine.length) classes.add("focus");
    const verdicts = (mine.length ? mine : evidence).map((s) => s.verdict);
    if (verdicts.includes("accept")) classes.add("ok");
    else if (verdicts.every((v) => v === "reject")) classes.add("no");
    titles.push("evidence: " + [...techniques].join(", "));
  }
  const added = covering.filter((s) => s.kind === "added");
  if (added.length) {
    classes.add("added");
    added.forEach((s) => techniques.add(s.technique));
    titles.push("added: " + added.map((s) => s.technique).join(", "));
  }
  for (const s of covering) if (s.kind.startsWith("attr-")) classes.add(s.kind);
  const iocs = covering.filter((s) => s.kind === "ioc");
  if (iocs.length) {
    classes.add("ioc-mark");
    classes.add(`ioc-${iocs[0].verdict}`);
    if (iocs.some((s) => s.key === state.indicator)) classes.add("focus");
  }
  const node = el("span", { className: [...classes].join(" "), title: titles.join("; ") }, piece);
  node.dataset.start = String(start);
  if (iocs.length) node.dataset.indicator = iocs[0].key;
  if (techniques.size) node.dataset.techniques = [...techniques].join(" ");
  return node;
}

function renderCards() {
  const main = state.report.suggestions.filter(isMain);
  const more = state.report.suggestions.filter((s) => !isMain(s));
  $("suggestions").replaceChildren(...main.map(card));
  if (main.length === 0) {
    $("suggestions").append(
      el("li", { className: "muted" }, "No technique reached the threshold."),
    );
  }
  $("more-suggestions").replaceChildren(...(state.showMore ? more.map(card) : []));
  $("more-suggestions").hidden = !state.showMore;
  $("show-more").hidden = more.length === 0;
  $("show-more").setAttribute("aria-expanded", String(state.showMore));
  $("show-more").textContent = state.showMore
    ? "Hide the suggestions below the threshold"
    : `Show more suggestions (${more.length} below the threshold)`;
}

function card(s) {
  const decided = s.decision?.action || null; // a decision on the technique as a whole
  const writable = can(state.role, "write");
  const url = safeUrl(s.url || "");
  const id = url
    ? el(
        "a",
        { className: "tid", href: url, target: "_blank", rel: "noopener noreferrer" },
        s.technique,
      )
    : el("span", { className: "tid" }, s.technique);
  const conf = Number(s.confidence) || 0;
  const head = el(
    "div",
    { className: "card-head" },
    id,
    el("span", { className: "tname" }, s.technique_name || ""),
    el(
      "span",
      { className: "conf" },
      el("meter", { min: 0, max: 1, value: conf }),
      conf.toFixed(2),
    ),
  );
  const stateLine = stateOf(s);
  if (!s.above_threshold) stateLine.append(" · below the threshold");
  const accept = el(
    "button",
    { type: "button", className: "accept", disabled: !writable },
    "Accept",
  );
  const reject = el(
    "button",
    { type: "button", className: "reject", disabled: !writable },
    "Reject",
  );
  const clear = el(
    "button",
    { type: "button", className: "clear", disabled: !writable || !decided },
    "Clear",
  );
  accept.setAttribute("aria-pressed", String(decided === "accept"));
  reject.setAttribute("aria-pressed", String(decided === "reject"));
  const note = draftInput(
    el("input", {
      type: "text",
      className: "note",
      maxLength: 1000,
      placeholder: "Note (optional)",
      disabled: !writable,
      "aria-label": `Note on ${s.technique}`,
    }),
    state.drafts,
    `technique:${s.technique}`,
    s.decision?.note || "",
  );
  accept.addEventListener("click", () =>
    decide(s.technique, "accept", { note: note.value.trim() }),
  );
  reject.addEventListener("click", () =>
    decide(s.technique, "reject", { note: note.value.trim() }),
  );
  clear.addEventListener("click", () => decide(s.technique, "clear"));
  const actions = el("div", { className: "actions" }, accept, reject, clear, note);

  const node = el(
    "li",
    {
      className: ["card", s.state === "pending" ? "" : s.state].join(" ").trim(),
      tabIndex: -1,
      dataset: { technique: s.technique },
      "aria-label": `${s.technique} ${s.technique_name || ""}, confidence ${conf.toFixed(2)}`,
    },
    head,
    el("p", { className: "tactics" }, (s.tactics || []).join(" · ")),
    stateLine,
    actions,
    evidenceList(s, writable),
    drivers(s),
  );
  if (s.technique === state.current) node.classList.add("current");
  node.addEventListener("focusin", () => setCurrent(s.technique, { focus: false }));
  return node;
}

/** The technique's state (from the decisions in force, its passages' included) and who made
 * it so: decided as a whole, or passage by passage. */
function stateOf(s) {
  const line = el("p", { className: "state" });
  const badge = (verdict) =>
    el("span", { className: `badge ${verdict}` }, verdict === "accepted" ? "Accepted" : "Rejected");
  if (s.decision && s.state !== "pending") {
    line.append(
      badge(s.state),
      ` by ${s.decision.user || "?"}, ${formatDate(s.decision.at)}`,
      s.decision.note ? ` — “${s.decision.note}”` : "",
    );
  } else if (s.state !== "pending") {
    const verb = s.state === "accepted" ? "accept" : "reject";
    const decided = (s.passages || []).filter((p) => p.action === verb);
    const who = [...new Set(decided.map((p) => p.user || "?"))].join(", ");
    const total = s.evidence.length;
    line.append(
      badge(s.state),
      ` by passage: ${decided.length} of ${total} ${total === 1 ? "passage" : "passages"} ` +
        `${verb}ed by ${who}`,
    );
  } else {
    line.append(el("span", { className: "badge pending" }, "Pending"));
  }
  return line;
}

/** Evidence the review memory recalled: where analysts decided on a passage like this one. */
function reviewedNote(reviewed) {
  const where = reviewed.report ? ` in report ${reviewed.report}` : "";
  const link = reviewed.report
    ? el("a", { href: `/reports/${Number(reviewed.report)}` }, reviewed.title || `#${reviewed.report}`)
    : null;
  const note = el(
    "span",
    { className: "reviewed-note muted" },
    `${reviewed.action || "accepted"} by ${reviewed.user || "an analyst"}${where}` +
      ` (a passage ${Math.round((Number(reviewed.similarity) || 0) * 100)}% alike)`,
  );
  if (link) note.append(" — ", link);
  return note;
}

function evidenceList(s, writable) {
  const byPassage = new Map((s.passages || []).map((p) => [`${p.start}:${p.end}`, p]));
  const items = s.evidence.map((e) => {
    const passage = byPassage.get(`${e.start}:${e.end}`);
    const quote = el(
      "button",
      { type: "button", className: "quote-button" },
      `“${squash(slice(e.start, e.end))}”`,
    );
    quote.setAttribute("aria-label", `Show this passage in the text`);
    quote.addEventListener("click", () => scrollToPassage(e.start));
    const accept = el(
      "button",
      { type: "button", className: "small passage-accept", disabled: !writable },
      "Accept passage",
    );
    const reject = el(
      "button",
      { type: "button", className: "small passage-reject", disabled: !writable },
      "Reject passage",
    );
    accept.setAttribute("aria-pressed", String(passage?.action === "accept"));
    reject.setAttribute("aria-pressed", String(passage?.action === "reject"));
    const span = { start: e.start, end: e.end };
    accept.addEventListener("click", () =>
      decide(s.technique, "accept", { ...span, note: noteOf(s.technique) }),
    );
    reject.addEventListener("click", () =>
      decide(s.technique, "reject", { ...span, note: noteOf(s.technique) }),
    );
    const row = el(
      "div",
      { className: "row" },
      el("span", { className: "conf" }, (Number(e.confidence) || 0).toFixed(2)),
      accept,
      reject,
    );
    if (e.reviewed) row.append(reviewedNote(e.reviewed));
    if (passage) {
      const clear = el(
        "button",
        { type: "button", className: "small", disabled: !writable },
        "Clear",
      );
      clear.addEventListener("click", () => decide(s.technique, "clear", span));
      row.append(
        el(
          "span",
          { className: `badge ${passage.action === "accept" ? "accepted" : "rejected"}` },
          passage.action === "accept" ? "accepted" : "rejected",
        ),
        ` by ${passage.user || "?"}` + (passage.note ? ` — “${passage.note}”` : ""),
        clear,
      );
    }
    return el("li", {}, quote, row);
  });
  return el(
    "details",
    { open: s.technique === state.current },
    el(
      "summary",
      {},
      `Evidence (${s.evidence.length} ${s.evidence.length === 1 ? "passage" : "passages"})`,
    ),
    el("ol", { className: "evidence" }, ...items),
  );
}

/** The words that pushed the technique up most (its attributions, when the API has them). */
function drivers(s) {
  const weights = new Map();
  for (const a of s.attributions || []) {
    if (a.weight <= 0) continue;
    const word = squash(slice(a.start, a.end)).toLowerCase();
    if (word) weights.set(word, (weights.get(word) || 0) + a.weight);
  }
  const top = [...weights.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8);
  if (!top.length) return null;
  return el(
    "p",
    { className: "drivers" },
    "Words that drove it: ",
    ...top.map(([word]) => el("span", { className: "chip" }, word)),
  );
}

function renderAdded() {
  const writable = can(state.role, "write");
  const items = state.report.added.map((a) => {
    const url = safeUrl(a.url || "");
    const id = url
      ? el(
          "a",
          { className: "tid", href: url, target: "_blank", rel: "noopener noreferrer" },
          a.technique,
        )
      : el("span", { className: "tid" }, a.technique);
    const quote = el(
      "button",
      { type: "button", className: "quote-button" },
      `“${squash(slice(a.start, a.end))}”`,
    );
    quote.addEventListener("click", () => scrollToPassage(a.start));
    const remove = el(
      "button",
      { type: "button", className: "small", disabled: !writable },
      "Remove",
    );
    remove.addEventListener("click", () =>
      decide(a.technique, "clear", { start: a.start, end: a.end }),
    );
    return el(
      "li",
      { dataset: { technique: a.technique } },
      el(
        "div",
        { className: "card-head" },
        id,
        el("span", { className: "tname" }, a.technique_name || ""),
      ),
      el("p", { className: "tactics" }, (a.tactics || []).join(" · ")),
      quote,
      el(
        "p",
        { className: "muted" },
        `added by ${a.user || "?"}, ${formatDate(a.at)}` + (a.note ? ` — “${a.note}”` : ""),
      ),
      remove,
    );
  });
  $("added").replaceChildren(...items);
  if (!items.length)
    $("added").append(
      el("li", { className: "muted" }, "None yet: select a passage in the text to add one."),
    );
}

function renderMatrix() {
  drawMatrix($("matrix"), state.report, {
    showMore: state.showMore,
    onPick(id) {
      if (findSuggestion(id)) {
        if (!visibleIds().includes(id)) toggleMore(true);
        setCurrent(id);
      } else {
        setTab("techniques");
        document
          .querySelector(`#added li[data-technique="${CSS.escape(id)}"]`)
          ?.scrollIntoView({ block: "center" });
      }
    },
  });
}

// ---- tabs: techniques, indicators, history, comments --------------------------------------------

function renderTabs() {
  const r = state.report;
  const shown = r.suggestions.filter(isMain).length + r.added.length;
  const label = (id, name, count) =>
    $(id).replaceChildren(name, " ", el("span", { className: "tab-count" }, String(count)));
  label("tab-techniques", "Techniques", shown);
  label("tab-indicators", "Indicators", (r.indicator_review || []).length);
  label("tab-comments", "Comments", r.comments || 0);
  renderIndicators($("indicators"), r.indicator_review || [], {
    writable: can(state.role, "write"),
    drafts: state.drafts,
    current: state.indicator,
    decide: decideIndicator,
    show: showIndicator,
  });
  if (state.tab === "history") loadHistory();
  if (state.tab === "comments") loadComments();
}

function setTab(name) {
  if (state.tab === name) return;
  state.tab = name;
  for (const tab of document.querySelectorAll("#side-tabs [role=tab]")) {
    const on = tab.dataset.tab === name;
    tab.setAttribute("aria-selected", String(on));
    tab.tabIndex = on ? 0 : -1;
    $(`panel-${tab.dataset.tab}`).hidden = !on;
  }
  if (state.report) renderText(); // a tab chosen while the report loads: drawn when it comes
  if (name === "history") loadHistory();
  if (name === "comments") loadComments();
}

async function loadHistory() {
  try {
    const size = 1000;
    let page = await api("GET", `${apiPath}/history?per_page=${size}`);
    if (page.total > page.items.length) {
      // a long history: its latest page (the list shows the newest first)
      const last = Math.ceil(page.total / size);
      page = await api("GET", `${apiPath}/history?per_page=${size}&page=${last}`);
    }
    renderHistory($("history"), page.items, page.total);
  } catch (error) {
    showError(error, "Could not read the history");
  }
}

async function loadComments() {
  try {
    renderComments($("comments"), (await api("GET", `${apiPath}/comments`)).items);
  } catch (error) {
    showError(error, "Could not read the comments");
  }
}

/** An indicator's occurrence, highlighted in the text. */
function showIndicator(item, occurrence) {
  state.indicator = indicatorKey(item);
  renderText();
  for (const node of document.querySelectorAll("#indicators .card")) {
    node.classList.toggle(
      "current",
      node.dataset.type === item.type && node.dataset.value === item.value,
    );
  }
  scrollToPassage(occurrence.start);
}

function initTabs() {
  const tabs = [...document.querySelectorAll("#side-tabs [role=tab]")];
  for (const tab of tabs) {
    tab.addEventListener("click", () => setTab(tab.dataset.tab));
    tab.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (!step) return;
      event.preventDefault();
      const next = tabs[(tabs.indexOf(tab) + step + tabs.length) % tabs.length];
      next.focus();
      setTab(next.dataset.tab);
    });
  }
  const comment = draftInput($("comment-text"), state.drafts, "comment");
  $("comment-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = comment.value.trim();
    if (!text) return showMessage("Write the comment first.");
    try {
      await api("POST", `${apiPath}/comments`, { text });
    } catch (error) {
      return showError(error, "Could not post the comment");
    }
    state.drafts.forget("comment");
    comment.value = "";
    await load();
  });
  $("comment-form").hidden = !can(state.role, "write");
}

function squash(text) {
  const flat = text.split(/\s+/).join(" ").trim();
  return flat.length > 400 ? flat.slice(0, 400) + "…" : flat;
}

// ---- moving around ------------------------------------------------------------------------------

function setCurrent(id, { focus = true } = {}) {
  if (!id) return;
  if (focus) setTab("techniques");
  const changed = state.current !== id;
  state.current = id;
  if (changed) {
    for (const node of document.querySelectorAll(".card")) {
      node.classList.toggle("current", node.dataset.technique === id);
      // moving with the keys opens the evidence; a click inside a card leaves it as it is
      const details = node.querySelector("details");
      if (details && focus) details.open = node.dataset.technique === id;
    }
    renderText();
  }
  const node = document.querySelector(`.card[data-technique="${CSS.escape(id)}"]`);
  if (node && focus) {
    node.focus({ preventScroll: true });
    node.scrollIntoView({ block: "nearest" });
    const first = findSuggestion(id)?.evidence[0];
    if (first) scrollToPassage(first.start, { flash: false });
  }
}

function move(step) {
  const ids = visibleIds();
  if (!ids.length) return;
  const at = ids.indexOf(state.current);
  const next = at < 0 ? 0 : Math.max(0, Math.min(ids.length - 1, at + step));
  setCurrent(ids[next]);
}

function scrollToPassage(start, { flash = true } = {}) {
  const at = unitsOf(start);
  const pieces = [...$("report-text").querySelectorAll("span[data-start]")];
  const piece = pieces.find((p) => Number(p.dataset.start) >= at) || pieces.at(-1);
  if (!piece) return;
  const box = $("report-text");
  box.scrollTop = Math.max(0, piece.offsetTop - box.offsetTop - box.clientHeight / 3);
  if (flash) {
    piece.classList.add("flash");
    setTimeout(() => piece.classList.remove("flash"), 1200);
  }
}

function toggleMore(on = !state.showMore) {
  state.showMore = on;
  renderCards();
  renderText();
  renderMatrix();
}

function onKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey || !state.report) return;
  const target = event.target;
  if (target.closest?.("input, textarea, select, [contenteditable], dialog")) return;
  const actions = {
    j: () => move(1),
    n: () => move(1),
    k: () => move(-1),
    p: () => move(-1),
    a: () => state.current && decide(state.current, "accept", { note: noteOf(state.current) }),
    r: () => state.current && decide(state.current, "reject", { note: noteOf(state.current) }),
    u: () =>
      state.current && findSuggestion(state.current)?.decision && decide(state.current, "clear"),
    m: () => toggleMore(),
    "/": () => {
      setTab("techniques");
      $("add-fields").hidden = false;
      $("technique-search").focus();
    },
  };
  const action = actions[event.key];
  if (!action) return;
  event.preventDefault();
  if ("jnkparu".includes(event.key)) setTab("techniques"); // they act on the techniques
  action();
}

// ---- adding a technique to a selected passage ---------------------------------------------------

function onSelection() {
  if (!state.report) return;
  const selection = document.getSelection();
  const box = $("report-text");
  if (!selection || selection.rangeCount === 0 || selection.isCollapsed) return;
  const range = selection.getRangeAt(0);
  if (!box.contains(range.startContainer) || !box.contains(range.endContainer)) return;
  const before = document.createRange();
  before.setStart(box, 0);
  before.setEnd(range.startContainer, range.startOffset);
  let start = before.toString().length;
  let end = start + range.toString().length;
  const text = state.report.text;
  while (start < end && /\s/.test(text[start])) start += 1;
  while (end > start && /\s/.test(text[end - 1])) end -= 1;
  if (start >= end) return;
  state.selection = { start: pointsOf(start), end: pointsOf(end) };
  showSelection();
}

function showSelection() {
  const sel = state.selection;
  $("add-fields").hidden =
    !sel && !state.chosen && document.activeElement !== $("technique-search");
  $("selection-text").hidden = !sel;
  $("selection-info").textContent = sel
    ? `Selected passage (characters ${sel.start}–${sel.end}):`
    : "Select a passage in the report text first.";
  $("selection-text").textContent = sel ? slice(sel.start, sel.end) : "";
  $("add-submit").disabled = !(sel && state.chosen && can(state.role, "write"));
}

function initAddTechnique() {
  const input = $("technique-search");
  const list = $("technique-options");
  let timer;
  let items = [];
  let active = -1;
  let asked = 0;

  const close = () => {
    list.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
  };
  const highlight = (index) => {
    active = index;
    [...list.children].forEach((li, i) => li.setAttribute("aria-selected", String(i === index)));
    if (index >= 0) {
      input.setAttribute("aria-activedescendant", list.children[index].id);
      list.children[index].scrollIntoView({ block: "nearest" });
    }
  };
  const choose = (item) => {
    state.chosen = { id: item.id, name: item.name };
    input.value = `${item.id} ${item.name}`;
    close();
    showSelection();
  };
  const search = async () => {
    const q = input.value.trim();
    const ticket = ++asked;
    if (!q) return close();
    let data;
    try {
      data = await api("GET", `/api/attack/search?${new URLSearchParams({ q, limit: "20" })}`);
    } catch (error) {
      showError(error, "Technique search failed");
      return;
    }
    if (ticket !== asked) return; // a newer search is on its way
    items = data.items || [];
    list.replaceChildren(
      ...items.map((item, i) => {
        const option = el(
          "li",
          { id: `technique-option-${i}`, role: "option", "aria-selected": "false" },
          el("span", { className: "tid" }, item.id),
          item.name,
          el("span", { className: "muted" }, (item.tactics || []).join(", ")),
        );
        option.addEventListener("mousedown", (event) => event.preventDefault());
        option.addEventListener("click", () => choose(item));
        return option;
      }),
    );
    if (!items.length)
      list.append(
        el(
          "li",
          { className: "muted", role: "option", "aria-disabled": "true" },
          "No technique matches.",
        ),
      );
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
    highlight(items.length ? 0 : -1);
  };
  input.addEventListener("input", () => {
    state.chosen = null;
    showSelection();
    clearTimeout(timer);
    timer = setTimeout(search, 150);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" && items.length) {
      event.preventDefault();
      if (list.hidden) search();
      else highlight(Math.min(items.length - 1, active + 1));
    } else if (event.key === "ArrowUp" && items.length) {
      event.preventDefault();
      highlight(Math.max(0, active - 1));
    } else if (event.key === "Enter" && !list.hidden && active >= 0) {
      event.preventDefault();
      choose(items[active]);
    } else if (event.key === "Escape") {
      close();
    }
  });
  input.addEventListener("blur", () => setTimeout(close, 100));
  $("add-technique").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!state.selection) return showError("Select a passage in the report text first.");
    if (!state.chosen) return showError("Choose a technique from the search results first.");
    const note = $("add-note").value.trim();
    await decide(state.chosen.id, "add", { ...state.selection, note });
    showSelection();
    if (
      state.report.added.some(
        (a) => a.technique === state.chosen?.id && a.start === state.selection?.start,
      )
    ) {
      state.selection = null;
      state.chosen = null;
      input.value = "";
      $("add-note").value = "";
      showSelection();
      $("add-fields").hidden = true;
    }
  });
  document.addEventListener("selectionchange", onSelection);
}

// ---- the rest of the controls -------------------------------------------------------------------

function initControls() {
  $("report-status").addEventListener("change", async () => {
    const done = await write("PATCH", apiPath, { status: $("report-status").value }, "the status");
    if (done) await load();
    else if (state.report) $("report-status").value = state.report.status;
  });
  $("meta-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {
      tlp: $("meta-tlp").value,
      tags: $("meta-tags").value,
      source_org: $("meta-org").value,
      published: $("meta-published").value,
    };
    document.activeElement?.blur();
    if (await write("PATCH", apiPath, body, "the report's details")) {
      showMessage("The report's details are saved.", { kind: "info" });
      await load();
    }
  });
  for (const button of document.querySelectorAll("[data-format]")) {
    button.addEventListener("click", async () => {
      button.closest("details")?.removeAttribute("open");
      button.disabled = true;
      try {
        await download(
          `${apiPath}/export?format=${button.dataset.format}`,
          `report-${reportId}.${button.dataset.format}`,
        );
      } catch (error) {
        showError(error, `Could not export ${button.textContent}`);
      } finally {
        button.disabled = false;
      }
    });
  }
  $("show-more").addEventListener("click", () => toggleMore());
  $("report-text").addEventListener("click", (event) => {
    if (!document.getSelection()?.isCollapsed) return;
    const piece = event.target.closest("span[data-techniques]");
    if (!piece) return;
    const ids = piece.dataset.techniques
      .split(" ")
      .filter((id) => findSuggestion(id) && visibleIds().includes(id));
    if (!ids.length) return;
    const at = ids.indexOf(state.current);
    setCurrent(ids[(at + 1) % ids.length]);
  });
  document.addEventListener("keydown", onKey);
}

async function start() {
  const current = await initAccount();
  state.role = current?.user?.role || "viewer";
  state.user = current?.user?.name || "";
  state.drafts = new Drafts(apiPath, can(state.role, "write"));
  if (!can(state.role, "write")) $("add-technique").hidden = true;
  const drafts = state.drafts.load();
  initControls();
  initAddTechnique();
  await drafts;
  initTabs();
  draftInput($("add-note"), state.drafts, "add");
  await load();
  setInterval(poll, POLL_MS);
}

start();
