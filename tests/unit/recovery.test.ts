import { createRecoveryKeys, newRecoverySalt, normaliseRecoveryCode, recoveryLinkHash } from "../../server/domain/recovery";

const keys = createRecoveryKeys("k".repeat(43));

test("a recovery code is two words and two digits, the same for the same visitor and salt", () => {
  const salt = newRecoverySalt();
  const proof = keys.proofFor(7, salt);
  expect(proof.code).toMatch(/^[a-z]+ [a-z]+ \d{2}$/);
  expect(proof.linkSecret).toMatch(/^[A-Za-z0-9_-]{43}$/);
  expect(keys.proofFor(7, salt)).toEqual(proof);
  expect(keys.proofFor(8, salt)).not.toEqual(proof);
  expect(keys.proofFor(7, newRecoverySalt())).not.toEqual(proof);
  expect(createRecoveryKeys("o".repeat(43)).proofFor(7, salt)).not.toEqual(proof);
});

test("codes spread over the whole space: 2,000 visitors, almost no repeats", () => {
  const codes = new Set(Array.from({ length: 2000 }, (_, i) => keys.proofFor(i + 1, "salt").code));
  // 6.5 million codes: a birthday collision or two among 2,000 is possible, more is a bias.
  expect(codes.size).toBeGreaterThanOrEqual(1997);
});

test.each([
  ["otter maple 42", "otter maple 42"],
  ["Otter-Maple-42", "otter maple 42"],
  ["  OTTER.maple  42 ", "otter maple 42"],
  ["otter maple42", "otter maple 42"],
  ["ｏｔｔｅｒ maple 42", "otter maple 42"],
])("typing %j counts as %j", (typed, canonical) => {
  expect(normaliseRecoveryCode(typed)).toBe(canonical);
});

test.each(["", "otter", "otter maple", "otter maple 4", "otter maple 420", "otter 42 maple", "otter maple 42 extra", "0tter maple 42"])(
  "%j is not a code",
  (typed) => {
    expect(normaliseRecoveryCode(typed)).toBeNull();
  },
);

test("only the visitor's own code matches its stored hash, however it is typed", () => {
  const proof = keys.proofFor(3, "salt");
  const { codeHash, linkHash } = keys.hashesOf(3, proof);
  expect(keys.codeMatches(3, codeHash, proof.code.toUpperCase().replace(/ /g, "-"))).toBe(true);
  expect(keys.codeMatches(4, codeHash, proof.code)).toBe(false);
  expect(keys.codeMatches(3, codeHash, keys.proofFor(3, "other salt").code)).toBe(false);
  expect(keys.codeMatches(3, null, proof.code)).toBe(false);
  expect(keys.codeMatches(3, codeHash, "not a code")).toBe(false);
  expect(linkHash).toBe(recoveryLinkHash(proof.linkSecret));
  // Nothing stored gives the code or the link away.
  expect(codeHash).not.toContain(proof.code.split(" ")[0]);
  expect(linkHash).not.toBe(proof.linkSecret);
});
