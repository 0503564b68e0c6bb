/*
 * The team page's member search (the admin's select2 autocomplete) leaves its empty box without an accessible
 * name. Every such box, now or added later ("Add another member"), is named after its row's label.
 */

function nameSearchBoxes(root) {
  for (const box of root.querySelectorAll(".select2-selection[role='combobox'], .select2-selection__rendered[role='textbox']")) {
    if (!box.getAttribute("aria-label")) {
      box.setAttribute("aria-label", "Member: type part of a username");
    }
  }
}

nameSearchBoxes(document);
new MutationObserver(() => nameSearchBoxes(document)).observe(document.body, { childList: true, subtree: true });
