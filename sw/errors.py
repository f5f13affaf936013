"""What the driver raises, and the error-log entries it reads (sdxi-spec.md 3.10)."""

import enum
from dataclasses import dataclass

from sdxi_defs.errors import ErrClass, ErrReaction, ErrStep, ErrSubStep


__all__ = ["SdxiError", "SdxiOpError", "ErrorLogEntry", "ErrorLogLoss"]


class SdxiError(Exception):
    """The function did not do what the driver asked (state, time-out, version)."""


@dataclass(frozen=True)
class ErrorLogEntry:
    """One error-log header entry, decoded: its ERRLOG_HD_ENT fields by name, also readable as
    attributes (``entry.step``, ``entry.err_class``)."""
    index: int
    fields: dict

    def __getattr__(self, name):
        try:
            return self.fields[name]
        except KeyError:
            raise AttributeError(name) from None

    def __str__(self):
        f = self.fields

        def name(enum_type, value):
            try:
                return enum_type(value).name
            except ValueError:
                return f"{value:#x}"

        parts = [f"error log #{self.index}: step {name(ErrStep, f['step'])}",
                 name(ErrSubStep, f["sub_step"]), f"class {name(ErrClass, f['err_class'])}",
                 f"reaction {name(ErrReaction, f['re'])}"]
        if f["cv"]:
            parts.append(f"context {f['cxt_num']}")
        if f["div"]:
            parts.append(f"descriptor {f['dsc_index']}")
        if f["bv"]:
            parts.append(f"buffer {f['buf']}")
        return ", ".join(parts)


class ErrorLogLoss(enum.Enum):
    """Why entries may be missing from the error log: the ERR_STS bit that says so, and what
    it means (SDXI 1.0 Table 9-12)."""
    OVERFLOW = ("ovf", "the error log overflowed: entries were lost")
    WRITE_FAILED = ("err", "the function failed to write an error-log entry")

    def __init__(self, field, meaning):
        self.field = field
        self.meaning = meaning

    def __str__(self):
        return self.meaning


class SdxiOpError(Exception):
    """An operation completed with its CST error bit set; ``log`` holds the error-log entries
    read when it was seen (``ErrorLogEntry``); ``lost`` (``ErrorLogLoss``) says why some may be
    missing."""

    def __init__(self, message, log=(), lost=()):
        super().__init__(message + "".join(f"\n  {e}" for e in log)
                         + "".join(f"\n  ({why})" for why in lost))
        self.log = list(log)
        self.lost = list(lost)
