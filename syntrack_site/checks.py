"""Configuration checks of the whole site (registered by quotas.apps; shown by every manage.py command).

A system check, not a message at settings load: gunicorn workers load the
settings too but never run checks, so the warning appears once per command
and never once per worker.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.core.checks import Warning, register

from syntrack_site.config import unknown_variables

# The tag of the checks a short-lived command such as `poll --once` must still
# run: they read the settings only, so they cost nothing at start.
CONFIGURATION = "configuration"


@register(CONFIGURATION)
def unknown_syntrack_variables(app_configs: object = None, **kwargs: object) -> list[Warning]:
    warnings = []
    for name, where, closest in unknown_variables(os.environ, settings.SYNTRACK_ENV_FILE):
        guess = f": did you mean {closest}?" if closest else "."
        warnings.append(
            Warning(
                f"{name} (in {where}) is not a SynTrack variable and is ignored{guess}",
                hint="The variables SynTrack reads are listed in .env.example and the README.",
                id="syntrack.W001",
            )
        )
    return warnings
