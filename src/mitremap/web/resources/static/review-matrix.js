// The ATT&CK matrix of one report, the way Navigator shows a layer: a column per tactic, a cell
// per technique coloured by confidence, the analysts' verdicts marked. Sub-techniques are folded
// under their parent with a count (click to unfold), and the columns wrap to the page's width,
// so the matrix never scrolls sideways.
import { el } from "./app.js";

// Enterprise ATT&CK's tactics, in the matrix's order; tactics not listed here are appended.
const TACTICS = [
  "Reconnaissance",
  "Resource Development",
  "Initial Access",
  "Execution",
  "Persistence",
  "Privilege Escalation",
  "Defense Evasion",
  "Stealth",
  "Defense Impairment",
  "Credential Access",
  "Discovery",
  "Lateral Movement",
  "Collection",
  "Command and Control",
  "Exfiltration",
  "Impact",
];
const ALWAYS = new Set(TACTICS.filter((t) => t !== "Stealth" && t !== "Defense Impairment"));
// where a long word of a tactic's name may break (a soft hyphen): narrow columns, whole words
const BREAKS = {
  Reconnaissance: "Reconnais\u00adsance",
  Development: "Develop\u00adment",
  Persistence: "Persis\u00adtence",
  Escalation: "Escala\u00adtion",
  Credential: "Creden\u00adtial",
  Exfiltration: "Exfiltra\u00adtion",
  Impairment: "Impair\u00adment",
};
const breakable = (name) => name.replace(/\w{10,}/g, (word) => BREAKS[word] || word);

// "tactic|parent" groups the analyst opened or closed, kept across redraws; the others are open
// when an analyst accepted or added one of their sub-techniques (as Navigator shows annotated
// sub-techniques), closed otherwise
const unfolded = new Set();
const folded = new Set();

/** The cells of the report: suggestions shown on the page, and techniques analysts added. */
function cellsOf(report, showMore) {
  const cells = new Map();
  for (const s of report.suggestions) {
    if (!s.above_threshold && !showMore && s.state !== "accepted") continue;
    cells.set(s.technique, {
      id: s.technique,
      name: s.technique_name,
      parent: s.parent || null,
      parentName: s.parent_name || "",
      tactics: s.tactics || [],
      confidence: Number(s.confidence) || 0,
      state: s.state, // accepted | rejected | pending
      added: false,
    });
  }
  for (const a of report.added) {
    const known = cells.get(a.technique);
    if (known) known.added = true;
    else
      cells.set(a.technique, {
        id: a.technique,
        name: a.technique_name,
        parent: a.parent || null,
        parentName: a.parent_name || "",
        tactics: a.tactics || [],
        confidence: null,
        state: "added",
        added: true,
      });
  }
  return [...cells.values()];
}

/** One tactic's techniques, each sub-technique under its parent: [{head, subs}]. */
function groups(inTactic) {
  const byParent = new Map();
  for (const c of inTactic) {
    const key = c.parent || c.id;
    const group = byParent.get(key) || { id: key, head: null, name: c.parentName, subs: [] };
    if (c.parent) group.subs.push(c);
    else group.head = c;
    byParent.set(key, group);
  }
  return [...byParent.values()].sort((a, b) => a.id.localeCompare(b.id));
}

export function renderMatrix(container, report, { showMore, onPick }) {
  const cells = cellsOf(report, showMore);
  const tactics = TACTICS.filter((t) => ALWAYS.has(t) || cells.some((c) => c.tactics.includes(t)));
  for (const cell of cells) for (const t of cell.tactics) if (!tactics.includes(t)) tactics.push(t);
  const columns = tactics.map((tactic) => {
    const inTactic = cells.filter((c) => c.tactics.includes(tactic));
    const list = el("ul", {}, ...groups(inTactic).map((g) => groupItem(tactic, g, onPick)));
    if (!inTactic.length) list.append(el("li", { className: "empty" }, "—"));
    const noun = inTactic.length === 1 ? "technique" : "techniques";
    return el(
      "section",
      { className: "tactic", "aria-label": `${tactic}: ${inTactic.length} ${noun}` },
      el(
        "h3",
        {},
        breakable(tactic),
        el("span", { className: "count" }, `${inTactic.length} ${noun}`),
      ),
      list,
    );
  });
  container.replaceChildren(...columns);
}

function groupItem(tactic, group, onPick) {
  const item = el("li", { className: "group" });
  const head = group.head
    ? cellButton(group.head, onPick)
    : cellButton(summaryOf(group), onPick, { placeholder: true });
  item.append(head);
  if (!group.subs.length) return item;
  const key = `${tactic}|${group.id}`;
  const decided = group.subs.some((c) => c.state === "accepted" || c.added);
  const open = unfolded.has(key) || (decided && !folded.has(key));
  const toggle = el(
    "button",
    { type: "button", className: "fold", "aria-expanded": String(open) },
    `${open ? "▾" : "▸"} ${group.subs.length} sub-technique${group.subs.length === 1 ? "" : "s"}`,
  );
  toggle.setAttribute("aria-label", `${group.subs.length} sub-techniques of ${group.id}`);
  const subs = el(
    "ul",
    { className: "subs", hidden: !open },
    ...group.subs.map((c) => el("li", {}, cellButton(c, onPick))),
  );
  toggle.addEventListener("click", () => {
    const now = subs.hidden;
    subs.hidden = !now;
    toggle.setAttribute("aria-expanded", String(now));
    toggle.textContent = `${now ? "▾" : "▸"} ${group.subs.length} sub-technique${group.subs.length === 1 ? "" : "s"}`;
    (now ? unfolded : folded).add(key);
    (now ? folded : unfolded).delete(key);
  });
  item.append(toggle, subs);
  return item;
}

/** A parent that is not a cell itself stands for its sub-techniques: their best confidence, and
 * the marks of any of them. */
function summaryOf(group) {
  const known = group.subs.map((c) => c.confidence).filter((c) => c !== null);
  return {
    id: group.id,
    name: group.name || "",
    confidence: known.length ? Math.max(...known) : null,
    state: group.subs.some((c) => c.state === "accepted") ? "accepted" : "pending",
    added: group.subs.some((c) => c.added),
  };
}

function cellButton(c, onPick, { placeholder = false } = {}) {
  const classes = ["cell"];
  if (placeholder) classes.push("parent-only");
  if (c.confidence !== null) classes.push(`heat-${Math.min(4, Math.floor(c.confidence * 5))}`);
  if (c.state === "accepted") classes.push("accepted");
  if (c.state === "rejected") classes.push("rejected");
  if (c.added && c.state !== "accepted") classes.push("added");
  const states = [
    c.confidence !== null ? `confidence ${c.confidence.toFixed(2)}` : null,
    c.state === "accepted" || c.state === "rejected" ? c.state : null,
    c.added ? "added by an analyst" : null,
    placeholder ? "through its sub-techniques" : null,
  ].filter(Boolean);
  const label = `${c.id} ${c.name || ""}: ${states.join(", ")}`;
  const button = el(
    "button",
    { type: "button", className: classes.join(" "), title: label, "aria-label": label },
    el("span", { className: "tid" }, c.id),
    c.name || "",
  );
  if (!placeholder) {
    button.dataset.technique = c.id;
    button.addEventListener("click", () => onPick(c.id));
  } else {
    button.dataset.parent = c.id;
    button.addEventListener("click", () => button.nextElementSibling?.click());
  }
  return button;
}
