import assert from "node:assert/strict";
import { porterStem } from "../../../lib/metrics/porter.ts";

Deno.test("Porter (NLTK_EXTENSIONS): nltk's stem howto examples", () => {
  // nltk/test/stem.doctest: the same words and the stems nltk prints for them.
  const words = [
    "caresses",
    "flies",
    "dies",
    "mules",
    "denied",
    "died",
    "agreed",
    "owned",
    "humbled",
    "sized",
    "meeting",
    "stating",
    "siezing",
    "itemization",
    "sensational",
    "traditional",
    "reference",
    "colonizer",
    "plotted",
  ];
  const stems =
    "caress fli die mule deni die agre own humbl size meet state siez item sensat tradit refer colon plot";
  assert.equal(words.map(porterStem).join(" "), stems);
});

Deno.test("Porter: irregular forms, short words and lower-casing", () => {
  assert.equal(porterStem("dying"), "die");
  assert.equal(porterStem("skies"), "sky");
  assert.equal(porterStem("news"), "news");
  assert.equal(porterStem("is"), "is");
  assert.equal(porterStem("Jumped"), "jump");
  assert.equal(porterStem("foxes"), "fox");
});

Deno.test("Porter: non-Latin words pass through, astral characters count as one", () => {
  assert.equal(porterStem("погас"), "погас");
  // "😀s" is two code points in Python, so nltk returns it unchanged (len <= 2).
  assert.equal(porterStem("😀s"), "😀s");
  assert.equal(porterStem("😀😀s"), "😀😀");
});
