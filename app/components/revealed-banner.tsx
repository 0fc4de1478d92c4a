/**
 * "Your picture is revealed!": said where the guest is looking when one of their images is
 * revealed while the page is open: a banner at the top, the tab's title, and a short vibration
 * on phones that can (only while the page is visible: a hidden tab has only its title).
 */
import { useEffect } from "react";

export const REVEALED_TITLE_PREFIX = "★ Revealed — ";

export function RevealedBanner({ promptId, onDismiss }: { promptId: number; onDismiss: () => void }) {
  useEffect(() => {
    const before = document.title;
    document.title = `${REVEALED_TITLE_PREFIX}${before.replace(REVEALED_TITLE_PREFIX, "")}`;
    if (document.visibilityState === "visible") navigator.vibrate?.(200);
    return () => void (document.title = before);
  }, [promptId]);
  return (
    <div className="revealed-banner" role="status">
      <p>
        Your picture is revealed! <a href={`#prompt-${promptId}`}>See it</a>
      </p>
      <button type="button" className="link-button" onClick={onDismiss}>
        Dismiss
      </button>
    </div>
  );
}
