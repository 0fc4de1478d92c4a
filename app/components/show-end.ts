/** "N images from M guests": the show's end card, on the projector and the presenter's phone. */
export function endLine({ shownImages, shownGuests }: { shownImages: number; shownGuests: number }): string {
  return `${shownImages} image${shownImages === 1 ? "" : "s"} from ${shownGuests} guest${shownGuests === 1 ? "" : "s"}`;
}
