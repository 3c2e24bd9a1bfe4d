// What a user types and has not sent yet (a note on a technique or an indicator, the note of a
// technique to add, a comment) is kept on the server as a draft, so a reload, a closed tab or
// another machine loses nothing. Saved a moment after typing stops, and at once when the page
// is left; the decision or comment made from it forgets it (server side).
import { api } from "./app.js";

const PAUSE_MS = 400;

export class Drafts {
  constructor(reportPath, writable) {
    this.path = `${reportPath}/drafts`;
    this.writable = writable;
    this.texts = new Map();
    this.unsent = new Map(); // key -> text not yet saved
    this.timer = null;
    window.addEventListener("pagehide", () => this.flush({ keepalive: true }));
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden") this.flush({ keepalive: true });
    });
  }

  async load() {
    try {
      const { items } = await api("GET", this.path);
      for (const [key, text] of Object.entries(items || {})) this.texts.set(key, text);
    } catch {
      // no drafts is not an error worth a message: the page works without them
    }
  }

  /** The draft under `key`, or undefined. */
  get(key) {
    return this.texts.get(key);
  }

  /** Keep what was typed under `key` (an empty text forgets the draft). */
  set(key, text) {
    if (!this.writable || this.texts.get(key) === text) return;
    this.texts.set(key, text);
    this.unsent.set(key, text);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), PAUSE_MS);
  }

  /** The server forgot it (the decision or comment was made): forget it here too. */
  forget(key) {
    this.texts.delete(key);
    this.unsent.delete(key);
  }

  flush({ keepalive = false } = {}) {
    clearTimeout(this.timer);
    const sending = [...this.unsent.entries()];
    this.unsent.clear();
    return Promise.all(
      sending.map(([key, text]) =>
        api("PUT", this.path, { key, text }, { keepalive }).catch(() => {
          if (!this.unsent.has(key)) this.unsent.set(key, text); // tried again next time
        }),
      ),
    );
  }
}

/** Keep an input's text as the draft `key`: filled from it, saved as it is typed. */
export function draftInput(input, drafts, key, fallback = "") {
  const kept = drafts.get(key);
  input.value = kept !== undefined ? kept : fallback;
  input.dataset.draft = key;
  input.addEventListener("input", () => drafts.set(key, input.value));
  return input;
}
