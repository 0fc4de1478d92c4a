import { colourFor, contrastRatio, relativeLuminance, swatchCandidates, swatchOf, visitorIdForColourName } from "../../server/domain/colours";

const rgbOf = (hex: string) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));

test("the first visitors get plain, readable names", () => {
  expect(colourFor(1).name).toBe("Red");
  expect(colourFor(2).name).toBe("Teal");
  expect(colourFor(25).name).toBe("Deep Red");
});

test("100,000 visitors get 100,000 distinct names: the supply never runs out", () => {
  const names = new Set<string>();
  for (let id = 1; id <= 100_000; id++) names.add(colourFor(id).name);
  expect(names.size).toBe(100_000);
  expect(colourFor(100_000).name).toMatch(/^[A-Z][a-z]+( [A-Z][a-z]+)? \d+$/);
});

test("every designed swatch has text with WCAG contrast of at least 4.5", () => {
  for (let id = 1; id <= 20_000; id++) {
    const { hex, text } = colourFor(id);
    const ratio = contrastRatio(relativeLuminance(rgbOf(hex)), relativeLuminance(rgbOf(text)));
    expect(ratio, `${id} ${hex} on ${text}`).toBeGreaterThanOrEqual(4.5);
  }
});

test("taking the first free swatch candidate gives 10,000 visitors 10,000 distinct swatches", () => {
  const taken = new Set<string>();
  for (let id = 1; id <= 10_000; id++) {
    const free = [...swatchCandidates(colourFor(id).hex)].find((hex) => !taken.has(hex));
    expect(free, `visitor ${id}`).toBeDefined();
    taken.add(free!);
    const { text } = swatchOf(free!);
    expect(contrastRatio(relativeLuminance(rgbOf(free!)), relativeLuminance(rgbOf(text)))).toBeGreaterThanOrEqual(4.5);
  }
  expect(taken.size).toBe(10_000);
});

test("ids start at 1", () => {
  expect(() => colourFor(0)).toThrow(RangeError);
  expect(() => colourFor(1.5)).toThrow(RangeError);
});

test("every colour name leads back to its visitor id, however it is typed", () => {
  for (const id of [1, 2, 24, 25, 192, 193, 1000, 54_321]) {
    const { name } = colourFor(id);
    expect(visitorIdForColourName(name)).toBe(id);
    expect(visitorIdForColourName(`  ${name.toUpperCase()} `)).toBe(id);
  }
  for (const typed of ["", "Teal 1", "Teal 0", "Teal 01", "Mauve", "Deep", "Very Deep Teal", "Teal-2"]) expect(visitorIdForColourName(typed)).toBeNull();
});
