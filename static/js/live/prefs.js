/*
 * The person's display preferences kept on the server (UserPreference): which columns each table shows. They
 * follow the person, not the browser: traders share desk machines, and one trader uses several. Saved a
 * moment after the last change; a page without a preferences URL (the browser-test harness) keeps nothing.
 */

const SAVE_DELAY_MS = 500;

export class Preferences {
  constructor(config) {
    this.url = config.preferences_url || null;
    this.csrf = config.csrf_token || "";
    const prefs = config.preferences || {};
    this.columns = prefs.columns && typeof prefs.columns === "object" ? prefs.columns : {};
    this._timer = null;
    this.saves = 0; // test hook: how many saves the server acknowledged
  }

  /** The saved {hidden, shown} of a table, or null. */
  columnsOf(table) {
    const saved = this.columns[table];
    if (!saved || typeof saved !== "object") {
      return null;
    }
    const list = (v) => (Array.isArray(v) ? v.filter((x) => typeof x === "string") : []);
    return { hidden: list(saved.hidden), shown: list(saved.shown) };
  }

  setColumns(table, choices) {
    this.columns[table] = { hidden: choices.hidden, shown: choices.shown };
    this._save();
  }

  _save() {
    if (!this.url) {
      return;
    }
    clearTimeout(this._timer);
    this._timer = setTimeout(() => {
      fetch(this.url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": this.csrf },
        body: JSON.stringify({ columns: this.columns }),
      })
        .then((response) => {
          if (response.ok) {
            this.saves += 1;
          }
        })
        .catch(() => {
          // Not saved: the choice still holds on this page and in its URL.
        });
    }, SAVE_DELAY_MS);
  }
}
