"""Host driver for the SDXI engine: brings the function up the way Linux's SDXI driver does.

Runs against any ``Transport``: the cocotb one (``sw.cocotb_transport``) drives the simulated
card; a VFIO/uio one would drive a real card with the same code.
"""

from .device import SdxiCard, Timing
from .errors import ErrorLogEntry, ErrorLogLoss, SdxiError, SdxiOpError
from .transport import DmaBuffer, Transport

__all__ = ["SdxiCard", "Timing", "SdxiError", "SdxiOpError", "ErrorLogEntry", "ErrorLogLoss",
           "DmaBuffer", "Transport"]
