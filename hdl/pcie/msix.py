"""MSI-X table, pending-bit array and message sender for the hard block's external-table mode."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..common.priority import lowest_set
from ..common.regbus import RegisterBus


__all__ = ["MsixController"]


class MsixController(wiring.Component):
    """MSI-X with the table and PBA in a BAR served by the engine (PCIe Base Spec 6.8.2).

    The table holds ``vectors`` entries of 16 bytes (message address, message data, vector
    control with the mask bit, set at reset); the PBA holds one pending bit per vector and is
    read-only. A vector raised while MSI-X is enabled becomes pending; a pending vector that
    neither its own mask nor the function mask holds back is sent through the hard block
    (``cfg_interrupt_msix_*``: address and data held, ``int`` pulsed, then ``sent`` or ``fail``),
    lowest vector first; a failed send stays pending and is retried. Raises while MSI-X is
    disabled are dropped.

    Members
    -------
    bus : In(RegisterBus)
        Accesses to the table and PBA, at the BAR's qword addresses.
    raise_vectors : In(vectors)
        One-clock pulse per bit: raise that vector. Several may be raised at once.
    msix_enable, msix_function_mask : In(1)
        MSI-X Enable and Function Mask of the MSI-X capability (from the hard block).
    msix_address, msix_data, msix_int : Out(64), Out(32), Out(1)
    msix_sent, msix_fail : In(1)
        The hard block's handshake.
    may_send : In(1), 1 unless driven
        A send may start (the hard block's interrupt port is this function's): several
        functions' controllers take turns on it.
    busy : Out(1)
        A send starts in this clock or has not been answered yet.
    """

    def __init__(self, *, vectors, table_offset, pba_offset, addr_width):
        if not 1 <= vectors <= 2048:
            raise ValueError(f"MSI-X has 1 to 2048 vectors, not {vectors}")
        if table_offset % 4096 or pba_offset % 4096:
            raise ValueError("the MSI-X table and PBA must be 4 KiB aligned")
        if table_offset + 16 * vectors > pba_offset:
            raise ValueError("the MSI-X table overlaps the PBA")
        self._vectors = vectors
        self._table_qword = table_offset >> 3
        self._pba_qword = pba_offset >> 3
        super().__init__({
            "bus": In(RegisterBus(addr_width)),
            "raise_vectors": In(vectors),
            "msix_enable": In(1),
            "msix_function_mask": In(1),
            "msix_address": Out(64),
            "msix_data": Out(32),
            "msix_int": Out(1),
            "msix_sent": In(1),
            "msix_fail": In(1),
            "may_send": In(1, init=1),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        n = self._vectors
        vec_bits = max(1, (n - 1).bit_length())
        pba_qwords = (n + 63) // 64

        m.submodules.addresses = addresses = Memory(shape=64, depth=n, init=[])
        m.submodules.datas = datas = Memory(shape=32, depth=n, init=[])
        host_addr = addresses.read_port(domain="comb")
        host_data = datas.read_port(domain="comb")
        send_addr = addresses.read_port(domain="comb")
        send_data = datas.read_port(domain="comb")
        addr_w = addresses.write_port(granularity=8)
        data_w = datas.write_port(granularity=8)
        masked = Signal(n, init=(1 << n) - 1)   # vector control bit 0, set at reset
        pending = Signal(n)

        # ---- host side: table and PBA decode ---------------------------------------------------
        table_rel = Signal(len(bus.addr))
        pba_rel = Signal(len(bus.addr))
        m.d.comb += [table_rel.eq(bus.addr - self._table_qword), pba_rel.eq(bus.addr - self._pba_qword)]
        in_table = (bus.addr >= self._table_qword) & (bus.addr < self._table_qword + 2 * n)
        in_pba = (bus.addr >= self._pba_qword) & (bus.addr < self._pba_qword + pba_qwords)
        vector = table_rel[1:1 + vec_bits]
        control_qword = table_rel[0]

        m.d.comb += [
            host_addr.addr.eq(vector), host_data.addr.eq(vector),
            addr_w.addr.eq(vector), data_w.addr.eq(vector),
            addr_w.data.eq(bus.w_data), data_w.data.eq(bus.w_data[:32]),
            bus.w_hit.eq(in_table),   # the PBA is read-only: writes to it are dropped
        ]
        with m.If(bus.w_stb & in_table):
            with m.If(~control_qword):
                m.d.comb += addr_w.en.eq(bus.w_be)
            with m.Else():
                m.d.comb += data_w.en.eq(bus.w_be[:4])
                with m.If(bus.w_be[4]):
                    m.d.sync += masked.bit_select(vector, 1).eq(bus.w_data[32])

        with m.If(bus.r_stb):
            with m.If(in_table & ~control_qword):
                m.d.sync += bus.r_data.eq(host_addr.data)
            with m.Elif(in_table):
                m.d.sync += bus.r_data.eq(Cat(host_data.data, masked.bit_select(vector, 1)))
            with m.Elif(in_pba):
                padded = Cat(pending, Signal(64 * pba_qwords - n))
                m.d.sync += bus.r_data.eq(padded.word_select(pba_rel[:max(1, (pba_qwords - 1).bit_length())], 64))
            with m.Else():
                m.d.sync += bus.r_data.eq(0)

        # ---- sender ----------------------------------------------------------------------
        sendable = Signal(n)
        m.d.comb += sendable.eq(Mux(self.msix_function_mask, 0, pending & ~masked))
        lowest, _ = lowest_set(m, sendable, name="sendable")
        current = Signal(vec_bits)
        m.d.comb += [send_addr.addr.eq(lowest), send_data.addr.eq(lowest)]

        cleared = Signal(n)
        retried = Signal(n)
        raised = Mux(self.msix_enable, self.raise_vectors, 0)
        m.d.sync += pending.eq((pending & ~cleared) | raised | retried)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.msix_enable & sendable.any() & self.may_send):
                    m.d.comb += [cleared.eq(1 << lowest), self.busy.eq(1)]
                    m.d.sync += [
                        current.eq(lowest),
                        self.msix_address.eq(send_addr.data),
                        self.msix_data.eq(send_data.data),
                        self.msix_int.eq(1),
                    ]
                    m.next = "SEND"
            with m.State("SEND"):
                # Outputs to the hard block come straight from registers.
                m.d.comb += self.busy.eq(1)
                m.d.sync += self.msix_int.eq(0)
                m.next = "WAIT"
            with m.State("WAIT"):
                m.d.comb += self.busy.eq(~self.msix_sent & ~self.msix_fail)
                with m.If(self.msix_sent):
                    m.next = "IDLE"
                with m.Elif(self.msix_fail):
                    m.d.comb += retried.eq(1 << current)
                    m.next = "IDLE"
        return m
