import { AFTER_LOGIN, safeNext } from "../../app/lib/safe-next";

test("a path on this site is kept, query and fragment included", () => {
  expect(safeNext("/sd/")).toBe("/sd/");
  expect(safeNext("/sd/?tab=img2img&x=1#top")).toBe("/sd/?tab=img2img&x=1#top");
  expect(safeNext("/admin/generators")).toBe("/admin/generators");
});

test("anything that could leave the site, or is not a path, falls back to the moderation page", () => {
  for (const hostile of [
    "//evil.example/",
    "/\\evil.example",
    "https://evil.example/",
    "javascript:alert(1)",
    "evil.example",
    "/%0d%0aSet-Cookie:x",
    "/\r\nLocation: https://evil.example",
    "/\t/evil.example",
    "",
    null,
    undefined,
    ["/sd/"],
    `/${"a".repeat(3000)}`,
  ]) {
    const next = safeNext(hostile);
    expect(next === AFTER_LOGIN || (next.startsWith("/") && !next.startsWith("//") && !/[\r\n\t]/.test(next)), String(hostile)).toBe(true);
  }
  expect(safeNext("//evil.example/")).toBe(AFTER_LOGIN);
  expect(safeNext("https://evil.example/")).toBe(AFTER_LOGIN);
  expect(safeNext("/\t/evil.example")).toBe(AFTER_LOGIN);
});

test("dot segments that collapse into another host, plain or percent-encoded, fall back to the moderation page", () => {
  for (const hostile of ["/..//evil.example", "/.//evil.example", "/%2e%2e//evil.example", "/%2E//evil.example", "/a/..//evil.example", "/.%2e//evil.example/x?y#z"]) {
    expect(safeNext(hostile), hostile).toBe(AFTER_LOGIN);
    expect(safeNext(hostile, "/"), hostile).toBe("/");
  }
  expect(safeNext("/sd/../admin")).toBe("/admin");
});
