"""The schema of ``sdxi_engine.json``, the file the export writes beside ``sdxi_engine.v``.

The simulation harness and the Vivado scripts build their side of the PCIe hard block from it
(DESIGN.md section 2), so they check it with ``validate`` before they use it. Numbers that are
register values or identities are hexadecimal strings ("0x..."); sizes and counts are numbers.
More keys may be added; these keep their names and meaning.
"""

__all__ = ["SCHEMA", "MetadataError", "Hex", "OneOf", "validate"]


class Hex:
    """A hexadecimal string such as "0x10ee"."""


class OneOf:
    def __init__(self, *values):
        self.values = values

    def __repr__(self):
        return " or ".join(repr(v) for v in self.values)


_BAR = {"index": int, "log2_size": int, "is_64bit": bool, "prefetchable": bool}

#: Key -> type (``int``, ``str``, ``bool``, ``Hex``, ``OneOf``), nested object or [item schema].
SCHEMA = {
    "top": str,
    "data_width": OneOf(256, 512),
    "build_id": Hex,
    "pcie": {
        "generation": int,
        "lanes": int,
        "user_clk_mhz": int,
        "alignment": OneOf("dword"),
        "client_tag": bool,
        "straddle": {"cq": bool, "cc": bool, "rq": bool, "rc": OneOf(0, 2, 4)},
        "extended_tag_supported": bool,
        "max_payload_supported": int,
        "completion_credit": {"headers": int, "bytes": int},
        "tuser_widths": {"cq": int, "cc": int, "rq": int, "rc": int},
    },
    "bars": [_BAR],
    "msix": {
        "mode": OneOf("external"),
        "vectors": int,
        "table_bar": int, "table_offset": Hex,
        "pba_bar": int, "pba_offset": Hex,
    },
    "pci": {"vendor_id": Hex, "device_id": Hex, "class_code": Hex},
    "sdxi": {
        "version": str,
        "cap0": Hex,
        "cap1": Hex,
        "contexts": int,
        "doorbell_stride": int,
        "functions": int,
    },
}


class MetadataError(ValueError):
    """The metadata does not follow ``SCHEMA``; the message names the key."""


def validate(doc, schema=SCHEMA, path="sdxi_engine.json"):
    """Raise ``MetadataError`` unless ``doc`` (the parsed JSON) follows ``schema``; return it."""
    if isinstance(schema, dict):
        if not isinstance(doc, dict):
            raise MetadataError(f"{path}: an object expected, not {doc!r}")
        for key, sub in schema.items():
            if key not in doc:
                raise MetadataError(f"{path}: key '{key}' missing")
            validate(doc[key], sub, f"{path}.{key}")
    elif isinstance(schema, list):
        if not isinstance(doc, list) or not doc:
            raise MetadataError(f"{path}: a non-empty list expected, not {doc!r}")
        for i, item in enumerate(doc):
            validate(item, schema[0], f"{path}[{i}]")
    elif isinstance(schema, OneOf):
        if not any(type(doc) is type(v) and doc == v for v in schema.values):
            raise MetadataError(f"{path}: {schema!r} expected, not {doc!r}")
    elif schema is Hex:
        if not (isinstance(doc, str) and doc.startswith("0x") and _is_hex(doc[2:])):
            raise MetadataError(f"{path}: a hexadecimal string (0x...) expected, not {doc!r}")
    elif schema is int:
        if not isinstance(doc, int) or isinstance(doc, bool):
            raise MetadataError(f"{path}: an integer expected, not {doc!r}")
    elif not isinstance(doc, schema):
        raise MetadataError(f"{path}: {schema.__name__} expected, not {doc!r}")
    return doc


def _is_hex(digits):
    try:
        int(digits, 16)
    except ValueError:
        return False
    return True
