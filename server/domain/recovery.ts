/**
 * Proof of identity for visitors who lost their cookies: a short recovery code to read aloud
 * and type on a phone ("otter maple 42") and a long secret link (also shown as a QR code).
 *
 * Both are derived from a random per-visitor salt under the server's recovery key, so the
 * owner's page can show them at any time while the database holds only their hashes: the code
 * as a keyed hash bound to the visitor id (a stolen database cannot test guesses), the link as a
 * SHA-256 of its 256-bit secret (looked up by equality). A new salt is a new code and link.
 *
 * The code has 256 × 256 × 100 ≈ 6.5 million values: guessing it is only possible online, where
 * attempts are rate-limited per browser fingerprint, per network and per identity.
 */
import { createHmac, randomBytes } from "node:crypto";
import { hashSecretToken, sameSecret } from "./secret-tokens";

/** 256 short, common words that are hard to mishear or misspell: one byte each. */
const WORDS = [
  "acorn", "alpine", "anchor", "apple", "arrow", "aspen", "atlas", "badger", "bagel", "bamboo", "banjo",
  "basil", "beacon", "beaver", "berry", "bison", "blossom", "bonsai", "bramble", "breeze", "brook", "bubble",
  "buffalo", "bugle", "butter", "cactus", "camel", "candle", "canoe", "canyon", "carrot", "castle", "cedar",
  "cello", "cherry", "chess", "cider", "cinder", "circus", "clover", "cobalt", "cocoa", "comet", "compass",
  "copper", "coral", "cosmos", "cotton", "coyote", "cricket", "crystal", "cupcake", "daisy", "dandy",
  "delta", "denim", "desert", "dingo", "dolphin", "dragon", "drift", "drum", "eagle", "echo", "eclipse",
  "elbow", "ember", "emu", "falcon", "fennel", "fern", "fiddle", "fig", "finch", "fjord", "flame", "flint",
  "flute", "forest", "fossil", "fox", "galaxy", "garden", "garlic", "gecko", "geyser", "ginger", "glacier",
  "goose", "granite", "grape", "gravel", "guitar", "gull", "hammock", "harbor", "harp", "hazel", "hedge",
  "heron", "hickory", "honey", "horizon", "husky", "igloo", "indigo", "iris", "island", "ivory", "jacket",
  "jaguar", "jasmine", "jelly", "jigsaw", "juniper", "kayak", "kettle", "kiwi", "koala", "ladder", "lagoon",
  "lantern", "lemon", "lentil", "lilac", "linen", "lizard", "llama", "lobster", "lotus", "lupin", "magnet",
  "mango", "maple", "marble", "meadow", "melon", "meteor", "mint", "mitten", "mocha", "moose", "mosaic",
  "moss", "muffin", "nectar", "nickel", "nutmeg", "oasis", "ocean", "olive", "onion", "opal", "orbit",
  "orchid", "otter", "owl", "paddle", "panda", "papaya", "parrot", "pebble", "pecan", "pelican", "pepper",
  "piano", "pickle", "pigeon", "pillow", "pine", "pixel", "planet", "plum", "pocket", "pony", "poppy",
  "prairie", "prism", "puffin", "pumpkin", "quartz", "quill", "quokka", "rabbit", "radish", "rainbow",
  "raven", "reef", "ribbon", "river", "robin", "rocket", "saffron", "salmon", "sand", "satin", "scarf",
  "sequoia", "shell", "sherpa", "silver", "sketch", "sloth", "snow", "sonnet", "sparrow", "spruce", "squash",
  "starling", "stone", "sugar", "summit", "sunset", "swan", "tadpole", "tango", "teapot", "thistle",
  "thunder", "tiger", "timber", "toffee", "tomato", "topaz", "tulip", "tundra", "turnip", "turtle", "tuxedo",
  "umbrella", "valley", "velvet", "violin", "volcano", "waffle", "walnut", "walrus", "wander", "willow",
  "window", "winter", "wombat", "yarn", "yeti", "yogurt", "zebra", "zephyr", "zinnia", "beetle", "bobcat",
  "cashew", "dune", "ferret", "harvest", "lynx", "pretzel",
] as const;

export interface RecoveryProof {
  /** "otter maple 42": what the owner's page shows. */
  code: string;
  /** The link's secret (base64url, 43 characters): /recover/<secret>. */
  linkSecret: string;
}

export interface RecoveryHashes {
  codeHash: string;
  linkHash: string;
}

/** Where a recovery link points: the site's /recover page with the secret. */
export const recoveryLinkPath = (linkSecret: string) => `/recover/${linkSecret}`;

export const newRecoverySalt = () => randomBytes(16).toString("base64url");

/** The link's stored form: its secret has 256 bits, so a plain SHA-256 is enough. */
export const recoveryLinkHash = hashSecretToken;

/**
 * A typed code in its canonical form, or null when it cannot be one: case, spaces, hyphens and
 * dots do not matter ("Otter-Maple 42", "otter.maple.42", "otter maple42").
 */
export function normaliseRecoveryCode(typed: string): string | null {
  const parts = typed.normalize("NFKC").toLowerCase().split(/[^a-z0-9]+/).filter(Boolean);
  const glued = parts.length === 2 ? /^([a-z]+)(\d{2})$/.exec(parts[1]!) : null;
  const [first, second, digits] = glued ? [parts[0], glued[1], glued[2]] : parts.length === 3 ? parts : [];
  if (!first || !second || !digits || !/^[a-z]+$/.test(first) || !/^[a-z]+$/.test(second) || !/^\d{2}$/.test(digits)) return null;
  return `${first} ${second} ${digits}`;
}

export function createRecoveryKeys(secret: string) {
  const mac = (...parts: Array<string | number>) => createHmac("sha256", secret).update(parts.join("\0"));
  const hashCode = (visitorId: number, canonicalCode: string) => mac("code-hash", visitorId, canonicalCode).digest("base64url");

  return {
    /** The code and link of a visitor with this salt. */
    proofFor(visitorId: number, salt: string): RecoveryProof {
      const bytes = mac("code", visitorId, salt).digest();
      const digits = String(bytes.readUInt16BE(2) % 100).padStart(2, "0");
      return {
        code: `${WORDS[bytes[0]!]} ${WORDS[bytes[1]!]} ${digits}`,
        linkSecret: mac("link", visitorId, salt).digest("base64url"),
      };
    },

    hashesOf(visitorId: number, proof: RecoveryProof): RecoveryHashes {
      return { codeHash: hashCode(visitorId, proof.code), linkHash: recoveryLinkHash(proof.linkSecret) };
    },

    /** Whether a typed code is this visitor's, in constant time. */
    codeMatches(visitorId: number, storedCodeHash: string | null, typed: string): boolean {
      const canonical = normaliseRecoveryCode(typed);
      if (!canonical || !storedCodeHash) return false;
      return sameSecret(hashCode(visitorId, canonical), storedCodeHash);
    },
  };
}

export type RecoveryKeys = ReturnType<typeof createRecoveryKeys>;
