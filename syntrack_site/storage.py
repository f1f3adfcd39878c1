"""Static files storage: whitenoise's compressed manifest, with ES module imports rewritten.

The dashboard's scripts are native ES modules whose relative imports
(`import { api } from "./core.js"`) must point at the hashed files that
collectstatic writes, or a browser holding an old core.js next to a new main.js
would mix versions. Django's manifest storage rewrites such imports only when
asked to.
"""

from __future__ import annotations

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    support_js_module_import_aggregation = True
