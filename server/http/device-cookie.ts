/**
 * The device cookie (OWASP "Slow Down Online Guessing Attacks with Device Cookies", ADR 006):
 * a random id per browser, signed with the session secret, that the login throttle counts
 * failures against. A successful login re-signs it as trusted, which exempts that browser from
 * the per-network count. Signed, not stored: nothing about clients is kept on the server, and a
 * trusted cookie cannot be made up.
 */
import { randomBytes } from "node:crypto";
import type { Request, Response } from "express";
import type { KeyRing } from "../secrets";
import { COOKIES, readCookie, writeCookie } from "./cookies";
import { createSigner } from "./signing";

const DEVICE_COOKIE_MS = 400 * 24 * 3_600_000; // the longest cookie lifetime browsers honour

export interface Device {
  id: string;
  trusted: boolean;
}

export function createDeviceCookies(sessionKeys: KeyRing) {
  const signer = createSigner(sessionKeys, "device");
  const write = (req: Request, res: Response, device: Device) =>
    writeCookie(req, res, COOKIES.device, `${device.id}.${device.trusted ? 1 : 0}.${signer.sign(`${device.id}:${device.trusted ? 1 : 0}`)}`, DEVICE_COOKIE_MS);

  return {
    /** This browser's device, issuing a fresh untrusted one when the cookie is missing or forged. */
    read(req: Request, res: Response): Device {
      const [id, flag, mac, ...rest] = (readCookie(req, COOKIES.device) ?? "").split(".");
      if (id && mac && (flag === "0" || flag === "1") && rest.length === 0) {
        const verified = signer.verify(`${id}:${flag}`, mac);
        if (verified) {
          const device = { id, trusted: flag === "1" };
          // Signed again under the newest key before the older one retires (server/secrets.ts).
          if (verified === "older") write(req, res, device);
          return device;
        }
      }
      const device = { id: randomBytes(16).toString("base64url"), trusted: false };
      write(req, res, device);
      return device;
    },

    trust(req: Request, res: Response, device: Device): void {
      if (!device.trusted) write(req, res, { id: device.id, trusted: true });
    },
  };
}

export type DeviceCookies = ReturnType<typeof createDeviceCookies>;
