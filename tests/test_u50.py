"""The Alveo U50 build: the IP port table, the generated wrapper and IP script, lint and the
resource report, checked against the export and the hard-block model."""

import json
import re
import subprocess
from pathlib import Path

import pytest
import cocotbext.pcie.xilinx.us.usp_model as usp_model

from fpga.export import export
from fpga.lint import lint
from fpga.logic_depth import longest_paths
from fpga.resources import (BUDGETS, COLUMNS, DMA_PATH, budget_lines, format_table,
                            function_cost_lines, parse_stat, summarize, synthesize)
from fpga.u50.build import generate
from fpga.u50.pcie4c_ip import render_ip_tcl
from fpga.u50.ports import load_ports
from fpga.u50.wrapper import render_wrapper
from sim.verilog_ports import module_ports

from .hard_block import TUSER

ENGINE_TO_IP_PREFIX = {"s_axis_cq": "m_axis_cq", "m_axis_cc": "s_axis_cc",
                       "m_axis_rq": "s_axis_rq", "s_axis_rc": "m_axis_rc"}


def model_widths():
    """Port widths cocotbext-pcie's UltraScalePlusPcieDevice asserts with init_signal()."""
    source = Path(usp_model.__file__).read_text()
    return {name: int(width) for name, width in
            re.findall(r"init_signal\((\w+), (\d+)", source)}


def exported(variant):
    verilog = export(variant)
    meta = json.loads(verilog.with_suffix(".json").read_text())
    return module_ports(verilog.read_text(), "sdxi_engine"), meta


def test_port_table_widths_match_the_model():
    table = {p.name: p for p in load_ports()}
    model = model_widths()
    checked = 0
    for name, width in model.items():
        if name in table:
            assert table[name].widths == {512: width, 256: width}, name
            checked += 1
    assert checked >= 80, f"only {checked} ports cross-checked against the model"
    assert table["cfg_max_payload"].widths[512] == 2   # the model accepts 2 or 3 bits
    for data_width in (512, 256):
        for engine_prefix, ip_prefix in ENGINE_TO_IP_PREFIX.items():
            assert table[f"{ip_prefix}_tdata"].widths[data_width] == data_width
            assert table[f"{ip_prefix}_tkeep"].widths[data_width] == data_width // 32
            assert table[f"{ip_prefix}_tuser"].widths[data_width] == TUSER[data_width][engine_prefix]


@pytest.mark.parametrize("variant", ["default", "w256"])
def test_every_engine_port_meets_the_ip(variant):
    ports, meta = exported(variant)
    w = meta["data_width"]
    by_target = {}
    for p in load_ports():
        if p.kind == "engine":
            assert p.target not in by_target, f"{p.target} connected twice"
            by_target[p.target] = p
    assert set(by_target) == set(ports), "table and engine disagree on the port list"
    for name, (direction, width) in ports.items():
        ip = by_target[name]
        assert (direction, ip.direction) in (("input", "out"), ("output", "in")), name
        if ip.width(w) != width:
            # Only ready signals differ: the IP's are several identical bits.
            assert name.endswith("_tready") and width == 1, f"{name}: {width} vs {ip.width(w)}"


def test_wrapper_connects_everything():
    ports, meta = exported("default")
    text = render_wrapper(ports, meta["data_width"], meta["pcie"]["lanes"])

    def instance_ports(module, instance):
        body = re.search(rf"{module}\s+(?:#\(.*?\)\s*)?{instance}\s*\((.*?)\);", text, re.S)
        assert body, f"no {module} {instance}"
        return re.findall(r"\.(\w+)\(", body.group(1))

    assert instance_ports("pcie4c_uscale_plus_0", "pcie") == [p.name for p in load_ports()]
    assert sorted(instance_ports("sdxi_engine", "engine")) == sorted(ports)
    assert "{22{s_axis_cq_tready}}" in text and "{22{s_axis_rc_tready}}" in text


def _ip_stub(data_width):
    """A port-only model of the IP from the table, so Icarus can check every connection."""
    decls = []
    for p in load_ports():
        w = p.width(data_width)
        rng = f"[{w - 1}:0] " if w > 1 else ""
        decls.append(f"  {'input' if p.direction == 'in' else 'output'} wire {rng}{p.name}")
    return ("module pcie4c_uscale_plus_0 (\n" + ",\n".join(decls) + "\n);\nendmodule\n"
            "module IBUFDS_GTE4 #(parameter REFCLK_HROW_CK_SEL = 2'b00) "
            "(input wire I, IB, CEB, output wire O, ODIV2);\nendmodule\n")


