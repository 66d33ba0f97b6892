"""Connecting to Earth Engine, or building expressions with no server at all.

Credentials are earthengine-api's own: a service account key (`gee.service_account` and
`gee.key_file`) or the credentials `earthengine authenticate` stored for the user. The project
comes from `gee.project` or `EE_PROJECT`. Nothing here prints or logs a secret: messages name
the key file and the account, never the key.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

from watergee.core.errors import WatergeeError

if TYPE_CHECKING:
    from watergee.core.config import GeeSettings

log = logging.getLogger(__name__)

HIGH_VOLUME_URL = "https://earthengine-highvolume.googleapis.com"


class EarthEngineError(WatergeeError, RuntimeError):
    """Earth Engine could not be reached, refused the credentials, or failed a request."""


def project_id(project: str | None) -> str:
    found = project or os.environ.get("EE_PROJECT")
    if not found:
        raise EarthEngineError("no Earth Engine project: set gee.project or EE_PROJECT")
    return found


def service_account_credentials(account: str, key_file: Path) -> Any:
    """Credentials from a service account key file, checked before any request."""
    import ee

    try:
        key = json.loads(key_file.read_text())
    except OSError as exc:
        raise EarthEngineError(f"{key_file}: cannot read key file ({exc.strerror})") from None
    except ValueError:
        raise EarthEngineError(f"{key_file}: not a JSON service account key") from None
    if key.get("client_email") not in (None, account):
        raise EarthEngineError(f"{key_file}: key belongs to {key.get('client_email')}, "
                               f"not to gee.service_account {account}")  # fmt: skip
    try:
        return ee.ServiceAccountCredentials(account, key_file=str(key_file))
    except Exception as exc:  # google-auth raises several types for a malformed key
        raise EarthEngineError(f"{key_file}: not a usable service account key "
                               f"({type(exc).__name__})") from None  # fmt: skip


def connect(opts: GeeSettings) -> str:
    """Initialise earthengine-api for the settings' project and credentials; returns the
    project id."""
    import ee

    service_account, key_file, high_volume = opts.service_account, opts.key_file, opts.high_volume
    project = project_id(opts.project)
    credentials: Any = "persistent"  # what `earthengine authenticate` stored
    if service_account or key_file:
        if not (service_account and key_file):
            raise EarthEngineError("gee.service_account and gee.key_file go together")
        credentials = service_account_credentials(service_account, key_file)
    url = HIGH_VOLUME_URL if high_volume else None
    try:
        ee.Initialize(credentials, url=url, project=project)
    except ee.EEException as exc:
        raise EarthEngineError(f"Earth Engine refused project {project}: {exc}") from None
    except Exception as exc:  # auth and transport errors come from several libraries
        who = service_account or "the stored user credentials"
        raise EarthEngineError(f"cannot initialise Earth Engine as {who} for project {project} "
                               f"({type(exc).__name__})") from None  # fmt: skip
    log.info("Earth Engine project %s%s", project, " (high-volume endpoint)" if url else "")
    return project


@contextlib.contextmanager
def offline() -> Iterator[None]:
    """Build and serialise expressions with no server: the algorithm list comes from the copy
    earthengine-api ships with its own tests, and anything that would reach the server fails."""
    import ee
    from ee import apitestcase

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise EarthEngineError("offline: this needs an Earth Engine server")

    patches = [
        mock.patch.object(ee.data, "getAlgorithms", apitestcase.GetAlgorithms),
        mock.patch.object(ee.data, "_install_cloud_api_resource", lambda: None),
        mock.patch.object(ee.data, "computeValue", refuse),
        mock.patch.object(ee.data, "computePixels", refuse),
    ]
    if hasattr(ee, "deprecation") and hasattr(ee.deprecation, "_FetchDataCatalogStac"):
        patches.append(mock.patch.object(ee.deprecation, "_FetchDataCatalogStac", lambda: {}))
    with contextlib.ExitStack() as stack:
        for patch in patches:
            stack.enter_context(patch)
        ee.Reset()
        ee.Initialize(None, "", project="offline")
        try:
            yield
        finally:
            ee.Reset()
