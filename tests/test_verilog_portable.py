"""``fpga.verilog_portable``: a process whose inputs never change still runs at time zero, in
Icarus as Verilog-2005 and as SystemVerilog (cocotb's default), once the export is rewritten."""

import shutil
import subprocess

import pytest
from amaranth.back import verilog
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from fpga.export import export
from fpga.verilog_portable import _TRIGGER, name_trigger, portable_time_zero


class _Constant(wiring.Component):
    """An output set by a combinational If on a register that never changes: Yosys writes it
    as an ``always @*`` block whose only inputs are constant."""

    def __init__(self):
        super().__init__({"o": Out(3)})

    def elaborate(self, platform):
        m = Module()
        held = Signal()
        m.d.sync += held.eq(held)
        with m.If(held):
            m.d.comb += self.o.eq(2)
        with m.Else():
            m.d.comb += self.o.eq(5)
        return m


_BENCH = """module bench;
  reg clk = 0, rst = 0;
  wire [2:0] o;
  constant dut (.clk(clk), .rst(rst), .o(o));
  initial #1 $display("o=%b", o);
endmodule
"""


def _simulate(design, language, tmp_path):
    (tmp_path / "design.v").write_text(design)
    (tmp_path / "bench.v").write_text(_BENCH)
    subprocess.run(["iverilog", language, "-o", "sim.vvp", "-s", "bench", "design.v", "bench.v"],
                   cwd=tmp_path, check=True, capture_output=True, timeout=60)
    result = subprocess.run(["vvp", "-n", "sim.vvp"], cwd=tmp_path, check=True,
                            capture_output=True, text=True, timeout=60)
    return result.stdout.strip()


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="needs Icarus Verilog")
@pytest.mark.parametrize("language", ["-g2005", "-g2012"])
def test_constant_process_runs_at_time_zero(language, tmp_path):
    original = verilog.convert(_Constant(), name="constant", emit_src=False)
    rewritten, count = portable_time_zero(original)
    assert count == 1
    assert _simulate(rewritten, language, tmp_path) == "o=101"


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="needs Icarus Verilog")
def test_without_the_rewrite_systemverilog_leaves_it_unknown(tmp_path):
    """What the rewrite is for: Yosys' own trigger is lost under IEEE 1800."""
    original = verilog.convert(_Constant(), name="constant", emit_src=False)
    assert _simulate(original, "-g2005", tmp_path) == "o=101"
    assert _simulate(original, "-g2012", tmp_path) == "o=xxx"


def test_export_has_every_trigger_rewritten():
    text = export().read_text()
    assert not _TRIGGER.search(text)
    assert text.count("initial \\$auto$verilog_backend.cc:") == text.count("module ") > 20


class _PartlyConstant(wiring.Component):
    """An output driven in parts: one under an If, the rest constant, which Yosys writes as a
    one-statement ``always @*`` block without the trigger."""

    def __init__(self):
        super().__init__({"o": Out(3)})

    def elaborate(self, platform):
        m = Module()
        held = Signal()
        m.d.sync += held.eq(held)
        m.d.comb += [self.o[0].eq(held), self.o[1:].eq(0b10)]
        with m.If(held):
            m.d.comb += self.o[0].eq(1)
        return m


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="needs Icarus Verilog")
@pytest.mark.parametrize("language", ["-g2005", "-g2012"])
def test_one_statement_blocks_run_at_time_zero(language, tmp_path):
    original = verilog.convert(_PartlyConstant(), name="constant", emit_src=False)
    assert _simulate(original, language, tmp_path).startswith("o=xx"), "what it is for"
    rewritten, _ = portable_time_zero(original)
    rewritten, count = name_trigger(rewritten)
    assert count == 1
    assert _simulate(rewritten, language, tmp_path) == "o=100"


def test_export_has_no_block_without_the_trigger():
    assert "always @*\n" not in export().read_text()
