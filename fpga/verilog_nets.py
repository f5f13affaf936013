"""Nets of the exported Verilog as Icarus simulates them fastest: one ``assign`` per wire
assembled from parts, no unread field copies, one name per net.

Yosys writes a wire whose bits come from several places (an Amaranth ``Cat``, a stream
payload built from ports, a struct with fields driven apart) as several continuous
assignments to its parts::

    assign rc__payload[689:529] = s_axis_rc_tuser;
    assign rc__payload[528] = s_axis_rc_tlast;
    assign { w[671:654], w[141:0] } = { r[671:654], r[141:0] };

Each part is then a driver of its own, and Icarus resolves a net with several drivers through
a strength-carrying concatenation (``.concat8``) that rebuilds the whole net bit by bit on
every change of any part and converts it back bit by bit for every reader. On the 512-bit
data paths that was the largest single cost of simulating the engine. :func:`merge_part_drivers`
rewrites such a wire as one assignment of a concatenation::

    assign rc__payload = { s_axis_rc_tuser, s_axis_rc_tlast, s_axis_rc_tkeep, s_axis_rc_tdata };

which has the same value in every bit at every time (the parts are disjoint and every bit is
driven with the default strength), so synthesis sees the same netlist. A wire is rewritten
only when its part assignments cover every bit exactly once and every right-hand side is a
constant or a (part-)select of a declared net whose width matches; anything else is left as
Yosys wrote it.

:func:`drop_field_wires` leaves out the wires Amaranth adds for each field of a structured
signal (``\\o.data`` beside ``o``) where nothing reads them: copies for wave viewers, which
Icarus updates on every change of their signal (on the demo a quarter of all the bits the
simulator moved). :func:`merge_aliases` gives each net inside a module one name.
"""

import re


__all__ = ["merge_part_drivers", "drop_field_wires", "merge_aliases"]


_NAME = r"(?:\\\S+ |[A-Za-z_][A-Za-z0-9_$]*)"
_RANGE = r"\[(\d+)(?::(\d+))?\]"
_DECL = re.compile(r"^\s*(?:wire|reg|input|output|inout) (?:signed )?(?:\[(\d+):(\d+)\] )?"
                   r"(" + _NAME + r")\s*(?:;|=)")
_PART_ASSIGN = re.compile(r"^(\s*)assign (" + _NAME + r") ?" + _RANGE + r" = (.*);$")
_CONCAT_ASSIGN = re.compile(r"^(\s*)assign \{ (.*) \} = (.*);$")
_SELECT = re.compile(r"^(" + _NAME + r") ?(?:" + _RANGE + r")?$")
_CONST = re.compile(r"^(\d+)'([hdb])([0-9a-fA-F_]+)$")


def _written(name):
    """``name`` as Verilog source: an escaped name ends at a space."""
    return f"{name} " if name.startswith("\\") else name


def _parse_element(text, widths):
    """One concatenation element as ``(name or None, lsb or value, width)``, or None."""
    text = text.strip()
    if text.startswith("\\") and " " not in text:
        text += " "                # an escaped name ends at white space
    match = _CONST.match(text)
    if match:
        width, base, digits = int(match[1]), match[2], match[3].replace("_", "")
        value = int(digits, {"h": 16, "d": 10, "b": 2}[base])
        return None, value & ((1 << width) - 1), width
    match = _SELECT.match(text)
    if match:
        name = match[1].rstrip()
        if match[2] is None:
            width = widths.get(name)
            return (name, 0, width) if width else None
        hi = int(match[2])
        lo = int(match[3]) if match[3] is not None else hi
        return name, lo, hi - lo + 1
    return None


def _parse_operand(text, widths):
    """A right-hand side as a list of elements, most significant first, or None."""
    text = text.strip()
    if text.startswith("{") and text.endswith("}"):
        body = text[1:-1]
        if "{" in body or "(" in body:
            return None
        elements = [_parse_element(part, widths) for part in body.split(",")]
        return None if None in elements else elements
    element = _parse_element(text, widths)
    return None if element is None else [element]


def _take_low(elements, width):
    """Split the lowest ``width`` bits off ``elements`` (most significant first)."""
    taken = []
    while width:
        name, base, size = elements.pop()
        if size <= width:
            taken.insert(0, (name, base, size))
            width -= size
        else:
            if name is None:
                taken.insert(0, (None, base & ((1 << width) - 1), width))
                elements.append((None, base >> width, size - width))
            else:
                taken.insert(0, (name, base, width))
                elements.append((name, base + width, size - width))
            width = 0
    return taken


