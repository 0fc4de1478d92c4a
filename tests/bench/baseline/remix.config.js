/**
 * The bench's baseline (issue 10): a bare Remix 2 app with the visitor page's data shape, built
 * and served the way promptgate is (its own compiler settings, ESM, Express), to measure
 * promptgate's `GET /` against the framework's own ceiling in the same run. Built by `npm run bench`.
 */
import promptgate from "../../../remix.config.js";

/** @type {import('@remix-run/dev').AppConfig} */
export default { ...promptgate };
