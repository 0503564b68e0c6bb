/*
 * CSV of what a table shows: its visible columns, filtered and sorted rows, and the time each row's data was
 * taken. Pure; unit tests in tests/js/csv.test.js.
 */

/**
 * One CSV field. Text from the exchange that a spreadsheet would run as a formula (=, +, -, @, tab, CR at
 * the start) gets a leading apostrophe; numbers are left exactly as they are.
 */
export function csvField(value, isText) {
  if (value === null || value === undefined) {
    return "";
  }
  let s = String(value);
  if (isText && /^[=+\-@\t\r]/.test(s)) {
    s = "'" + s;
  }
  return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
}

/**
 * The CSV text: `specs` the visible columns, `rows` in order, `asOf(row)` the labelled time the row's data is
 * from (or ""), `ctx` what the columns' csv() need. Lines end with CRLF, as RFC 4180 says.
 */
export function csvText(specs, rows, asOf, ctx) {
  const header = [];
  for (const s of specs) {
    header.push(...s.csvTitles);
  }
  header.push("Data as of");
  const lines = [header.map((h) => csvField(h, false)).join(",")];
  for (const d of rows) {
    const cells = [];
    for (const s of specs) {
      for (const v of s.csv(d, ctx)) {
        cells.push(csvField(v, s.text));
      }
    }
    cells.push(csvField(asOf(d), false));
    lines.push(cells.join(","));
  }
  return lines.join("\r\n") + "\r\n";
}
