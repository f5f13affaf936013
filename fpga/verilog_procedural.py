"""Wide shifts of the exported Verilog as procedural blocks, which Icarus evaluates word by
word.

Icarus turns a continuous assignment into a network of functors, and its shift functors
build their result one bit at a time. The write engine's byte rotate (a 1024-bit
``{ram, ram} >> offset`` kept to 512 bits) and the other wide shifts were about a quarter
of the simulator's own work on the demo. The same expression inside an ``always @*`` block
compiles to thread code whose loads and shifts move 64-bit words.
:func:`procedural_wide_shifts` rewrites::

    wire [511:0] shifted;
    assign shifted = { ram, ram } >> offset;

as::

    reg [511:0] shifted;
    always @* begin
      if (<the module's time-zero trigger>) begin end
      shifted = { ram, ram } >> offset;
    end

The block reads the same nets and writes the same value, so it is the same combinational
logic to synthesis and to Verilator. Naming the module's time-zero trigger (see
:mod:`fpga.verilog_portable`) makes it run once at time zero as Yosys's own blocks do, so a
value built from nets that never change is not left X.

Only shifts: the same rewrite of the wide concatenations and of the wide ``?:`` made the
demo slower (measured: 10.7 s and 6.3 s against 6.0 s with shifts alone), since a block
wakes a thread and reloads every operand whenever any one of them changes.
"""

import re


__all__ = ["procedural_wide_shifts", "MIN_WIDTH"]

MIN_WIDTH = 64
"""Narrower shifts are left as functors: their bit-by-bit work on a word costs less than
waking a thread."""

_NAME = r"(?:\\\S+ |[A-Za-z_][A-Za-z0-9_$]*)"
_TRIGGER = re.compile(r"^\s*reg (\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+ );$", re.M)
_WIRE = re.compile(r"^(\s*)wire (signed )?\[(\d+):0\] (" + _NAME + r");$", re.M)
_ASSIGN = re.compile(r"^(\s*)assign (" + _NAME + r") ?= (.*);$", re.M)
_SHIFT = re.compile(r" >> | << ")


def _module_pass(body, min_width):
    trigger = _TRIGGER.search(body)
    if trigger is None:
        return body, 0
    trigger = trigger[1]
    widths = {m[4].strip(): int(m[3]) + 1 for m in _WIRE.finditer(body)}
    chosen = set()

    def block(match):
        indent, name, expr = match[1], match[2].strip(), match[3]
        if widths.get(name, 0) < min_width or not _SHIFT.search(expr):
            return match[0]
        chosen.add(name)
        written = match[2] if match[2].endswith(" ") else name
        return (f"{indent}always @* begin\n"
                f"{indent}  if ({trigger}) begin end\n"
                f"{indent}  {written} = {expr};\n"
                f"{indent}end")

    body = _ASSIGN.sub(block, body)

    def declare(match):
        if match[4].strip() not in chosen:
            return match[0]
        return f"{match[1]}reg {match[2] or ''}[{match[3]}:0] {match[4]};"

    return _WIRE.sub(declare, body), len(chosen)


def procedural_wide_shifts(text, min_width=MIN_WIDTH):
    """Return ``text`` with every continuous assignment of a shift (``>>``, ``<<``) to a
    module-local wire at least ``min_width`` bits wide written as an ``always @*`` block, and
    how many were rewritten. Runs after :func:`fpga.verilog_portable.portable_time_zero`,
    whose trigger declarations it looks for."""
    parts = re.split(r"(?m)^(?=module )", text)
    total = 0
    for index, part in enumerate(parts):
        parts[index], count = _module_pass(part, min_width)
        total += count
    return "".join(parts), total
