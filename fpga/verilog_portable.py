"""The exported Verilog's start at time zero, the same under Verilog-2005 and SystemVerilog.

Yosys writes Amaranth's combinational processes as ``always @*`` blocks and, so that each
runs once at time zero even when nothing it reads ever changes (constant drivers), gives
every module a trigger register with an initialiser that every such block names::

    reg \\$auto$verilog_backend.cc:2355:dump_module$1  = 0;
    always @* begin
      if (\\$auto$verilog_backend.cc:2355:dump_module$1 ) begin end
      ...

Under Verilog-2005 the initialiser is an assignment at time zero: the register changes
from X to 0 and wakes every block. Under IEEE 1800 (Icarus ``-g2012``, which cocotb's
runner and Makefiles use by default, and Verilator) a variable's initialiser takes effect
before any process starts, so there is no change, no block runs until one of its inputs
moves, and outputs driven from constants stay X (amaranth-lang/amaranth issue 1629).

:func:`portable_time_zero` declares the register without an initialiser and sets it from an
``initial`` block with a nonblocking assignment. Its update waits for the NBA region of time
zero, which in both languages comes after every process has started and stopped at its first
event control, whatever order they started in; the change from X to 0 then wakes every
block. There is no delay, so Verilator needs no timing option, and synthesis sees the same
constant register, which nothing but the empty ``if`` reads.

Yosys names the trigger only in blocks with ``begin``. Where a signal is driven in parts, the
parts outside any ``if`` come out as one-statement blocks without it::

    always @*
      o[3:1] = 3'h5;

which never run when what they read is constant (under either language). :func:`name_trigger`
gives them the module's trigger as well.
"""

import re


__all__ = ["portable_time_zero", "name_trigger"]

_TRIGGER = re.compile(r"^(\s*)reg (\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+ ) = 0;$",
                      re.M)


def portable_time_zero(text):
    """Return ``text`` with every trigger register set in the NBA region of time zero, and how
    many there were."""
    return _TRIGGER.subn(lambda m: f"{m[1]}reg {m[2]};\n{m[1]}initial {m[2]} <= 1'h0;", text)


_TRIGGER_NAME = re.compile(r"^\s*reg (\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+ )[;= ]",
                           re.M)
_ONE_STATEMENT = re.compile(r"^(\s*)always @\*\n(\s*)([^\n]*;)$", re.M)


def name_trigger(text):
    """Return ``text`` with every one-statement ``always @*`` block naming its module's time-zero
    trigger, and how many there were."""
    out, total = [], 0
    for module in re.split(r"(?m)^(?=module )", text):
        trigger = _TRIGGER_NAME.search(module)
        if trigger:
            module, count = _ONE_STATEMENT.subn(
                lambda m: f"{m[1]}always @* begin\n{m[2]}if ({trigger[1]}) begin end\n"
                          f"{m[2]}{m[3]}\n{m[1]}end", module)
            total += count
        out.append(module)
    return "".join(out), total
