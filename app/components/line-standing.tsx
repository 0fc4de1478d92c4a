/** "3rd in line · about 40 s": where an approved prompt stands, as the server computed it. */

export interface Standing {
  /** 1 = next; null while a generator has it. */
  place: number | null;
  /** Seconds until the image is expected; null with no generator online that can make it. */
  etaSeconds: number | null;
}

const ordinal = (n: number) => {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? "th" : ({ 1: "st", 2: "nd", 3: "rd" } as Record<number, string>)[n % 10] ?? "th";
  return `${n}${suffix}`;
};

/** Rounded the way people say it: seconds under a minute, then minutes, then hours and minutes. */
export function describeWait(seconds: number): string {
  if (seconds < 60) return `about ${Math.max(5, Math.round(seconds / 5) * 5)} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `about ${minutes} min`;
  return `about ${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function LineStanding({ standing }: { standing: Standing }) {
  const where = standing.place === null ? "with a generator" : standing.place === 1 ? "next in line" : `${ordinal(standing.place)} in line`;
  const when = standing.etaSeconds === null ? "waiting for a generator to come online" : describeWait(standing.etaSeconds);
  return (
    <p className="line-standing" data-place={standing.place ?? ""} data-eta={standing.etaSeconds ?? ""}>
      {`${where} · ${when}`}
    </p>
  );
}
