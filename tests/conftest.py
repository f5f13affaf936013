"""Shared pytest options: long sweeps run only when asked for."""

import pytest


def pytest_addoption(parser):
    parser.addoption("--sweep", action="store_true",
                     help="also run the long sweeps (tests marked 'sweep')")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--sweep"):
        return
    skip = pytest.mark.skip(reason="long sweep: run with --sweep")
    for item in items:
        if "sweep" in item.keywords:
            item.add_marker(skip)
