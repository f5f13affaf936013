"""Read the port list of a module from exported Verilog (Amaranth's plain Verilog-2001 style)."""

import re


__all__ = ["module_ports"]

_DECL = re.compile(r"^\s*(input|output|inout)\s+(?:wire\s+|reg\s+)?(?:\[(\d+):(\d+)\]\s+)?"
                   r"(\\?[\w.$]+)\s*;", re.M)


def module_ports(verilog_text, module):
    """Return ``{name: (direction, width)}`` for the ports of ``module``."""
    start = re.search(rf"^module\s+{re.escape(module)}\s*\(", verilog_text, re.M)
    if not start:
        raise ValueError(f"module {module} not found")
    end = verilog_text.index("endmodule", start.end())
    body = verilog_text[start.end():end]
    header = body[:body.index(");")]
    names = [n.strip() for n in header.split(",") if n.strip()]
    declared = {}
    for direction, msb, lsb, name in _DECL.findall(body):
        width = int(msb) - int(lsb) + 1 if msb else 1
        declared[name] = (direction, width)
    missing = [n for n in names if n not in declared]
    if missing:
        raise ValueError(f"ports without a declaration: {', '.join(missing)}")
    return {n: declared[n] for n in names}