def test_wrapper_elaborates_without_width_mismatches(tmp_path):
    out = generate(tmp_path / "u50")
    stub = tmp_path / "ip_stub.v"
    stub.write_text(_ip_stub(512))
    result = subprocess.run(
        ["iverilog", "-g2005", "-Wall", "-s", "fpga_u50", "-o", str(tmp_path / "u50.vvp"),
         str(out / "fpga_u50.v"), str(out / "sdxi_engine.v"), str(stub)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    mismatches = [line for line in result.stderr.splitlines()
                  if "fpga_u50.v" in line and ("expects" in line or "width" in line.lower())]
    assert not mismatches, "\n".join(mismatches)


def ip_properties(meta):
    return dict(re.findall(r"CONFIG\.(\w+) \{([^}]*)\}", render_ip_tcl(meta)))


def test_ip_script_matches_metadata_512():
    _, meta = exported("default")
    cfg = ip_properties(meta)
    # Values written out from DESIGN.md section 2 and the metadata, as the IP spells them.
    assert cfg["PL_LINK_CAP_MAX_LINK_SPEED"] == "8.0_GT/s"
    assert cfg["PL_LINK_CAP_MAX_LINK_WIDTH"] == "X16"
    assert cfg["axisten_if_width"] == "512_bit" and cfg["axisten_freq"] == "250"
    assert cfg["PF0_CLASS_CODE"] == "120100"
    assert int(cfg["vendor_id"], 16) == int(meta["pci"]["vendor_id"], 0)
    assert int(cfg["PF0_DEVICE_ID"], 16) == int(meta["pci"]["device_id"], 0)
    assert (cfg["pf0_bar0_scale"], cfg["pf0_bar0_size"]) == ("Kilobytes", "256")
    assert cfg["pf0_bar0_64bit"] == "true" and cfg["pf0_bar0_prefetchable"] == "false"
    bar2_bytes = meta["sdxi"]["contexts"] * meta["sdxi"]["doorbell_stride"]
    assert (cfg["pf0_bar2_scale"], int(cfg["pf0_bar2_size"])) == ("Kilobytes", bar2_bytes >> 10)
    assert cfg["pf0_bar2_64bit"] == "true" and cfg["pf0_bar2_prefetchable"] == "false"
    assert cfg["pf0_bar4_enabled"] == "false"
    assert cfg["MSI_X_OPTIONS"] == "MSI-X_External" and cfg["pf0_msi_enabled"] == "false"
    assert int(cfg["PF0_MSIX_CAP_TABLE_SIZE"], 16) == meta["msix"]["vectors"] - 1
    assert cfg["PF0_MSIX_CAP_TABLE_OFFSET"] == "00038000"
    assert cfg["PF0_MSIX_CAP_PBA_OFFSET"] == "0003C000"
    assert cfg["PF0_MSIX_CAP_TABLE_BIR"] == cfg["PF0_MSIX_CAP_PBA_BIR"] == "BAR_1:0"
    straddle = meta["pcie"]["straddle"]
    assert cfg["AXISTEN_IF_EXT_512_RQ_STRADDLE"] == ("true" if straddle["rq"] else "false")
    assert cfg["AXISTEN_IF_EXT_512_RC_4TLP_STRADDLE"] == ("true" if straddle["rc"] == 4 else "false")
    assert cfg["AXISTEN_IF_EXT_512_CQ_STRADDLE"] == "false"
    assert cfg["axisten_if_enable_client_tag"] == "true"
    assert cfg["extended_tag_field"] == "true"
    assert cfg["pf0_dev_cap_max_payload"] == "1024_bytes"
    # Every physical function of the engine, alike; none beyond them.
    functions = meta["sdxi"]["functions"]
    assert functions == 2 and cfg["TL_PF_ENABLE_REG"] == str(functions)
    for pf in range(1, functions):
        for key, value in cfg.items():
            # The device capability is the hard block's, written once.
            if key.lower().startswith("pf0_") and key != "pf0_dev_cap_max_payload":
                twin = f"{key[:2]}{pf}{key[3:]}"
                assert cfg[twin] == value, twin
    assert not any(k.lower().startswith(f"pf{functions}_") for k in cfg)


def test_ip_script_matches_metadata_256():
    _, meta = exported("w256")
    cfg = ip_properties(meta)
    assert cfg["PL_LINK_CAP_MAX_LINK_WIDTH"] == "X8"
    assert cfg["axisten_if_width"] == "256_bit"
    assert cfg["AXISTEN_IF_RC_STRADDLE"] == ("true" if meta["pcie"]["straddle"]["rc"] == 2
                                             else "false")
    assert not any(k.startswith("AXISTEN_IF_EXT_512") for k in cfg)


@pytest.mark.parametrize("variant", ["default", "w256"])
def test_lint_clean(variant):
    code, output = lint(variant)
    assert code == 0, output


@pytest.mark.resources
@pytest.mark.sweep           # two syntheses: minutes, so not in the quick suite
def test_resource_report():
    stat, netlist = synthesize(export("default"))
    paths = longest_paths(netlist)
    blocks, total = summarize(parse_stat(stat), paths=paths)
    # Every top-level block of the engine is reported, with logic in it.
    for block in ("completer", "function0", "function1", *DMA_PATH):
        assert blocks[block]["LUT"] > 0 and blocks[block]["FF"] > 0, block
        assert blocks[block]["levels"] > 0, block
        assert paths[block].start and paths[block].end and block in paths[block].blocks
    assert total["LUT"] == sum(b["LUT"] for b in blocks.values())
    table = format_table(blocks, total)
    assert table.splitlines()[0].split() == ["block", *COLUMNS, "levels"]
    assert table.splitlines()[-1].startswith("total")
    lines = budget_lines(blocks, total)
    assert len(lines) == len(BUDGETS)


def test_parse_stat_reads_both_yosys_formats():
    newer = "=== sdxi_engine.dma_read ===\n\n   Number of cells: 5\n       12 LUT6\n        3 FDRE\n"
    older = "=== sdxi_engine.dma_read ===\n\n   Number of cells: 5\n     LUT6   12\n     FDRE    3\n" \
            "     sdxi_engine.dma_read.sub    1\n\n=== design hierarchy ===\n     LUT6  99\n"
    for text in (newer, older):
        assert parse_stat(text) == {"sdxi_engine.dma_read": {"LUT6": 12, "FDRE": 3}}


def test_logic_depth_counts_levels_between_registers_and_names_the_blocks():
    """A register in block a drives two LUTs in a, one in the top level and one in b, which
    feeds a register in b: 4 levels ending in b, through a, the glue and b."""
    def lut(name, i, o):
        return name, {"type": "LUT2", "port_directions": {"I0": "input", "I1": "input",
                                                          "O": "output"},
                      "connections": {"I0": [i], "I1": ["0"], "O": [o]}}

    def ff(name, d, q):
        return name, {"type": "FDRE", "port_directions": {"D": "input", "C": "input",
                                                          "Q": "output"},
                      "connections": {"D": [d], "C": [99], "Q": [q]}}
    cells = dict([ff("$flatten\\a.$r", 10, 2), lut("$flatten\\a.$l1", 2, 3),
                  lut("$flatten\\a.$l2", 3, 4), lut("$abc$glue", 4, 5),
                  lut("$flatten\\b.$l3", 5, 6), ff("$flatten\\b.$s", 6, 7)])
    netlist = {"modules": {"sdxi_engine": {
        "cells": cells, "ports": {"clk": {"direction": "input", "bits": [99]},
                                  "d": {"direction": "input", "bits": [10]}},
        "netnames": {"a.r": {"bits": [2]}, "b.s": {"bits": [7]}, "$x": {"bits": [5]}}}}}
    paths = longest_paths(netlist)
    assert paths["b"].levels == 4
    assert (paths["b"].start, paths["b"].end) == ("a.r", "b.s")
    assert paths["b"].blocks == ("a", "(glue)", "b")
    assert paths["a"].levels == 0             # the register in a is fed by a port directly


def test_function_cost_is_judged_per_added_function():
    one = {"LUT": 1000, "LUTRAM": 100, "FF": 800}
    lines = function_cost_lines(one, {"LUT": 1300, "LUTRAM": 160, "FF": 900}, functions=3)
    assert lines[0] == ("each function beyond the first: +150 LUT, 15.0% of the one-function "
                        "engine (within the budget of 15%)")
    assert lines[1].startswith("each function beyond the first: +30 LUTRAM, 30.0%")
    over = function_cost_lines(one, {"LUT": 1151, "LUTRAM": 100, "FF": 800}, functions=2)
    assert "OVER the budget of 15%" in over[0]
