/**
 * Network clients (generators, observers) must present the server's MQTT token as their MQTT
 * password; the username is free (e.g. the generator's name). The server itself uses the
 * broker's API and never authenticates. Per-generator credentials and ACLs are a later step.
 */
import { timingSafeEqual } from "node:crypto";
import type { AedesOptions, AuthenticateError } from "aedes";

/** MQTT 3.1.1 CONNACK return code 4: bad user name or password. */
const BAD_USERNAME_OR_PASSWORD = 4;

export function createAuthenticate(token: string): NonNullable<AedesOptions["authenticate"]> {
  const expected = Buffer.from(token);
  return (_client, _username, password, done) => {
    if (password && password.length === expected.length && timingSafeEqual(password, expected)) return done(null, true);
    done(Object.assign(new Error("bad MQTT credentials"), { returnCode: BAD_USERNAME_OR_PASSWORD }) as AuthenticateError, null);
  };
}