def _format(elements, widths):
    merged = []
    for name, base, size in elements:              # most significant first
        if merged:
            last_name, last_base, last_size = merged[-1]
            if name is None and last_name is None:
                merged[-1] = (None, (last_base << size) | base, last_size + size)
                continue
            if name is not None and name == last_name and base + size == last_base:
                merged[-1] = (name, base, last_size + size)
                continue
        merged.append((name, base, size))
    texts = []
    for name, base, size in merged:
        if name is None:
            texts.append(f"{size}'h{base:x}")
            continue
        if base == 0 and size == widths[name]:
            texts.append(_written(name))
        elif size == 1:
            texts.append(f"{_written(name)}[{base}]")
        else:
            texts.append(f"{_written(name)}[{base + size - 1}:{base}]")
    return texts


def _merge_module(lines):
    widths = {}
    for line in lines:
        match = _DECL.match(line)
        if match:
            widths[match[3].rstrip()] = int(match[1]) - int(match[2]) + 1 if match[1] else 1

    pieces = {}          # wire -> [(lsb, width, elements)]
    sites = {}           # wire -> line numbers of its part assignments
    line_targets = {}    # line number -> wires it drives
    spoiled = set()
    indent = "  "
    for number, line in enumerate(lines):
        match = _PART_ASSIGN.match(line)
        if match:
            indent, name = match[1], match[2].rstrip()
            hi = int(match[3])
            lo = int(match[4]) if match[4] is not None else hi
            targets = [(name, lo, hi - lo + 1)]
            rhs = match[5]
        else:
            match = _CONCAT_ASSIGN.match(line)
            if not match:
                continue
            indent = match[1]
            targets = [_parse_element(part, widths) for part in match[2].split(",")]
            rhs = match[3]
            if None in targets or any(t[0] is None for t in targets):
                continue
        elements = _parse_operand(rhs, widths)
        names = {t[0] for t in targets}
        line_targets[number] = names
        for name in names:
            sites.setdefault(name, []).append(number)
        if elements is None or sum(e[2] for e in elements) != sum(t[2] for t in targets):
            spoiled |= names
            continue
        for name, lsb, width in reversed(targets):
            pieces.setdefault(name, []).append((lsb, width, _take_low(elements, width)))

    mergeable = set()
    for name, parts in pieces.items():
        if name in spoiled or name not in widths:
            continue
        parts.sort(key=lambda part: part[0])
        covered = 0
        for lsb, width, _ in parts:
            if lsb != covered:
                break
            covered += width
        if covered == widths[name] == sum(part[1] for part in parts):
            mergeable.add(name)
    # A concatenated left-hand side may name several wires: its line can go only if every
    # wire it drives is merged.
    changed = True
    while changed:
        changed = False
        for name in sorted(mergeable):
            for number in sites[name]:
                if not line_targets[number] <= mergeable:
                    mergeable -= line_targets[number]
                    changed = True
                    break

    replace, drop = {}, set()
    for name in sorted(mergeable):
        elements = [e for _, _, part in reversed(pieces[name]) for e in part]
        first = min(sites[name])
        replace.setdefault(first, []).append(
            f"{indent}assign {_written(name)} = {{ {', '.join(_format(elements, widths))} }};")
        drop.update(sites[name])
    kept = []
    for number, line in enumerate(lines):
        kept += replace.get(number, [])
        if number not in drop:
            kept.append(line)
    return kept, len(mergeable)


def _each_module(text, rewrite):
    """Apply ``rewrite(lines) -> (lines, count)`` to every module of ``text``; return the new
    text and the sum of the counts."""
    out, module, total = [], None, 0
    for line in text.split("\n"):
        if module is None:
            if line.startswith("module "):
                module = [line]
            else:
                out.append(line)
        else:
            module.append(line)
            if line.startswith("endmodule"):
                body, count = rewrite(module)
                out += body
                total += count
                module = None
    return "\n".join(out), total


def merge_part_drivers(text):
    """Return ``text`` (Yosys Verilog) with every wire driven in parts driven whole, and the
    number of wires rewritten."""
    return _each_module(text, _merge_module)


