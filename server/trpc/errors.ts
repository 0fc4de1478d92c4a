/** The one mapping from domain error codes to tRPC error codes (and so to HTTP statuses). */
import { TRPCError } from "@trpc/server";
import { DOMAIN_ERROR_CODES, type DomainError } from "../domain/errors";

export function toTRPCError(error: DomainError): TRPCError {
  return new TRPCError({ code: DOMAIN_ERROR_CODES[error.code], message: error.userMessage, cause: error });
}
