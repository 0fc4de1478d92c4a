/**
 * The device cookie (OWASP "Slow Down Online Guessing Attacks with Device Cookies", ADR 006):
 * a random id per browser, signed with the session secret, that the login throttle counts
 * failures against. A successful login re-signs it as trusted, which exempts that browser from
 * the per-network count. Signed, not stored: nothing about clients is kept on the server, and a
 * trusted cookie cannot be made up.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Request, Response } from "express";
import { COOKIES, readCookie, writeCookie } from "./cookies";

const DEVICE_COOKIE_MS = 400 * 24 * 3_600_000; // the longest cookie lifetime browsers honour

export interface Device {
  id: string;
  trusted: boolean;
}

export function createDeviceCookies(sessionSecret: string) {
  const sign = (id: string, trusted: boolean) => createHmac("sha256", sessionSecret).update(`device:${id}:${trusted ? 1 : 0}`).digest("base64url");
  const write = (req: Request, res: Response, device: Device) =>
    writeCookie(req, res, COOKIES.device, `${device.id}.${device.trusted ? 1 : 0}.${sign(device.id, device.trusted)}`, DEVICE_COOKIE_MS);

  return {
    /** This browser's device, issuing a fresh untrusted one when the cookie is missing or forged. */
    read(req: Request, res: Response): Device {
      const [id, flag, mac, ...rest] = (readCookie(req, COOKIES.device) ?? "").split(".");
      if (id && mac && (flag === "0" || flag === "1") && rest.length === 0) {
        const expected = Buffer.from(sign(id, flag === "1"));
        const given = Buffer.from(mac);
        if (given.length === expected.length && timingSafeEqual(given, expected)) return { id, trusted: flag === "1" };
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