# A field of a structured signal as Amaranth names it: ``\o.data``, ``\beat.lanes[3]``.
_FIELD = re.compile(r"\\[^\s.\[]+[.\[]\S* ")
_FIELD_DECL = re.compile(r"^\s*wire (?:signed )?(?:\[\d+:\d+\] )?(" + _FIELD.pattern + r");$")
_FIELD_ASSIGN = re.compile(r"^\s*assign (" + _FIELD.pattern + r") ?= [^;]*;$")


def _drop_fields(lines):
    uses = {}
    for line in lines:
        for name in _FIELD.findall(line):
            uses[name] = uses.get(name, 0) + 1
    declared = {m[1] for m in map(_FIELD_DECL.match, lines) if m}
    assigned = {m[1] for m in map(_FIELD_ASSIGN.match, lines) if m}
    # Named twice, where it is declared and where it is assigned: nothing reads it.
    unread = {name for name in declared & assigned if uses[name] == 2}
    kept = []
    for line in lines:
        match = _FIELD_DECL.match(line) or _FIELD_ASSIGN.match(line)
        if match and match[1] in unread:
            if line.lstrip().startswith("wire"):
                while kept and kept[-1].lstrip().startswith("(*"):
                    kept.pop()                      # the wire's attributes (enum names)
            continue
        kept.append(line)
    return kept, len(unread)


def drop_field_wires(text):
    """Return ``text`` without the wires Amaranth adds for the fields of structured signals
    (``\\o.data`` beside ``o``) where nothing reads them, and the number dropped.

    Each such wire is a copy of a part of its signal, kept for wave viewers; in Icarus every
    one is a net of its own, updated whenever its signal changes. The signal itself stays, so
    the logic and every other name are unchanged.
    """
    return _each_module(text, _drop_fields)


# A name or a sized constant where it is used, not where it names a port of an instance
# (``.name(``) and not inside a constant (the ``h1`` of ``1'h1``).
_TOKEN = re.compile(r"(?<![.\w$'\\])(?:\d+'[sS]?[bdhoBDHO][0-9a-fA-FxXzZ_]+|" + _NAME + r")")
_ALIAS = re.compile(r"^\s*assign (" + _NAME + r") ?= (" + _NAME + r");$")
_ASSIGN_LHS = re.compile(r"^\s*assign (.*?) ?= ")


def _merge_aliases(lines):
    kinds, widths = {}, {}
    for line in lines:
        match = _DECL.match(line)
        if match:
            name = match[3].rstrip()
            kinds.setdefault(name, set()).add(line.split()[0])
            widths[name] = int(match[1]) - int(match[2]) + 1 if match[1] else 1
    drivers = {}
    for line in lines:
        match = _ASSIGN_LHS.match(line)
        if match:
            for name in _TOKEN.findall(match[1] + " "):
                drivers[name.rstrip()] = drivers.get(name.rstrip(), 0) + 1
    alias_of, alias_lines = {}, set()
    for number, line in enumerate(lines):
        match = _ALIAS.match(line)
        if not match:
            continue
        name, source = match[1].rstrip(), match[2].rstrip()
        if (kinds.get(name) == {"wire"} and drivers[name] == 1 and name != source
                and widths.get(source) == widths[name]):
            alias_of[name] = source
            alias_lines.add(number)

    def root(name):
        while name in alias_of:
            name = alias_of[name]
        return name

    def rename(match):
        name = match[0].rstrip()
        return _written(root(name)) if name in alias_of else match[0]

    kept = []
    for number, line in enumerate(lines):
        if number in alias_lines:
            continue
        match = _DECL.match(line)
        if match and match[3].rstrip() in alias_of:
            while kept and kept[-1].lstrip().startswith("(*"):
                kept.pop()                          # the wire's attributes (enum names)
            continue
        if line.lstrip().startswith("(*") or line.startswith("module "):
            kept.append(line)
        else:
            kept.append(_TOKEN.sub(rename, line))
    return kept, len(alias_of)


def merge_aliases(text):
    """Return ``text`` with every internal wire that is only another name for a net
    (``assign a = b;``, ``a`` a wire of the module driven there alone, as wide as ``b``)
    replaced by that net, and the number of wires merged.

    Amaranth names a value once per component it passes through; Icarus makes each name a net
    of its own and copies the value into it on every change. Ports, and wires driven in any
    other way, keep their names.
    """
    return _each_module(text, _merge_aliases)
