"""``sim.runner``: which simulator runs the export, as ``./sdxi ... --sim NAME`` chooses it."""

import pytest

from sim.runner import SIMULATORS, simulator


def test_icarus_unless_told_otherwise(monkeypatch):
    monkeypatch.delenv("SDXI_SIM", raising=False)
    assert simulator() == "icarus"
    for name in SIMULATORS:
        monkeypatch.setenv("SDXI_SIM", name)
        assert simulator() == name


def test_an_unknown_simulator_is_refused_by_name(monkeypatch):
    monkeypatch.setenv("SDXI_SIM", "xcelium")
    with pytest.raises(SystemExit, match="'xcelium': the simulators are icarus, verilator"):
        simulator()
