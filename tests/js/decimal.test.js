// Exact decimal text: parsing, float artefacts, fixed places, money, one percent format.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  decimalsOf,
  fixedParts,
  fixedText,
  moneyText,
  parseDecimal,
  percentText,
  plainText,
} from "../../static/js/live/decimal.js";

test("parses decimal text exactly, without trailing zeros", () => {
  assert.deepEqual(parseDecimal("187.250"), { neg: false, int: "187", frac: "25" });
  assert.deepEqual(parseDecimal("-0.0500"), { neg: true, int: "0", frac: "05" });
  assert.deepEqual(parseDecimal("-0.000"), { neg: false, int: "0", frac: "" });
  assert.deepEqual(parseDecimal("007"), { neg: false, int: "7", frac: "" });
  assert.deepEqual(parseDecimal(".5"), { neg: false, int: "0", frac: "5" });
  assert.deepEqual(parseDecimal(1e-7), { neg: false, int: "0", frac: "0000001" });
  assert.deepEqual(parseDecimal("1E+2"), { neg: false, int: "100", frac: "" });
  for (const bad of [null, undefined, "", "abc", "1.2.3", ".", "-", true, NaN, Infinity]) {
    assert.equal(parseDecimal(bad), null, String(bad));
  }
});

test("binary float artefacts are shown at the value they stand for", () => {
  assert.equal(plainText("1.2999999999999998"), "1.3");
  assert.equal(plainText("0.30000000000000004"), "0.3");
  assert.equal(plainText("69.80000000000001"), "69.8");
  assert.equal(plainText(0.1 + 0.2), "0.3");
  assert.equal(decimalsOf("1.2999999999999998"), 1);
  // Exact text with fewer digits than a double's is kept as sent, and so are big whole numbers.
  assert.equal(plainText("0.00012345678"), "0.00012345678");
  assert.equal(plainText("12345678901234567"), "12345678901234567");
});

test("decimals of a value ignore trailing zeros", () => {
  assert.equal(decimalsOf("72.670"), 2);
  assert.equal(decimalsOf("69.8"), 1);
  assert.equal(decimalsOf("100"), 0);
  assert.equal(decimalsOf(null), 0);
});

test("fixed places pad and round half away from zero, grouped", () => {
  assert.equal(fixedText("69.8", 2), "69.80");
  assert.equal(fixedText("72.67", 2), "72.67");
  assert.equal(fixedText("0", 2), "0.00");
  assert.equal(fixedText("1234567.125", 2), "1,234,567.13");
  assert.equal(fixedText("-1.005", 2), "-1.01");
  assert.equal(fixedText("999.995", 2), "1,000.00");
  assert.equal(fixedText("-0.001", 2), "0.00");
  assert.equal(fixedText("12.5", 0), "13");
  assert.equal(fixedText("x", 2), "");
  assert.deepEqual(fixedParts("1234.5", 3), { int: "1,234", frac: ".500" });
  assert.deepEqual(fixedParts("7", 0), { int: "7", frac: "" });
});

test("money is two decimals with thousands separators, whatever the input's digits", () => {
  assert.equal(moneyText("111062.430125"), "111,062.43");
  assert.equal(moneyText("1020.5"), "1,020.50");
  assert.equal(moneyText("0.004"), "0.00");
  assert.equal(moneyText("123456789012.999"), "123,456,789,013.00");
  assert.equal(moneyText(null), "");
});

test("one percent format: one decimal, cut not rounded", () => {
  assert.equal(percentText("0"), "0.0%");
  assert.equal(percentText("90.9"), "90.9%");
  assert.equal(percentText("93.33"), "93.3%");
  assert.equal(percentText("99.99"), "99.9%");
  assert.equal(percentText("100"), "100.0%");
  assert.equal(percentText(null), "");
});

test("CSV text is the value as sent, unless it is a float's artefact", () => {
  assert.equal(plainText("1040.50"), "1040.50");
  assert.equal(plainText("-0.0100"), "-0.0100");
  assert.equal(plainText(12.5), "12.5");
  assert.equal(plainText("69.80000000000001"), "69.8");
  assert.equal(plainText(null), "");
});
