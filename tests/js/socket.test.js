// What the page makes of each close code (the socket's reconnect loop itself is tested in Chromium).
import { test } from "node:test";
import assert from "node:assert/strict";

import { closeMeaning } from "../../static/js/live/socket.js";

test("close codes that need a person stop the retries and say what to do", () => {
  for (const code of [4003, 4004, 4029]) {
    const meaning = closeMeaning(code);
    assert.equal(meaning.fatal, true, String(code));
    assert.ok(meaning.action.length > 0, String(code));
  }
  assert.match(closeMeaning(4029).reason, /too many live pages/);
});

test("the others are retried, in words", () => {
  assert.deepEqual(closeMeaning(4013), {
    fatal: false,
    reason: "This page fell behind the updates (a busy or sleeping browser); reconnecting.",
    action: "",
  });
  assert.match(closeMeaning(4008).reason, /too many messages/);
  assert.equal(closeMeaning(1006).reason, "Connection to the server lost.");
});
