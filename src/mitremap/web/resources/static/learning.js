// How the workspace learns, on the reports page (admins): the quick update beside the full
// retraining, what the active model learned (per-report F1 on the reviewed reports before and
// after, the techniques that moved most), and every report analysed again with what appeared
// and disappeared on each. Everything from the API is set with textContent.
import { api, el, showError, showMessage } from "./app.js";

const $ = (id) => document.getElementById(id);
const AT_ONCE = 25; // reports per POST /api/reports/reanalyze

/** What a model learned from the reviews (its `learning` in GET /api/models), in words. */
export function renderLearning(item) {
  const box = $("model-learning");
  const learned = item?.learning;
  if (!learned) {
    box.replaceChildren();
    box.hidden = true;
    return;
  }
  const f1 = (side) => (Number(learned[side]?.f1) || 0).toFixed(2);
  const mode = learned.mode === "quick" ? "Quick update" : "Retraining";
  const lines = [
    el(
      "p",
      {},
      `${mode} from ${learned.reviewed_passages} reviewed passages` +
        (learned.reports
          ? `: per-report F1 on ${learned.reports} reviewed reports ${f1("before")} → ${f1("after")}` +
            ` (precision ${f1p(learned, "before")} → ${f1p(learned, "after")},` +
            ` recall ${f1r(learned, "before")} → ${f1r(learned, "after")}), each judged by a model` +
            " that never saw it."
          : learned.reviewed_reports
            ? "; a figure needs two reports marked reviewed."
            : "; no report is marked reviewed yet, so there is no figure."),
    ),
  ];
  if (learned.moved?.length) {
    lines.push(
      el(
        "p",
        { className: "muted" },
        "Moved most: " +
          learned.moved
            .slice(0, 6)
            .map((m) => `${m.technique} ${m.change >= 0 ? "+" : ""}${Number(m.change).toFixed(2)}`)
            .join(", "),
      ),
    );
  }
  box.replaceChildren(...lines);
  box.hidden = false;
}

const f1p = (learned, side) => (Number(learned[side]?.precision) || 0).toFixed(2);
const f1r = (learned, side) => (Number(learned[side]?.recall) || 0).toFixed(2);

/** Every report's id, page by page. */
async function allReports() {
  const ids = [];
  for (let page = 1; ; page += 1) {
    const data = await api("GET", `/api/reports?per_page=100&page=${page}`);
    ids.push(...data.items.map((r) => [r.id, r.title]));
    if (ids.length >= data.total || !data.items.length) return ids;
  }
}

/** Analyse every report again with the active model, in batches, listing what changed. */
export async function reanalyseAll() {
  const button = $("reanalyse-all");
  const list = $("reanalysed");
  button.disabled = true;
  list.replaceChildren();
  list.hidden = false;
  try {
    const reports = await allReports();
    const titles = new Map(reports);
    let done = 0;
    let changed = 0;
    for (let at = 0; at < reports.length; at += AT_ONCE) {
      const ids = reports.slice(at, at + AT_ONCE).map(([id]) => id);
      const { items } = await api("POST", "/api/reports/reanalyze", { ids });
      done += items.length;
      $("reanalyse-message").textContent = `${done} of ${reports.length} reports analysed again`;
      for (const item of items) {
        if (!item.appeared.length && !item.disappeared.length) continue;
        changed += 1;
        const link = el("a", { href: `/reports/${item.id}` }, titles.get(item.id) || `#${item.id}`);
        const parts = [
          ...item.appeared.map((t) => el("span", { className: "badge accepted" }, `+${t}`)),
          ...item.disappeared.map((t) => el("span", { className: "badge rejected" }, `−${t}`)),
        ];
        list.append(el("li", {}, link, " ", ...parts));
      }
    }
    showMessage(
      `${done} reports analysed again with the active model; ${changed} changed above the ` +
        "threshold. Decisions are kept.",
      { kind: "info" },
    );
  } catch (error) {
    showError(error, "Could not analyse the reports again");
  } finally {
    button.disabled = false;
  }
}
