/**
 * The response's Content-Security-Policy nonce, provided by app/entry.server.tsx for the scripts
 * Remix renders. Undefined in the browser: the scripts are already there, and browsers hide
 * nonces from the page anyway.
 */
import { createContext, useContext } from "react";

export const NonceContext = createContext<string | undefined>(undefined);
export const useNonce = () => useContext(NonceContext);
