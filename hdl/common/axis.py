"""AXI-Stream as an Amaranth stream: framing and side bands live in the payload."""

from amaranth.lib import data, stream


__all__ = ["AxiStreamPayload", "axi_stream"]


class AxiStreamPayload(data.StructLayout):
    """One beat of a dword-lane AXI-Stream (``tdata``, ``tkeep`` per dword, ``tlast``, ``tuser``).

    The UltraScale+ PCIe interfaces qualify data per dword, so ``keep`` has one bit per 32 bits.
    """

    def __init__(self, data_width, user_width):
        if data_width % 32:
            raise ValueError(f"data width must be a multiple of 32, not {data_width}")
        super().__init__({
            "data": data_width,
            "keep": data_width // 32,
            "last": 1,
            "user": user_width,
        })


def axi_stream(data_width, user_width):
    """Stream signature of an AXI-Stream with ``tvalid``/``tready`` as ``valid``/``ready``."""
    return stream.Signature(AxiStreamPayload(data_width, user_width))
