// Security headers (helmet) with a strict Content-Security-Policy: no inline script or
// style, images only from here and the configured image origins.
import helmet from "helmet";
import type { AppDeps } from "../../lib/appDeps.ts";

export function setUpSecurityHeaders(config: AppDeps["config"]) {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: true,
      directives: {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", ...config.imageOrigins],
        "connect-src": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "object-src": ["'none'"],
        // The dog.ceo stand-in serves images over http on loopback; do not rewrite them.
        "upgrade-insecure-requests": null,
      },
    },
    crossOriginEmbedderPolicy: false,
  });
}
