import { useEffect, useState } from "react";

/**
 * A timestamp in the reader's own time zone. The server cannot know it, so the first render
 * (server and hydration alike) shows UTC and the browser switches to local time after mount;
 * rendering local time on the server would make hydration mismatch.
 */
export function LocalTime({ iso, withSeconds = false }: { iso: string; withSeconds?: boolean }) {
  const [local, setLocal] = useState<string | null>(null);
  useEffect(() => {
    setLocal(new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: withSeconds ? "medium" : "short" }));
  }, [iso, withSeconds]);
  return (
    <time dateTime={iso} title={iso}>
      {local ?? `${iso.slice(0, withSeconds ? 19 : 16).replace("T", " ")} UTC`}
    </time>
  );
}
