"""The ML core is pure numpy / scikit-learn: these tests must run without Django.

tests/conftest.py has an autouse fixture that needs pytest-django's
``settings``; override it here with a no-op so
``pytest tests/clustering/ml -p no:django`` works.
"""

import pytest


@pytest.fixture(autouse=True)
def _plain_static_storage():
    return
