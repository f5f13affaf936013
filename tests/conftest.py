"""Shared pytest options: long sweeps and the long random run only when asked for, and the
random regression's seed."""

import os

import pytest


def pytest_addoption(parser):
    parser.addoption("--sweep", action="store_true",
                     help="also run the long sweeps (tests marked 'sweep')")
    parser.addoption("--long", action="store_true",
                     help="also run the 10,000-descriptor random regression (tests marked "
                          "'long'; about an hour on two cores)")
    parser.addoption("--seed", type=lambda text: int(text, 0), default=None,
                     help="seed of the random regression (default: its fixed seed)")


def pytest_configure(config):
    seed = config.getoption("--seed")
    if seed is not None:     # the simulations inherit it, on xdist workers too
        os.environ["SDXI_RANDOM_SEED"] = str(seed)


def pytest_collection_modifyitems(config, items):
    skips = {marker: pytest.mark.skip(reason=f"{why}: run with --{marker}")
             for marker, why in (("sweep", "long sweep"), ("long", "long random run"))
             if not config.getoption(f"--{marker}")}
    for item in items:
        for marker, skip in skips.items():
            if marker in item.keywords:
                item.add_marker(skip)
