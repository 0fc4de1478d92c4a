import { orderUnseen } from "../../server/domain/show";

const images = (...pairs: Array<[number, number]>) => pairs.map(([id, visitorId]) => ({ id, visitorId }));

test("a shuffle is the same for the same seed, differs between seeds, and an image that joins never moves the others", () => {
  const unseen = images(...Array.from({ length: 30 }, (_, i) => [i + 1, (i % 4) + 1] as [number, number]));
  const once = orderUnseen(unseen, { mode: "shuffle", seed: 7, shown: [] }).map((image) => image.id);
  expect(orderUnseen(unseen, { mode: "shuffle", seed: 7, shown: [] }).map((image) => image.id)).toEqual(once);
  expect(orderUnseen(unseen, { mode: "shuffle", seed: 8, shown: [] }).map((image) => image.id)).not.toEqual(once);
  expect(once).not.toEqual(unseen.map((image) => image.id));
  const joined = orderUnseen([...unseen, { id: 31, visitorId: 1 }], { mode: "shuffle", seed: 7, shown: [] }).map((image) => image.id);
  expect(joined.filter((id) => id !== 31)).toEqual(once);
});

test("by colour, a guest's images already shown count toward their rounds", () => {
  // Guest 1 had two shown; guest 2 none: guest 2's first two come before guest 1's third.
  const order = orderUnseen(images([5, 1], [6, 2], [7, 2], [8, 2]), { mode: "colour", seed: 0, shown: images([1, 1], [2, 1]) });
  expect(order.map((image) => image.id)).toEqual([6, 7, 5, 8]);
});

test("in order keeps the submission order", () => {
  expect(orderUnseen(images([3, 2], [4, 1]), { mode: "order", seed: 1, shown: [] }).map((image) => image.id)).toEqual([3, 4]);
});
