"""``fpga.verilog_procedural``: wide shifts rewritten as ``always @*`` blocks keep their
values, in Icarus as Verilog-2005 and as SystemVerilog, including at time zero when nothing
they read ever changes."""

import random
import shutil
import subprocess

import pytest
from amaranth.back import verilog
from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fpga.export import export
from fpga.verilog_portable import portable_time_zero
from fpga.verilog_procedural import MIN_WIDTH, procedural_wide_shifts

WIDTH = 128
CONSTANT = 0x0123_4567_89AB_CDEF_FEDC_BA98_7654_3210
CONSTANT_SHIFT = 12


class _Shifts(wiring.Component):
    """A byte rotate as the write engine has it, a shift of registers that never change, and
    a shift too narrow to rewrite."""

    def __init__(self):
        super().__init__({
            "data": In(WIDTH), "offset": In(4),
            "rotated": Out(WIDTH), "held": Out(WIDTH), "narrow": Out(8),
        })

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.rotated.eq((Cat(self.data, self.data) >> Cat(0, 0, 0, self.offset))
                                    [:WIDTH])
        value = Signal(WIDTH, init=CONSTANT)
        amount = Signal(7, init=CONSTANT_SHIFT)
        m.d.sync += [value.eq(value), amount.eq(amount)]
        m.d.comb += self.held.eq(value >> amount)
        m.d.comb += self.narrow.eq(self.data[:8] >> self.offset[:3])
        return m


def _bench(cases):
    lines = ["module bench;",
             "  reg clk = 0, rst = 0;",
             f"  reg [{WIDTH - 1}:0] data = 0;",
             "  reg [3:0] offset = 0;",
             f"  wire [{WIDTH - 1}:0] rotated, held;",
             "  wire [7:0] narrow;",
             "  shifts dut (.clk(clk), .rst(rst), .data(data), .offset(offset),",
             "              .rotated(rotated), .held(held), .narrow(narrow));",
             "  initial begin",
             '    #1 $display("held=%h", held);']
    for data, offset in cases:
        lines += [f"    data = {WIDTH}'h{data:x}; offset = 4'd{offset};",
                  '    #1 $display("%h %h", rotated, narrow);']
    lines += ["  end", "endmodule", ""]
    return "\n".join(lines)


def _simulate(design, language, cases, tmp_path):
    (tmp_path / "design.v").write_text(design)
    (tmp_path / "bench.v").write_text(_bench(cases))
    subprocess.run(["iverilog", language, "-o", "sim.vvp", "-s", "bench", "design.v", "bench.v"],
                   cwd=tmp_path, check=True, capture_output=True, timeout=60)
    result = subprocess.run(["vvp", "-n", "sim.vvp"], cwd=tmp_path, check=True,
                            capture_output=True, text=True, timeout=60)
    return result.stdout.split()


def _rewritten():
    text, _ = portable_time_zero(verilog.convert(_Shifts(), name="shifts", emit_src=False))
    return procedural_wide_shifts(text)


def test_wide_shifts_become_blocks_and_narrow_ones_stay():
    text, count = _rewritten()
    assert count == 2                          # the rotate and the held shift
    assert "    held = value >> amount;" in text
    assert MIN_WIDTH > 8
    assert "  assign narrow = data[7:0] >> offset[2:0];" in text


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="needs Icarus Verilog")
@pytest.mark.parametrize("language", ["-g2005", "-g2012"])
def test_rewritten_shifts_compute_the_same_values(language, tmp_path):
    rng = random.Random(5)
    cases = [(rng.getrandbits(WIDTH), rng.randrange(16)) for _ in range(12)]
    words = _simulate(_rewritten()[0], language, cases, tmp_path)
    assert words[0] == f"held={CONSTANT >> CONSTANT_SHIFT:032x}"
    mask = (1 << WIDTH) - 1
    for (data, offset), rotated, narrow in zip(cases, words[1::2], words[2::2]):
        assert int(rotated, 16) == ((data | data << WIDTH) >> (8 * offset)) & mask
        assert int(narrow, 16) == (data & 0xFF) >> (offset & 7)


def test_export_rotates_the_write_engine_in_a_block():
    text = export().read_text()
    block = text.index("shifted = { ram__data, ram__data } >> ")
    assert text.rfind("always @* begin", 0, block) > text.rfind("assign", 0, block)
    assert "reg [511:0] shifted;" in text
