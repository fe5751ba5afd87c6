"""
tests/cluster/conftest.py - what every cluster test file gets: clusterlib.py importable
(CMake runs each file by path with pytest) and a `cluster` fixture whose processes are all
stopped, by PID, when the test ends, however it ends.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clusterlib import Cluster  # noqa: E402


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.stop_all()
