"""Internal streams between the DMA engines and the hard-block shims (docs/dma.md)."""

from amaranth.lib import data, stream

from ..config import FUNCTION_BITS
from .layouts import RcDescriptor, RqDescriptor


__all__ = ["FUNCTION_BITS", "RqTlpBeat", "CplChunk", "rq_tlp_stream", "cpl_chunk_stream"]


class RqTlpBeat(data.StructLayout):
    """One beat of a requester TLP on its way to the RQ framer.

    A TLP is a run of beats from ``first`` to ``last``. ``desc``, ``first_be``, ``last_be`` and
    ``seq_num`` are read on the first beat. ``data`` holds payload only, packed from lane 0 (the
    framer inserts the descriptor); ``keep`` marks the payload dwords of the beat, all lanes
    on every beat but the last. A read request is one beat with ``keep`` 0.
    """

    def __init__(self, data_width):
        super().__init__({
            "desc": RqDescriptor,
            "first_be": 4,
            "last_be": 4,
            "seq_num": 6,
            "data": data_width,
            "keep": data_width // 32,
            "first": 1,
            "last": 1,
        })


class CplChunk(data.StructLayout):
    """Part of one completion's payload, realigned to the address it belongs to.

    The RC parser cuts every completion into chunks, one per ``data_width``-byte address window
    its payload touches, in address order. Lane *i* of ``data`` is the dword at address
    ``window_base + 4*i``; ``keep`` marks the dwords of this completion in the window.
    ``window`` is the window's address bits 11:log2(data_width/8), from the completion's
    ``lower_address``. ``desc`` repeats the completion's descriptor on every chunk. A completion
    without payload (an error) is one chunk with ``keep`` 0. ``first``/``last`` frame a completion.
    """

    def __init__(self, data_width):
        window_bits = 12 - (data_width // 8).bit_length() + 1
        super().__init__({
            "desc": RcDescriptor,
            "data": data_width,
            "keep": data_width // 32,
            "window": window_bits,
            "first": 1,
            "last": 1,
        })


def rq_tlp_stream(data_width):
    return stream.Signature(RqTlpBeat(data_width))


def cpl_chunk_stream(data_width):
    return stream.Signature(CplChunk(data_width))
