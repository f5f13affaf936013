"""The exported Verilog and metadata agree with each other, the configuration and the
hard-block model the harness binds them to."""

import inspect
import json
from pathlib import Path

import pytest
from cocotbext.pcie.xilinx.us import UltraScalePlusPcieDevice

from fpga.export import export
from hdl.config import VARIANTS
from hdl.docgen import PAGES
from sdxi_defs import regmap
from sdxi_defs.metadata import validate
from sim.tb import AXIS_PREFIXES
from sim.verilog_ports import module_ports

from .hard_block import TUSER as MODEL_TUSER

ENGINE_INPUTS = {"s_axis_cq": "input", "m_axis_cc": "output", "m_axis_rq": "output",
                 "s_axis_rc": "input"}
MODEL_ARGS = set(inspect.signature(UltraScalePlusPcieDevice.__init__).parameters)


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def exported(request):
    verilog = export(request.param)
    meta = json.loads(verilog.with_suffix(".json").read_text())
    return request.param, module_ports(verilog.read_text(), "sdxi_engine"), meta


def test_every_port_binds(exported):
    _, ports, meta = exported
    w = meta["data_width"]
    assert ports.pop("clk") == ("input", 1)
    assert ports.pop("rst") == ("input", 1)
    for prefix in AXIS_PREFIXES:
        data_dir = ENGINE_INPUTS[prefix]
        ready_dir = "output" if data_dir == "input" else "input"
        assert ports.pop(f"{prefix}_tdata") == (data_dir, w)
        assert ports.pop(f"{prefix}_tkeep") == (data_dir, w // 32)
        assert ports.pop(f"{prefix}_tlast") == (data_dir, 1)
        assert ports.pop(f"{prefix}_tuser") == (data_dir, MODEL_TUSER[w][prefix])
        assert ports.pop(f"{prefix}_tvalid") == (data_dir, 1)
        assert ports.pop(f"{prefix}_tready") == (ready_dir, 1)
        assert meta["pcie"]["tuser_widths"][prefix.split("_")[-1]] == MODEL_TUSER[w][prefix]
    unbound = sorted(set(ports) - MODEL_ARGS)
    assert not unbound, f"ports the hard-block model has no name for: {unbound}"
    # The side-band widths PG213 gives (and the model asserts when it binds them).
    assert ports["cfg_max_payload"] == ("input", 2)
    assert ports["cfg_max_read_req"] == ("input", 3)
    assert ports["cfg_function_status"] == ("input", 16)
    assert ports["cfg_interrupt_msix_address"] == ("output", 64)
    assert ports["pcie_cq_np_req"] == ("output", 2)


def test_metadata_matches_design(exported):
    variant, _, meta = exported
    config = VARIANTS[variant]
    validate(meta)
    assert meta["top"] == "sdxi_engine"
    assert meta["data_width"] == config.data_width
    assert meta["pci"]["class_code"] == "0x120100"
    bars = {b["index"]: b for b in meta["bars"]}
    assert bars[0] == {"index": 0, "log2_size": 18, "is_64bit": True, "prefetchable": False}
    assert 1 << bars[2]["log2_size"] == meta["sdxi"]["contexts"] * meta["sdxi"]["doorbell_stride"]
    assert int(meta["msix"]["table_offset"], 0) == 0x38000 == regmap.MSIX_TABLE_OFFSET
    assert int(meta["msix"]["pba_offset"], 0) == 0x3C000 == regmap.MSIX_PBA_OFFSET
    assert meta["msix"]["mode"] == "external"
    assert 2 <= meta["msix"]["vectors"] <= 2 + meta["sdxi"]["contexts"] - 1
    assert int(meta["sdxi"]["cap0"], 0) == config.cap0
    assert int(meta["sdxi"]["cap1"], 0) == config.cap1
    assert meta["pcie"]["straddle"]["rc"] in (0, 2, 4)
    assert meta["pcie"]["straddle"]["cq"] is False and meta["pcie"]["straddle"]["cc"] is False


@pytest.mark.parametrize("page", sorted(PAGES))
def test_generated_reference_is_current(page):
    doc = Path(__file__).resolve().parent.parent / page
    assert doc.read_text() == PAGES[page](), f"{page} is stale: regenerate with python -m hdl.docgen"
