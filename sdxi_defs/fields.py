"""Register definitions as data: fields with access types, registers at offsets.

Pure Python; a register map built from these drives the register file gateware
(``regfile.RegisterFile``), the host driver's encoders and the generated documentation.
"""

import enum
from dataclasses import dataclass, field


__all__ = ["Access", "Field", "Register", "Structure"]


class Access(enum.Enum):
    RO = "ro"        #: read-only; writes ignored
    RW = "rw"        #: read/write storage
    RW1C = "rw1c"    #: read; writing 1 clears, writing 0 has no effect
    WO = "wo"        #: write-only action: a write is an event, reads return 0


@dataclass(frozen=True)
class Field:
    """A register or structure field.

    ``at_most`` and ``within`` bound what an ``RW`` field stores, for values that must stay
    inside what a capability advertises: a number, or a "REGISTER.field" name (a read-only field
    of the same map). A write of a larger value than ``at_most`` stores ``at_most``; bits written
    outside ``within`` (a bit set) store 0. So the register reads back the value in force.
    """
    name: str
    lsb: int
    width: int
    access: Access
    doc: str = ""
    at_most: object = None
    within: object = None

    @property
    def mask(self):
        return ((1 << self.width) - 1) << self.lsb

    def get(self, value):
        return (value >> self.lsb) & ((1 << self.width) - 1)

    def bits(self, value):
        """The field's bits of a sliceable ``value`` (an Amaranth value of the register or
        structure), for the gateware; ``get`` is the same for an int."""
        return value[self.lsb:self.lsb + self.width]

    def bounded(self, value, limit_of):
        """What the field stores when ``value`` is written; ``limit_of(name)`` gives the value
        of a "REGISTER.field" bound."""
        def resolve(bound):
            return limit_of(bound) if isinstance(bound, str) else bound
        if self.at_most is not None:
            value = min(value, resolve(self.at_most))
        if self.within is not None:
            value &= resolve(self.within)
        return value

    def put(self, value):
        if not 0 <= value < (1 << self.width):
            raise ValueError(f"{self.name}: {value:#x} does not fit in {self.width} bits")
        return value << self.lsb


@dataclass(frozen=True)
class Register:
    name: str
    offset: int
    fields: tuple
    spec: str = ""
    doc: str = ""
    _by_name: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.offset % 8:
            raise ValueError(f"{self.name}: offset {self.offset:#x} is not 64-bit aligned")
        used = 0
        for f in self.fields:
            if used & f.mask:
                raise ValueError(f"{self.name}.{f.name} overlaps another field")
            if f.lsb + f.width > 64:
                raise ValueError(f"{self.name}.{f.name} runs past bit 63")
            used |= f.mask
        object.__setattr__(self, "_by_name", {f.name: f for f in self.fields})

    def __getitem__(self, name):
        return self._by_name[name]

    def mask(self, *accesses):
        """Bit mask of the fields with one of ``accesses`` (all defined fields if none given)."""
        m = 0
        for f in self.fields:
            if not accesses or f.access in accesses:
                m |= f.mask
        return m

    def encode(self, **values):
        out = 0
        for name, v in values.items():
            out |= self[name].put(v)
        return out

    def decode(self, value):
        return {f.name: f.get(value) for f in self.fields}


@dataclass(frozen=True)
class Structure:
    """A bit-exact in-memory structure: fields at bit offsets of a little-endian byte string."""
    name: str
    size: int           # bytes
    fields: tuple
    spec: str = ""
    _by_name: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        used = 0
        for f in self.fields:
            if used & f.mask:
                raise ValueError(f"{self.name}.{f.name} overlaps another field")
            if f.lsb + f.width > 8 * self.size:
                raise ValueError(f"{self.name}.{f.name} runs past byte {self.size}")
            used |= f.mask
        object.__setattr__(self, "_by_name", {f.name: f for f in self.fields})

    def __getitem__(self, name):
        return self._by_name[name]

    def encode(self, **values):
        """Return the structure's bytes with the named fields set and everything else 0."""
        out = 0
        for name, v in values.items():
            out |= self[name].put(v)
        return out.to_bytes(self.size, "little")

    def decode(self, raw):
        if len(raw) != self.size:
            raise ValueError(f"{self.name} is {self.size} bytes, not {len(raw)}")
        value = int.from_bytes(raw, "little")
        return {f.name: f.get(value) for f in self.fields}
