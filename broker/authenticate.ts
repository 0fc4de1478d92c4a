/**
 * Every network client is a generator with its own credential (issue 7 §4): username = the
 * generator's name, password = its token, and the client id must be that same name (or
 * `<name>/<anything>` for extra connections), so no credential can reach another generator's
 * client id, session or topics. Aedes closes an older
 * connection when a new one authenticates with its client id [MQTT-3.1.4-2]; only the holder of
 * that generator's token can do that. The server itself uses the broker's API and never connects.
 */
import type { AedesOptions, AuthenticateError } from "aedes";
import { generatorOfClientId } from "./contract";
import type { BrokerLog } from "./index";

/** MQTT 3.1.1 CONNACK return codes. */
const IDENTIFIER_REJECTED = 2;
const BAD_USERNAME_OR_PASSWORD = 4;

/** Whether `username` presented its own `password`. */
export type VerifyGenerator = (username: string, password: string) => boolean | Promise<boolean>;

const refusal = (message: string, returnCode: number) => Object.assign(new Error(message), { returnCode }) as AuthenticateError;

export function createAuthenticate(verify: VerifyGenerator, log: BrokerLog): NonNullable<AedesOptions["authenticate"]> {
  return (client, username, password, done) => {
    if (!username || !password) {
      log.warn(`MQTT connection refused: client ${client.id} gave no username or password`);
      return done(refusal("username and password required", BAD_USERNAME_OR_PASSWORD), null);
    }
    if (generatorOfClientId(client.id) !== username) {
      log.warn(`MQTT connection refused: client id ${client.id} is not its username ${username}`);
      return done(refusal("the client id must be the generator's name", IDENTIFIER_REJECTED), null);
    }
    Promise.resolve(verify(username, password.toString())).then(
      (valid) => {
        if (valid) return done(null, true);
        log.warn(`MQTT connection refused: wrong or revoked credential for generator ${username}`);
        done(refusal("bad MQTT credentials", BAD_USERNAME_OR_PASSWORD), null);
      },
      (error: Error) => done(Object.assign(error, { returnCode: 3 }) as AuthenticateError, null),
    );
  };
}
