"""Watch Device Control through the hard block's configuration management port."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


__all__ = ["DeviceControlMonitor"]


class DeviceControlMonitor(wiring.Component):
    """Reads the PCI Express capability's Device Control register every ``period`` clocks.

    PG213: ``cfg_mgmt_addr`` is a dword address; the pcie4c_uscale_plus PCI Express
    capability sits at 0x70, so Device Control/Status is dword 0x1E. The read is held until
    ``cfg_mgmt_read_write_done``. ``ext_tag`` is Extended Tag Field Enable (Device Control
    bit 8), 0 until the first read completes.

    Members
    -------
    cfg_mgmt_* : the hard block's configuration management port (function 0, reads only)
    ext_tag : Out(1)
    """

    cfg_mgmt_addr: Out(10)
    cfg_mgmt_function_number: Out(8)
    cfg_mgmt_write: Out(1)
    cfg_mgmt_write_data: Out(32)
    cfg_mgmt_byte_enable: Out(4)
    cfg_mgmt_read: Out(1)
    cfg_mgmt_read_data: In(32)
    cfg_mgmt_read_write_done: In(1)
    ext_tag: Out(1)

    def __init__(self, *, devctl_dword=0x1E, period=1024):
        if period < 4:
            raise ValueError("period must be at least 4 clocks")
        self._dword = devctl_dword
        self._period = period
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        wait = Signal(range(self._period), init=0)
        m.d.comb += [self.cfg_mgmt_addr.eq(self._dword), self.cfg_mgmt_byte_enable.eq(0xF)]
        with m.FSM():
            with m.State("WAIT"):
                m.d.sync += wait.eq(wait - 1)
                with m.If(wait == 0):
                    m.d.sync += self.cfg_mgmt_read.eq(1)
                    m.next = "READ"
            with m.State("READ"):
                with m.If(self.cfg_mgmt_read_write_done):
                    m.d.sync += [
                        self.cfg_mgmt_read.eq(0),
                        self.ext_tag.eq(self.cfg_mgmt_read_data[8]),
                        wait.eq(self._period - 1),
                    ]
                    m.next = "WAIT"
        return m
