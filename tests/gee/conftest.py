"""Earth Engine without a server: expressions build and serialise from the algorithm list that
earthengine-api ships for its own tests."""

import pytest


@pytest.fixture
def ee_offline():
    import ee

    from watergee.gee.session import offline

    with offline():
        yield ee
