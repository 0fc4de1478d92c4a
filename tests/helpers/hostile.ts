/**
 * fast-check arbitraries for hostile input, shared by the tRPC and MQTT property suites.
 *
 * Values are generated as JSON *text*, not as JavaScript values: JSON.stringify cannot write
 * duplicate keys, `1e400` (parsed as Infinity), own `__proto__` keys from a literal, or a
 * nesting deeper than the stack of a recursive serialiser, and those are exactly what a
 * hostile client sends.
 */
import fc from "fast-check";

/** Every property runs from this seed, so a failure is reproduced by running the file again. */
export const SEED = 42;

/** Runs a property with the fixed seed and prints what ran, for the record of the test run. */
export async function assertProperty(name: string, property: fc.IAsyncProperty<any>, numRuns: number): Promise<void> {
  console.log(`property "${name}": seed ${SEED}, ${numRuns} runs`);
  await fc.assert(property, { seed: SEED, numRuns });
}

/** Strings that break naive code: parsers, SQL, HTML, paths, encodings, number coercion. */
const NASTY_STRINGS = [
  "",
  " ",
  "\u0000",
  "a\u0000b",
  "\r\n\t\u0007\u001b[2J",
  "\uD800",
  "\uDFFF",
  "a\uDBFFb\uDC00",
  "\uFEFF",
  "\u202Eevil",
  "💥🦄",
  "NaN",
  "Infinity",
  "-Infinity",
  "-0",
  "1e308",
  "1e309",
  "9007199254740993",
  "0x40",
  " 512 ",
  "512px",
  "5.5",
  "null",
  "undefined",
  "true",
  "[]",
  "{}",
  "__proto__",
  "constructor",
  "prototype",
  "../../../etc/passwd",
  "<script>alert(1)</script>",
  "'; DROP TABLE prompts; --",
  "%00%ff",
  "${process.exit()}",
];

const controlCharacter = fc.integer({ min: 0, max: 0x1f }).map((code) => String.fromCharCode(code));
const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code));

export const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...NASTY_STRINGS),
  fc.string({ maxLength: 30 }),
  fc.string({ unit: fc.oneof(controlCharacter, loneSurrogate, fc.constantFrom("a", "é", "😀")), maxLength: 30 }),
  // Past every length limit of the app (1000 characters) but under the 64 KiB body limit...
  fc.integer({ min: 1_001, max: 20_000 }).map((n) => "x".repeat(n)),
  // ...and past the body limit too.
  fc.constant("y".repeat(70_000)),
);

const hostileNumber: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(0, -0, 1, -1, 0.5, 63, 64, 512, 2048, 2056, 1e308, -1e308, 5e-324, Number.MAX_SAFE_INTEGER, 2 ** 53 + 1, 2 ** 31, -(2 ** 63)),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

/** JSON number literals that JSON.stringify never writes. */
const NUMBER_LITERALS = ["1e400", "-1e400", "-0", "0.0000000000000000000001", "123456789012345678901234567890", "9007199254740993", "1E2"];

const POLLUTION_KEYS = ["__proto__", "constructor", "prototype", "toString", "valueOf", "hasOwnProperty", "isAdmin", "json", "meta", "0", ""];

export const hostileLeafText: fc.Arbitrary<string> = fc.oneof(
  hostileString.map((s) => JSON.stringify(s)),
  hostileNumber.map((n) => JSON.stringify(n)),
  fc.constantFrom(...NUMBER_LITERALS, "true", "false", "null"),
);

export const hostileKey: fc.Arbitrary<string> = fc.oneof(fc.constantFrom(...POLLUTION_KEYS), fc.string({ maxLength: 12 }));

/** JSON text of an object with these entries, duplicate keys and all. */
export const objectText = (entries: Array<[string, string]>) => `{${entries.map(([key, value]) => `${JSON.stringify(key)}:${value}`).join(",")}}`;

/** Arbitrary JSON text: trees of hostile leaves under hostile keys, and very deep nesting. */
export const hostileJsonText: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.letrec<{ value: string; array: string; object: string }>((tie) => ({
    value: fc.oneof({ depthSize: "small", withCrossShrink: true }, hostileLeafText, tie("array"), tie("object")),
    array: fc.array(tie("value"), { maxLength: 5 }).map((items) => `[${items.join(",")}]`),
    object: fc.array(fc.tuple(hostileKey, tie("value")), { maxLength: 5 }).map(objectText),
  })).value },
  { weight: 1, arbitrary: fc.jsonValue().map((value) => JSON.stringify(value)) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 100, max: 5_000 }).chain((depth) =>
      fc.constantFrom("[".repeat(depth) + "]".repeat(depth), '{"a":'.repeat(depth) + "1" + "}".repeat(depth), '{"__proto__":'.repeat(depth) + "{}" + "}".repeat(depth)),
    ),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '{"__proto__":{"isAdmin":true,"polluted":1}}',
      '{"constructor":{"prototype":{"polluted":1}}}',
      '{"__proto__":null}',
      '{"id":1,"id":"1","id":{"__proto__":{"valueOf":1}}}',
    ),
  },
);

/** Text that is not JSON at all, or not quite. */
export const notJsonText: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom("", "{", "[", '{"prompt":', '{"prompt":"a', "{'prompt':'a'}", "undefined", "NaN", "Infinity", "-", "01", "1.", '"\\ud800', '"\\x00"', "{}}", "[1,]", "\u0000", "\uFEFF{}"),
  hostileJsonText.filter((text) => text.length > 1).chain((text) => fc.integer({ min: 1, max: text.length - 1 }).map((cut) => text.slice(0, cut))),
);

/** encodeURIComponent that accepts lone surrogates (as U+FFFD, as a browser sends them) instead of throwing. */
export const uriEncode = (text: string) => encodeURIComponent(Buffer.from(text).toString());
