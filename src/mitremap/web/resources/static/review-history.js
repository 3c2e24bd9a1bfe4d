// The History and Comments tabs of the review page: every change of the report (who, when,
// before → after), newest first, and the comments on the report as a whole.
import { ago, el, formatDate, STATUS_LABELS, TLP_LABELS } from "./app.js";

const FIELDS = {
  status: "status",
  title: "title",
  tlp: "TLP",
  tags: "tags",
  source_org: "source organisation",
  published: "publication date",
  default_tlp: "default TLP of new reports",
};

function shown(subject, value) {
  if (!value) return "—";
  if (subject === "status") return STATUS_LABELS[value] || value;
  if (subject === "tlp" || subject === "default_tlp") return TLP_LABELS[value] || value;
  return value;
}

/** What an event says, in words. */
export function describe(e) {
  const change = (what) => `${what}: ${shown(e.subject, e.before)} → ${shown(e.subject, e.after)}`;
  switch (e.kind) {
    case "decision":
      return (
        `${e.subject.replace(/^technique:/, "")}: ${e.before} → ${e.after}` +
        (e.detail ? ` (${e.detail})` : "")
      );
    case "indicator": {
      const [, type, ...value] = e.subject.split(":");
      return `indicator ${type} ${value.join(":")}: ${e.before} → ${e.after}`;
    }
    case "analysis":
      return e.subject === "report"
        ? `added and analysed by model ${e.after}` + (e.detail ? ` (${e.detail})` : "")
        : `analysed again: model ${e.before || "—"} → ${e.after}` +
            (e.detail ? ` (${e.detail})` : "");
    case "model":
      return `switched the model for everyone: ${e.before || "—"} → ${e.after}`;
    case "comment":
      return `commented: “${e.after}”`;
    default:
      return change(FIELDS[e.subject] || e.subject);
  }
}

export function renderHistory(list, items, total = items.length) {
  const rows = [...items]
    .reverse()
    .map((e) =>
      el(
        "li",
        { className: `event ${e.kind}`, dataset: { kind: e.kind } },
        el("time", { dateTime: e.at, title: formatDate(e.at) }, ago(e.at)),
        " ",
        el("strong", { className: "who" }, e.user || "?"),
        " ",
        el("span", { className: "what" }, describe(e)),
        e.note && e.kind !== "comment"
          ? el("span", { className: "muted" }, ` — “${e.note}”`)
          : null,
      ),
    );
  list.replaceChildren(...rows);
  if (!rows.length) list.append(el("li", { className: "muted" }, "Nothing yet."));
  if (total > rows.length) {
    const older = `… and ${total - rows.length} older changes (in the report's export).`;
    list.append(el("li", { className: "muted" }, older));
  }
}

export function renderComments(list, items) {
  const rows = items.map((c) =>
    el(
      "li",
      { className: "comment" },
      el(
        "p",
        { className: "muted" },
        el("strong", {}, c.user || "?"),
        " · ",
        el("time", { dateTime: c.at, title: formatDate(c.at) }, ago(c.at)),
      ),
      el("p", { className: "comment-text" }, c.text),
    ),
  );
  list.replaceChildren(...rows);
  if (!rows.length) list.append(el("li", { className: "muted" }, "No comment yet."));
}
