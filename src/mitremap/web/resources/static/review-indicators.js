// The Indicators tab of the review page: every indicator of the report once, with its type, its
// value defanged (so nothing on the page is a live link), the places it occurs (click one: it is
// highlighted in the text), and accept / reject ("not an indicator") like techniques. Values the
// known-benign lists name (system programs, vendor domains, the report's own address …) are
// pre-marked as context, with the reason; the exports send them as context unless accepted.
import { el, formatDate } from "./app.js";
import { draftInput } from "./drafts.js";

const TYPE_NAMES = {
  ipv4: "IPv4",
  ipv6: "IPv6",
  url: "URL",
  domain: "domain",
  email: "e-mail",
  md5: "MD5",
  sha1: "SHA-1",
  sha256: "SHA-256",
  sha512: "SHA-512",
  file_name: "file name",
  windows_path: "Windows path",
  unix_path: "Unix path",
  registry_key: "registry key",
  cve: "CVE",
};

/** A value as shown, the way reports write them: its last dot bracketed (185.220.101[.]47,
 * evil[.]com), a URL's host too and its http made hxxp. */
export function defang(type, value) {
  const dot = (text) => text.replace(/\.(?=[^.]*$)/, "[.]");
  if (["ipv4", "domain", "onion", "email"].includes(type)) return dot(value);
  if (type === "url") {
    const parts = value.match(/^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)(.*)$/i);
    if (!parts) return dot(value);
    const [, scheme, host, rest] = parts;
    return `${scheme.replace(/^http/i, "hxxp")}://${dot(host)}${rest}`;
  }
  return value;
}

export function indicatorKey(item) {
  return `indicator:${item.type}:${item.value}`;
}

/**
 * Draw the indicators into `list`. `ctx`: { writable, drafts, current, decide(item, action,
 * note), show(item, occurrence) }.
 */
export function renderIndicators(list, items, ctx) {
  const cards = items.map((item) => indicatorCard(item, ctx));
  list.replaceChildren(...cards);
  if (!cards.length) list.append(el("li", { className: "muted" }, "No indicator in this report."));
}

function indicatorCard(item, ctx) {
  const key = indicatorKey(item);
  const note = draftInput(
    el("input", {
      type: "text",
      className: "note",
      maxLength: 1000,
      placeholder: "Note (optional)",
      disabled: !ctx.writable,
      "aria-label": `Note on ${item.value}`,
    }),
    ctx.drafts,
    key,
    item.decision?.note || "",
  );
  const button = (label, action, className) => {
    const b = el("button", { type: "button", className, disabled: !ctx.writable }, label);
    b.addEventListener("click", () => ctx.decide(item, action, note.value.trim()));
    return b;
  };
  const accept = button("Accept", "accept", "accept");
  const reject = button("Not an indicator", "reject", "reject");
  const clear = button("Clear", "clear", "clear");
  clear.disabled = !ctx.writable || !item.decision;
  accept.setAttribute("aria-pressed", String(item.state === "accepted"));
  reject.setAttribute("aria-pressed", String(item.state === "rejected"));
  const places = item.occurrences.map((o, i) => {
    const place = el(
      "button",
      { type: "button", className: "small place", title: o.raw },
      String(i + 1),
    );
    place.setAttribute("aria-label", `Show occurrence ${i + 1} in the text: ${o.raw}`);
    place.addEventListener("click", () => ctx.show(item, o));
    return place;
  });
  const verdict = item.state === "pending" && item.benign ? "context" : item.state;
  const card = el(
    "li",
    {
      className: `card ioc ${verdict}`,
      tabIndex: -1,
      dataset: { type: item.type, value: item.value },
    },
    el(
      "div",
      { className: "card-head" },
      el("span", { className: "chip" }, TYPE_NAMES[item.type] || item.type),
      el("code", { className: "ioc-value" }, defang(item.type, item.value)),
    ),
    stateLine(item),
    el("p", { className: "places" }, `Occurs ${places.length}×: `, ...places),
    el("div", { className: "actions" }, accept, reject, clear, note),
  );
  if (ctx.current === key) card.classList.add("current");
  return card;
}

function stateLine(item) {
  const line = el("p", { className: "state" });
  if (!item.decision && item.benign) {
    line.append(
      el("span", { className: "badge context" }, "Context"),
      ` — pre-marked: ${item.benign}. Accept it if it is an indicator here.`,
    );
    return line;
  }
  if (!item.decision) {
    line.append(el("span", { className: "badge pending" }, "Pending"));
    return line;
  }
  const yes = item.state === "accepted";
  line.append(
    el(
      "span",
      { className: `badge ${yes ? "accepted" : "rejected"}` },
      yes ? "Indicator" : "Not an indicator",
    ),
    ` by ${item.decision.user || "?"}, ${formatDate(item.decision.at)}`,
    item.decision.note ? ` — “${item.decision.note}”` : "",
  );
  return line;
}
