/*
 * Every page: folds the menu behind a button on a phone, offers "your browser's time zone" in the display
 * menu (only the browser knows it), saves a display choice as soon as it is made, and copies the text of
 * any [data-copy] button (ids, keys) to the clipboard. A native module, no
 * inline script (the Content-Security-Policy allows scripts from this site only). Without it the pages
 * still work: the menu stays open and the display form has its Save button.
 */

const doc = document;
doc.documentElement.classList.add("js");

const toggle = doc.getElementById("menu-toggle");
const menu = doc.getElementById("site-menu");
if (toggle && menu) {
  toggle.addEventListener("click", () => {
    const open = !menu.classList.contains("open");
    menu.classList.toggle("open", open);
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
  });
}

const form = doc.getElementById("display-form");
if (form) {
  let zone = "UTC";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch (err) {
    zone = "UTC";
  }
  const browser = form.querySelector("option[value='browser']");
  if (browser) {
    if (zone === "UTC" || form.querySelector("option[value='" + CSS.escape(zone) + "']")) {
      browser.remove(); // already offered
      const same = form.querySelector("option[value='" + CSS.escape(zone) + "']");
      if (same && zone !== "UTC") {
        same.textContent = "Your browser's: " + zone;
      }
    } else {
      browser.value = zone;
      browser.textContent = "Your browser's: " + zone;
      browser.disabled = false;
    }
  }
  for (const select of form.querySelectorAll("select")) {
    select.addEventListener("change", () => form.requestSubmit());
  }
}

// Copy buttons (event delegation: the live tables' rows come and go).
function announce(text) {
  const node = doc.getElementById("live-announcer") || doc.getElementById("site-announcer");
  if (node) {
    node.textContent = text;
  }
}

doc.addEventListener("click", (event) => {
  const button = event.target.closest && event.target.closest("[data-copy]");
  if (!button) {
    return;
  }
  event.stopPropagation();
  const text = button.dataset.copy;
  const done = () => {
    button.classList.add("copied");
    button.dataset.copied = "true";
    announce("Copied " + text);
    setTimeout(() => {
      button.classList.remove("copied");
      delete button.dataset.copied;
    }, 1500);
  };
  if (navigator.clipboard && navigator.clipboard.writeText) {
    navigator.clipboard.writeText(text).then(done, () => announce("Could not copy; select the text instead."));
  } else {
    announce("Could not copy; select the text instead.");
  }
});
