import { parseBlocklist } from "../../server/domain/blocklist";
import { StartupError } from "../../server/startup-error";

const list = parseBlocklist("# comment\n\nred wine\nnsfw\n/b[a@]d\\s*word/i\n/Exact/\n");

test("comments and blank lines are not entries", () => {
  expect(list.size).toBe(4);
});

test.each([
  ["a RED   Wine party", "red wine"],
  ["NSFW!", "nsfw"],
  ["some b@d word here", "/b[a@]d\\s*word/i"],
  ["Exact match", "/Exact/"],
  ["ｎｓｆｗ in full width", "nsfw"],
])("%j is flagged by %j", (text, entry) => {
  expect(list.match(text)).toBe(entry);
});

test.each(["redwine", "winered", "nsfwish", "exact (case matters in a /regex/ without i)", "a cat"])("%j is not flagged", (text) => {
  expect(list.match(text)).toBeNull();
});

test("a global flag does not make the next prompt skip its match", () => {
  const sticky = parseBlocklist("/cat/g");
  expect([sticky.match("cat"), sticky.match("cat"), sticky.match("cat")]).toEqual(["/cat/g", "/cat/g", "/cat/g"]);
});

test("a broken regular expression names its line", () => {
  expect(() => parseBlocklist("fine\n/(/\n", "BLOCKLIST_FILE x")).toThrow(StartupError);
  expect(() => parseBlocklist("fine\n/(/\n", "BLOCKLIST_FILE x")).toThrow(/^BLOCKLIST_FILE x line 2: /);
});
