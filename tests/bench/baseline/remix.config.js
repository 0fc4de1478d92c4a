/**
 * The bench's baseline (issue 10): a bare Remix 2 app with the visitor page's data shape, built
 * and served the way promptgate is (classic compiler, ESM, Express), to measure promptgate's
 * `GET /` against the framework's own ceiling in the same run. Built by `npm run bench`.
 * @type {import('@remix-run/dev').AppConfig}
 */
export default {
  serverModuleFormat: "esm",
  serverBuildPath: "build/index.js",
  assetsBuildDirectory: "public/build",
  publicPath: "/build/",
  future: {
    v3_fetcherPersist: true,
    v3_relativeSplatPath: true,
    v3_throwAbortReason: true,
    v3_lazyRouteDiscovery: true,
    v3_singleFetch: true,
  },
};
