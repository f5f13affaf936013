"""Logic depth of a synthesized UltraScale+ netlist: the longest register-to-register paths.

Reads Yosys's JSON of the flattened ``synth_xilinx`` netlist. Every LUT1-6, INV, MUXF7/8/9 and
CARRY8 on a path is one level; a distributed RAM (or SRL) is one level from its address pins
to its outputs; flip-flops, block RAM, DSPs and the top level's ports start and end paths.
Flattening keeps each cell's instance path in its name (``dma_read.$abc$...``), so a path
names the blocks its logic is in.
"""

import re
from dataclasses import dataclass


__all__ = ["Path", "longest_paths"]

_COMBINATIONAL = re.compile(r"LUT[1-6]|INV|MUXF[789]|CARRY[48]")
# Cells whose outputs follow some of their inputs combinationally: the address pins.
_ADDRESSED = re.compile(r"RAM\d+X1[SD]|RAM\d+M\d*|SRLC?\d+E")
_ADDRESS_PIN = re.compile(r"ADDR[A-H]|A\d*|DPRA\d*")


@dataclass(frozen=True)
class Path:
    levels: int
    start: str          # where it starts: a register (its output net's name) or a port
    end: str            # the register (input net) it ends at
    blocks: tuple       # the blocks whose logic it runs through, in order


def _block_of(cell_name):
    """The top-level block a flattened cell came from (Yosys names it ``$flatten\\<instance>.``
    ...), or ``None`` for the top level's own cells."""
    name = cell_name.lstrip("\\")
    if name.startswith("$flatten\\"):
        return name[len("$flatten\\"):].split(".")[0].lstrip("\\")
    if name.startswith("$") or "." not in name:
        return None
    return name.split(".")[0]


def longest_paths(netlist, top="sdxi_engine"):
    """Return {block: Path}: for each block, the longest path that ends in it (``None`` for
    the top level's glue), from ``netlist`` (Yosys ``write_json`` of a flattened design)."""
    module = netlist["modules"][top]
    names = {}
    for name, net in module["netnames"].items():
        for i, bit in enumerate(net["bits"]):
            if isinstance(bit, int):
                label = name if len(net["bits"]) == 1 else f"{name}[{i}]"
                public = not name.startswith("$")
                if bit not in names or (public and names[bit][0] == "$"):
                    names[bit] = label
    driver = {}                     # bit -> (cell name, delay, [input bits])
    endpoints = []                  # (cell name, bit) of path ends
    register = {}                   # cell name -> the name of what it holds (its output)
    for cell_name, cell in module["cells"].items():
        kind = cell["type"].lstrip("\\")
        dirs = cell.get("port_directions", {})
        comb_inputs = []
        is_comb = bool(_COMBINATIONAL.fullmatch(kind))
        addressed = bool(_ADDRESSED.fullmatch(kind))
        for pin, bits in cell["connections"].items():
            if dirs.get(pin) == "input":
                if is_comb or (addressed and _ADDRESS_PIN.fullmatch(pin)):
                    comb_inputs += [b for b in bits if isinstance(b, int)]
                else:
                    endpoints += [(cell_name, b) for b in bits if isinstance(b, int)]
        for pin, bits in cell["connections"].items():
            if dirs.get(pin) == "output":
                for b in bits:
                    if not isinstance(b, int):
                        continue
                    if is_comb or addressed:
                        driver[b] = (cell_name, 1, comb_inputs)
                    else:
                        register.setdefault(cell_name, names.get(b, str(b)))
    for port in module["ports"].values():
        if port["direction"] == "output":
            endpoints += [(None, b) for b in port["bits"] if isinstance(b, int)]

    level, best_in = {}, {}

    def depth(bit):
        """Levels of logic in front of ``bit``, iteratively (paths are thousands long)."""
        if bit in level:
            return level[bit]
        stack = [bit]
        on_stack = set()
        while stack:
            b = stack[-1]
            if b in level:
                stack.pop()
                continue
            if b not in driver:
                level[b] = 0
                stack.pop()
                continue
            _, delay, inputs = driver[b]
            pending = [i for i in inputs if i not in level]
            if pending and b not in on_stack:
                on_stack.add(b)
                for i in pending:
                    if i in on_stack:
                        raise ValueError(f"combinational loop through {names.get(i, i)}")
                stack.extend(pending)
                continue
            on_stack.discard(b)
            stack.pop()
            deepest = max(inputs, key=lambda i: level.get(i, 0), default=None)
            level[b] = delay + (level.get(deepest, 0) if deepest is not None else 0)
            best_in[b] = deepest
        return level[bit]

    out = {}
    for cell_name, bit in endpoints:
        n = depth(bit)
        block = _block_of(cell_name) if cell_name else None
        if block in out and out[block].levels >= n:
            continue
        blocks, b = [], bit
        while b in driver:
            cell_block = _block_of(driver[b][0])
            if not blocks or blocks[-1] != cell_block:
                blocks.append(cell_block)
            b = best_in.get(b)
            if b is None:
                break
        start = names.get(b, str(b)) if b is not None else "a constant"
        end = register.get(cell_name) or names.get(bit, str(bit))
        out[block] = Path(n, start, end,
                          tuple(x or "(glue)" for x in reversed(blocks)))
    return out
