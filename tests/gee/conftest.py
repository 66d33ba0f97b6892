"""Earth Engine without a server: expressions build and serialise from the algorithm list that
earthengine-api ships for its own tests; ee.Initialize works with a generated service account
key, and computePixels is a fake that answers from a known function."""

import json
from pathlib import Path

import pytest

from tests.gee.fake_earthengine import FakeComputePixels
from watergee.gee.grid import cells_over, parse_bbox, write_grid

ACCOUNT = "mapper@water-project.iam.gserviceaccount.com"


@pytest.fixture
def ee_offline():
    import ee

    from watergee.gee.session import offline

    with offline():
        yield ee


@pytest.fixture(scope="module")
def key_file(tmp_path_factory) -> tuple[Path, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()  # fmt: skip
    key = {"type": "service_account", "project_id": "water-project",
           "private_key_id": "5ec7e7c0ffee5ec7e7", "private_key": pem, "client_email": ACCOUNT,
           "client_id": "1", "token_uri": "https://oauth2.googleapis.com/token"}  # fmt: skip
    path = tmp_path_factory.mktemp("keys") / "key.json"
    path.write_text(json.dumps(key))
    return path, pem


@pytest.fixture
def no_server(monkeypatch):
    """ee.Initialize works as with a server, minus the server: the algorithm list is the one
    earthengine-api ships, and computePixels is the fake."""
    import ee
    from ee import apitestcase

    monkeypatch.setattr(ee.data, "getAlgorithms", apitestcase.GetAlgorithms)
    monkeypatch.setattr(ee.data, "_install_cloud_api_resource", lambda: None)
    monkeypatch.setattr(ee.deprecation, "_FetchDataCatalogStac", lambda: {})
    fake = FakeComputePixels()
    monkeypatch.setattr("watergee.gee.download.ee_fetch", fake)
    yield fake
    ee.Reset()


@pytest.fixture
def grid(tmp_path):
    """Four cells of 0.135 deg (test_download overrides it with a larger area)."""
    path = tmp_path / "grid.gpkg"
    write_grid(cells_over(parse_bbox("10.0,50.0,10.2,50.1"), 0.135), path, 0.135)
    return path
