"""SDXI context engine: activation, context state, doorbells, descriptor fetch, decode,
execution, completion and the error log (docs/context-engine.md)."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..common.priority import lowest_set, round_robin
from ..pcie.dma_ram import RamReadPairSignature, RamWriteSignature
from ..pcie.dma_read import ReadRequest, ReadStatus
from ..pcie.dma_write import WriteRequest, WriteStatus
from . import descriptors as dsc
from .data_mover import IMAGE, MoverCommand, MoverOp, MoverResult, ram_bytes
from .descriptors import (AdminOp, DmaBaseOp, ErrClass, ErrReaction, ErrStep, ErrSubStep,
                          IntrOp, OpGroup, SyncFilter, VendorOp)
from .structures import (AKEY_ENT, CXT_CTL, CXT_L1_ENT, CXT_L2_ENT, CXT_STS, CxtState,
                         ERRLOG_HD_ENT)


__all__ = ["ContextEngine", "RamLayout", "BATCH"]

BATCH = 8                   #: descriptors fetched per ring read


def _align(value, alignment):
    return (value + alignment - 1) // alignment * alignment


class RamLayout:
    """Where the context engine keeps things in the DMA RAM (byte addresses, row-aligned)."""

    def __init__(self, row_bytes):
        self.row = row_bytes
        self.slots = 0x0000                        # data mover read slots
        self.fill = _align(ram_bytes(), 64)        # fill image, IMAGE bytes
        self.desc = self.fill + IMAGE              # BATCH descriptors of the ring
        self.struct = self.desc + 64 * BATCH       # one structure read (L2, L1, CXT_CTL, ...)
        self.stage = self.struct + 128             # what the engine writes to the host
        self.bytes = self.stage + 0xC0
        # Inside the staging area:
        self.zero = self.stage + 0x00         # 8 zero bytes: CST signal = 0
        self.flags_ok = self.stage + 0x08     # CST flags dword with er = 0
        self.flags_err = self.stage + 0x0C    # CST flags dword with er = 1
        self.states = self.stage + 0x10       # byte i holds i: a CXT_STS.state value
        self.read_index = self.stage + 0x40   # CXT_STS.read_index being written back
        self.errlog = self.stage + 0x80       # error log entry being written

    def constants_row(self):
        """The first staging row's bytes."""
        raw = bytearray(self.row)
        raw[0x0C:0x10] = (1 << 31).to_bytes(4, "little")      # er
        raw[0x10:0x20] = bytes(range(16))
        return int.from_bytes(raw, "little")


def _field(value, struct, name):
    f = struct[name]
    return value[f.lsb:f.lsb + f.width]


class _CxtEntry(data.StructLayout):
    """A context as the engine keeps it on chip."""

    def __init__(self):
        super().__init__({
            "ring": 64, "ring_sz": 32, "sts": 64, "wi_ptr": 64, "akey": 64, "akey_sz": 4,
            "max_buffer": 4, "opb": 32, "qos": 2, "read_index": 64, "slot": 32, "state": 4,
        })


class ContextEngine(wiring.Component):
    """Runs the contexts of one SDXI function (docs/context-engine.md).

    One descriptor executes at a time; data moves through the ``DataMover`` (``mover``), and
    structures, completions and error-log entries through one read and one write client of the
    DMA engines and the RAM's side ports.

    Members
    -------
    rd_req, rd_status, wr_req, wr_status : control read and write clients
    mover_cmd, mover_result, mover_abort : the data mover
    ram_wr, ram_wr_taken, ram_rd : the DMA RAM's side ports
    pending, take_valid, take_cxt : doorbells
    activate, activate_done, activate_ok, soft_stop, hard_stop, quiesced, fatal : function FSM
    ctl2, cxt_l2, err_ctl, err_cfg, err_wrt, err_rd, err_sts : In(64), register values
    err_wrt_load, err_wrt_value, err_sts_set : error-log register updates
    raise_vectors : Out(vectors), MSI-X raises
    """

    def __init__(self, *, config, ram_addr_bits, row_bytes):
        self._cfg = config
        self._ram_bits = ram_addr_bits
        self._lay = RamLayout(row_bytes)
        n = config.contexts
        super().__init__({
            "rd_req": Out(stream.Signature(ReadRequest(ram_addr_bits))),
            "rd_status": In(stream.Signature(ReadStatus())),
            "wr_req": Out(stream.Signature(WriteRequest(ram_addr_bits))),
            "wr_status": In(stream.Signature(WriteStatus())),
            "mover_cmd": Out(stream.Signature(MoverCommand(ram_addr_bits))),
            "mover_result": In(stream.Signature(MoverResult())),
            "mover_abort": Out(1),
            "ram_wr": Out(RamWriteSignature(config.data_width, (1 << ram_addr_bits) * 8 //
                                            config.data_width)),
            "ram_wr_taken": In(1),
            "ram_rd": Out(RamReadPairSignature(config.data_width, (1 << ram_addr_bits) * 8 //
                                               config.data_width)),
            "pending": In(n),
            "take_valid": Out(1),
            "take_cxt": Out(range(n)),
            "activate": In(1), "activate_done": Out(1), "activate_ok": Out(1),
            "soft_stop": In(1), "hard_stop": In(1), "quiesced": Out(1), "fatal": Out(1),
            "ctl2": In(64), "cxt_l2": In(64), "err_ctl": In(64), "err_cfg": In(64),
            "err_wrt": In(64), "err_rd": In(64), "err_sts": In(64),
            "err_wrt_load": Out(1), "err_wrt_value": Out(64), "err_sts_set": Out(64),
            "raise_vectors": Out(config.msix_vectors),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        lay = self._lay
        row = lay.row
        w = cfg.data_width
        n = cfg.contexts
        cxt_bits = (n - 1).bit_length()

        # ---- context table and per-context flags --------------------------------------------
        m.submodules.table = table = Memory(shape=_CxtEntry(), depth=n, init=[])
        t_rd = table.read_port(domain="sync")
        t_wr = table.write_port()
        cx = Signal(_CxtEntry())              # the context being worked on
        cur = Signal(range(n))
        m.d.comb += [t_wr.addr.eq(cur), t_wr.data.eq(cx), t_rd.addr.eq(cur)]
        running = Signal(n)
        work = Signal(n)                      # may have descriptors beyond the last batch
        stale = Signal(n)                     # cached structures to re-read before use
        known = Signal(n)                     # has a table entry (started since activation)
        activated = Signal()
        last_served = Signal(range(n))

        # ---- control reads and writes ---------------------------------------------------------
        rq = Signal(ReadRequest(self._ram_bits))
        wq = Signal(WriteRequest(self._ram_bits))
        m.d.comb += [self.rd_req.payload.eq(rq), self.wr_req.payload.eq(wq),
                     self.rd_status.ready.eq(1), self.wr_status.ready.eq(1)]

        def start_read(state, addr, length, ram=None):
            m.d.sync += [rq.addr.eq(addr), rq.length.eq(length),
                         rq.ram_addr.eq(lay.struct + (addr & (row - 1)) if ram is None else ram)]
            m.next = state

        def start_write(state, addr, length, ram):
            m.d.sync += [wq.addr.eq(addr), wq.length.eq(length), wq.ram_addr.eq(ram)]
            m.next = state

        def read_states(state, ok, fail):
            """Issue ``rq`` and wait; then ``ok()`` or ``fail(error)``."""
            with m.State(state):
                m.d.comb += self.rd_req.valid.eq(1)
                with m.If(self.rd_req.ready):
                    m.next = state + "_WAIT"
            with m.State(state + "_WAIT"):
                with m.If(self.rd_status.valid):
                    with m.If(self.rd_status.payload.error == 0):
                        ok()
                    with m.Else():
                        fail(ErrClass.READ_UR - 1 + self.rd_status.payload.error)

        def write_states(state, ok, fail):
            with m.State(state):
                m.d.comb += self.wr_req.valid.eq(1)
                with m.If(self.wr_req.ready):
                    m.next = state + "_WAIT"
            with m.State(state + "_WAIT"):
                with m.If(self.wr_status.valid):
                    with m.If(self.wr_status.payload.error == 0):
                        ok()
                    with m.Else():
                        fail(ErrClass.BUS_MASTER_OFF)

        # The structure just read, shifted down to its first byte.
        struct_off = Signal(range(row))
        with m.If(self.rd_req.valid & self.rd_req.ready):
            m.d.sync += struct_off.eq(rq.addr[:(row - 1).bit_length()] >> 3)
        landed = Signal(512)
        pair = Cat(self.ram_rd.lo, self.ram_rd.hi)
        m.d.comb += landed.eq((pair >> (struct_off * 64))[:512])

        def side_read(byte_addr):
            m.d.comb += [self.ram_rd.en.eq(1), self.ram_rd.row.eq(byte_addr // row)]

        # ---- error reporting ----------------------------------------------------------------------
        err = Signal(ERRLOG_HD_ENT.size * 8)     # the entry, assembled field by field
        err_kind = Signal(2)                     # what follows the log entry
        KIND_CONTEXT, KIND_FUNCTION = 0, 1
        fn_fatal = Signal()

        def report(kind, step, sub_step, err_class, *, buf=None, index=True, reaction):
            def put(name, value):
                f = ERRLOG_HD_ENT[name]
                return err[f.lsb:f.lsb + f.width].eq(value)
            m.d.sync += [
                err.eq(0), err_kind.eq(kind),
                put("vl", 1), put("type", dsc.ERRLOG_TYPE), put("step", step),
                put("sub_step", sub_step), put("re", reaction), put("err_class", err_class),
                put("cv", 1), put("cxt_num", tgt if kind == KIND_FUNCTION else cur),
            ]
            if index:
                m.d.sync += [put("div", 1), put("dsc_index", cx.read_index)]
            if buf is not None:
                m.d.sync += [put("bv", 1), put("buf", buf)]
            m.next = "LOG"

        # ---- current descriptor -----------------------------------------------------------------
        d = Signal(512)
        batch = Signal(range(BATCH + 1))       # descriptors in the batch
        k = Signal(range(BATCH + 1))           # the one being executed
        completed = Signal()                   # the read index moved in this turn
        write_index = Signal(64)
        turns = Signal(3)                      # batches left in this turn (qos weight)
        tgt = Signal(16)                       # target of an activation or admin operation
        tgt_end = Signal(16)
        mode = Signal(2)
        MODE_ACTIVATE, MODE_START, MODE_REFRESH = 0, 1, 2
        csb = Signal(64)
        has_cst = Signal()
        failed = Signal()                      # CST er
        intr_after = Signal()
        vector = Signal(11)
        keys = Signal(2)                       # AKeys still to check
        key_idx = Signal(16)
        key_idx1 = Signal(16)
        key_buf = Signal()
        key_intr = Signal()
        mover = Signal(MoverCommand(self._ram_bits))
        fill_rows = Signal(range(IMAGE // row + 1))
        fill_row = Signal(range(IMAGE // row + 1))

        def g(struct, name):
            return _field(d, struct, name)

        ctl2_max_buffer = self.ctl2[0:4]
        ctl2_max_akey_sz = self.ctl2[12:16]
        ctl2_max_cxt = self.ctl2[16:32]
        ctl2_opb = self.ctl2[32:64]
        enabled = Signal(32)
        m.d.comb += enabled.eq(cx.opb & ctl2_opb & cfg.opb_000_cap)
        max_buffer = Signal(4)
        m.d.comb += max_buffer.eq(Mux(cx.max_buffer < ctl2_max_buffer, cx.max_buffer,
                                      ctl2_max_buffer))

        sched, sched_valid = round_robin(m, running & (self.pending | work), last_served,
                                         name="sched")
        stopping = Signal()
        m.d.comb += stopping.eq(self.soft_stop | self.hard_stop)
        first_running, any_running = lowest_set(m, running, name="first_running")
        m.d.comb += self.mover_abort.eq(self.hard_stop)

        errlog_entries = Signal(64)
        m.d.comb += errlog_entries.eq(Const(32, 64) << self.err_cfg[1:6])
        err_slot = Signal(64)
        m.d.comb += err_slot.eq(self.err_wrt & (errlog_entries - 1))
        log_base = Signal(64)
        m.d.comb += log_base.eq(Cat(Const(0, 12), self.err_cfg[12:64]) + (err_slot << 6))

        sts_before = Signal()
        mod_count = Signal(7)
        remainder = Signal(33)

        with m.FSM(init="IDLE"):
            # ---- scheduling --------------------------------------------------------------------
            with m.State("IDLE"):
                with m.If(self.activate & ~activated):
                    m.d.sync += [tgt.eq(0), tgt_end.eq(0), mode.eq(MODE_ACTIVATE), cur.eq(0),
                                 known.eq(0), stale.eq(0), work.eq(0), running.eq(0)]
                    m.next = "CONSTANTS"
                with m.Elif(stopping):
                    with m.If(any_running):
                        m.d.sync += cur.eq(first_running)
                        m.next = "FN_STOP_LOAD"
                    with m.Else():
                        m.d.comb += self.quiesced.eq(1)
                        m.d.sync += activated.eq(0)
                with m.Elif(activated & sched_valid):
                    m.d.sync += [cur.eq(sched), last_served.eq(sched)]
                    m.next = "LOAD"

            with m.State("FN_STOP_LOAD"):
                m.next = "FN_STOP_LATCH"
            with m.State("FN_STOP_LATCH"):
                m.d.sync += cx.eq(t_rd.data)
                m.next = "FN_STOP_ENTRY"
            with m.State("FN_STOP_ENTRY"):
                m.d.sync += [cx.state.eq(CxtState.STOP_FN), running.bit_select(cur, 1).eq(0),
                             work.bit_select(cur, 1).eq(0)]
                start_write("FN_STOP_STATE", cx.sts, 1, lay.states + CxtState.STOP_FN)
            write_states("FN_STOP_STATE", lambda: setattr(m, "next", "FN_STOP_SAVE"),
                         lambda e: setattr(m, "next", "FN_STOP_SAVE"))
            with m.State("FN_STOP_SAVE"):
                m.d.comb += t_wr.en.eq(1)
                m.next = "IDLE"

            # ---- activation: constants, then the admin context's tables -------------------------
            with m.State("CONSTANTS"):
                m.d.comb += [self.ram_wr.row.eq(lay.stage // row),
                             self.ram_wr.data.eq(lay.constants_row()),
                             self.ram_wr.en.eq((1 << row) - 1)]
                with m.If(self.ram_wr_taken):
                    m.next = "FETCH_L2"
            # (FETCH_* below starts with the L2 entry of ``tgt``.)

            with m.State("FETCH_L2"):
                start_read("FETCH_L2_RD",
                           Cat(Const(0, 12), self.cxt_l2[12:64]) + (tgt[7:16] << 3), 8)

            def table_error(step, sub_step, err_class):
                report(KIND_FUNCTION, step, sub_step, err_class, index=False,
                       reaction=ErrReaction.FUNCTION_STOPPED)

            read_states("FETCH_L2_RD", lambda: setattr(m, "next", "FETCH_L2_SIDE"),
                        lambda e: table_error(ErrStep.CXT_L2, ErrSubStep.DAF, e))
            with m.State("FETCH_L2_SIDE"):
                side_read(lay.struct)
                m.next = "FETCH_L2_CHECK"
            with m.State("FETCH_L2_CHECK"):
                with m.If(~_field(landed, CXT_L2_ENT, "vl")):
                    table_error(ErrStep.CXT_L2, ErrSubStep.DVF, ErrClass.INVALID_ENTRY)
                with m.Else():
                    start_read("FETCH_L1_RD",
                               Cat(Const(0, 12), _field(landed, CXT_L2_ENT, "lv01_ptr")) +
                               (tgt[0:7] << 5), 32)

            read_states("FETCH_L1_RD", lambda: setattr(m, "next", "FETCH_L1_SIDE"),
                        lambda e: table_error(ErrStep.CXT_L1, ErrSubStep.DAF, e))
            with m.State("FETCH_L1_SIDE"):
                side_read(lay.struct)
                m.next = "FETCH_L1_CHECK"
            with m.State("FETCH_L1_CHECK"):
                l1 = landed
                with m.If(~_field(l1, CXT_L1_ENT, "vl")):
                    table_error(ErrStep.CXT_L1, ErrSubStep.DVF, ErrClass.INVALID_ENTRY)
                with m.Elif(_field(l1, CXT_L1_ENT, "pv") |
                            (_field(l1, CXT_L1_ENT, "akey_sz") > ctl2_max_akey_sz) |
                            (_field(l1, CXT_L1_ENT, "akey_sz") > cfg.max_akey_sz)):
                    table_error(ErrStep.CXT_L1, ErrSubStep.DVF, ErrClass.BAD_FIELD)
                with m.Else():
                    m.d.sync += [
                        cx.akey.eq(Cat(Const(0, 12), _field(l1, CXT_L1_ENT, "akey_ptr"))),
                        cx.akey_sz.eq(_field(l1, CXT_L1_ENT, "akey_sz")),
                        cx.max_buffer.eq(_field(l1, CXT_L1_ENT, "max_buffer")),
                        cx.opb.eq(_field(l1, CXT_L1_ENT, "opb_000_enb")),
                    ]
                    start_read("FETCH_CTL_RD",
                               Cat(Const(0, 6), _field(l1, CXT_L1_ENT, "cxt_ctl_ptr")), 64)

            read_states("FETCH_CTL_RD", lambda: setattr(m, "next", "FETCH_CTL_SIDE"),
                        lambda e: table_error(ErrStep.CXT_CTL, ErrSubStep.DAF, e))
            with m.State("FETCH_CTL_SIDE"):
                side_read(lay.struct)
                m.next = "FETCH_CTL_CHECK"
            with m.State("FETCH_CTL_CHECK"):
                c = landed
                ring_sz = _field(c, CXT_CTL, "ds_ring_sz")
                with m.If(~_field(c, CXT_CTL, "vl")):
                    table_error(ErrStep.CXT_CTL, ErrSubStep.DVF, ErrClass.INVALID_ENTRY)
                with m.Elif((ring_sz < 1024) | (ring_sz > (1024 << cfg.max_ds_ring_sz))):
                    table_error(ErrStep.CXT_CTL, ErrSubStep.DVF, ErrClass.BAD_FIELD)
                with m.Else():
                    m.d.sync += [
                        cx.ring.eq(Cat(Const(0, 6), _field(c, CXT_CTL, "ds_ring_ptr"))),
                        cx.ring_sz.eq(ring_sz),
                        cx.sts.eq(Cat(Const(0, 4), _field(c, CXT_CTL, "cxt_sts_ptr"))),
                        cx.wi_ptr.eq(Cat(Const(0, 3), _field(c, CXT_CTL, "write_index_ptr"))),
                        cx.qos.eq(_field(c, CXT_CTL, "qos")),
                    ]
                    with m.If(mode == MODE_REFRESH):
                        m.d.sync += stale.bit_select(cur, 1).eq(0)
                        m.next = "TAKE"
                    with m.Else():
                        start_read("FETCH_STS_RD",
                                   Cat(Const(0, 4), _field(c, CXT_CTL, "cxt_sts_ptr")), 16)

            read_states("FETCH_STS_RD", lambda: setattr(m, "next", "FETCH_STS_SIDE"),
                        lambda e: table_error(ErrStep.CXT_STS, ErrSubStep.DAF, e))
            with m.State("FETCH_STS_SIDE"):
                side_read(lay.struct)
                m.next = "FETCH_STS_CHECK"
            with m.State("FETCH_STS_CHECK"):
                m.d.sync += [cx.read_index.eq(_field(landed, CXT_STS, "read_index")),
                             cx.state.eq(_field(landed, CXT_STS, "state")),
                             mod_count.eq(64), remainder.eq(0)]
                m.next = "MODULO"
            with m.State("MODULO"):
                # slot = read_index mod ring_sz, one quotient bit per clock.
                shifted = Cat(cx.read_index.bit_select((mod_count - 1)[:6], 1), remainder[:32])
                with m.If(mod_count == 0):
                    m.d.sync += cx.slot.eq(remainder)
                    m.next = "FETCH_DONE"
                with m.Else():
                    m.d.sync += [mod_count.eq(mod_count - 1),
                                 remainder.eq(Mux(shifted >= cx.ring_sz, shifted - cx.ring_sz,
                                                  shifted))]
            with m.State("FETCH_DONE"):
                m.d.sync += known.bit_select(cur, 1).eq(1)
                with m.If(mode == MODE_ACTIVATE):
                    m.d.comb += [t_wr.en.eq(1), self.activate_done.eq(1),
                                 self.activate_ok.eq(1)]
                    m.d.sync += [activated.eq(1),
                                 running.bit_select(0, 1).eq(cx.state == CxtState.RUN),
                                 work.bit_select(0, 1).eq(cx.state == CxtState.RUN)]
                    m.next = "IDLE"
                with m.Else():
                    # CXT_START: the context runs from the read index in its CXT_STS.
                    m.d.sync += [cx.state.eq(CxtState.RUN), running.bit_select(cur, 1).eq(1),
                                 work.bit_select(cur, 1).eq(1), stale.bit_select(cur, 1).eq(0)]
                    start_write("START_STATE", cx.sts, 1, lay.states + CxtState.RUN)
            write_states("START_STATE", lambda: setattr(m, "next", "START_SAVE"),
                         lambda e: table_error(ErrStep.CXT_STS, ErrSubStep.DAF, e))
            with m.State("START_SAVE"):
                m.d.comb += t_wr.en.eq(1)
                m.next = "ADMIN_NEXT"

            # ---- serving a context -----------------------------------------------------------------
            with m.State("LOAD"):
                m.next = "LOAD_LATCH"
            with m.State("LOAD_LATCH"):
                m.d.sync += [cx.eq(t_rd.data), completed.eq(0)]
                with m.If(stale.bit_select(cur, 1)):
                    m.d.sync += [tgt.eq(cur), mode.eq(MODE_REFRESH)]
                    m.next = "FETCH_L2"
                with m.Else():
                    m.next = "TAKE"
            with m.State("TAKE"):
                m.d.comb += [self.take_valid.eq(1), self.take_cxt.eq(cur)]
                m.d.sync += turns.eq(cx.qos + 1)
                start_read("WI_RD", cx.wi_ptr, 8)

            def context_error(step, sub_step, err_class, *, buf=None, index=True):
                report(KIND_CONTEXT, step, sub_step, err_class, buf=buf, index=index,
                       reaction=ErrReaction.CONTEXT_STOPPED)

            read_states("WI_RD", lambda: setattr(m, "next", "WI_SIDE"),
                        lambda e: context_error(ErrStep.WRITE_INDEX, ErrSubStep.DAF, e,
                                                index=False))
            with m.State("WI_SIDE"):
                side_read(lay.struct)
                m.next = "WI_LATCH"
            with m.State("WI_LATCH"):
                m.d.sync += write_index.eq(landed[:64])
                m.next = "BATCH"
            with m.State("BATCH"):
                avail = Signal(64)
                to_end = Signal(32)
                m.d.comb += [avail.eq(write_index - cx.read_index), to_end.eq(cx.ring_sz - cx.slot)]
                count = Mux((avail < BATCH) & (avail < to_end), avail,
                            Mux(to_end < BATCH, to_end, BATCH))
                with m.If((write_index <= cx.read_index) | stopping):
                    m.d.sync += work.bit_select(cur, 1).eq(0)
                    m.next = "RI"
                with m.Else():
                    m.d.sync += [batch.eq(count), k.eq(0), has_cst.eq(0)]
                    start_read("RING_RD", cx.ring + (cx.slot << 6), count << 6,
                               ram=lay.desc + ((cx.ring + (cx.slot << 6)) & (row - 1)))
            read_states("RING_RD", lambda: setattr(m, "next", "DESC"),
                        lambda e: context_error(ErrStep.DESCRIPTOR, ErrSubStep.DAF, e))

            # ---- decode --------------------------------------------------------------------------
            with m.State("DESC"):
                m.d.comb += [self.ram_rd.en.eq(1),
                             self.ram_rd.row.eq(lay.desc // row + k * (64 // row))]
                m.next = "DESC_LATCH"
            with m.State("DESC_LATCH"):
                m.d.sync += [d.eq(pair[:512]), failed.eq(0), intr_after.eq(0), keys.eq(0),
                             key_intr.eq(0)]
                m.next = "DECODE"

            gen = dsc.DSC_GENERIC
            typ = g(gen, "type")
            sub = g(gen, "subtype")

            def group_ok(group):
                return enabled[group.opb_bit]

            def invalid(err_class):
                context_error(ErrStep.DESCRIPTOR, ErrSubStep.DVF, err_class)

            def size_ok(size_minus_one):
                return (size_minus_one >> (max_buffer + 21)) == 0

            def check_keys(count, first, second=0, intr=False):
                m.d.sync += [keys.eq((1 << count) - 1), key_idx.eq(first), key_idx1.eq(second),
                             key_buf.eq(0), key_intr.eq(intr)]
                m.next = "AKEY"

            with m.State("DECODE"):
                m.d.sync += [csb.eq(Cat(Const(0, 5), g(gen, "csb_ptr"))),
                             has_cst.eq(~g(gen, "np"))]
                implemented = ((typ == OpGroup.DMABASE) | (typ == OpGroup.ADMIN) |
                               (typ == OpGroup.INTR) | (typ == OpGroup.VENDOR))
                with m.If(~g(gen, "vl")):
                    # Not yet written: wait for the next doorbell (sdxi-spec.md 5.1).
                    m.d.sync += work.bit_select(cur, 1).eq(0)
                    m.next = "RI"
                with m.Elif(~implemented):
                    invalid(ErrClass.UNKNOWN_OPCODE)
                with m.Elif(((typ == OpGroup.DMABASE) & ~group_ok(OpGroup.DMABASE)) |
                            ((typ == OpGroup.ADMIN) & ~group_ok(OpGroup.ADMIN)) |
                            ((typ == OpGroup.INTR) & ~group_ok(OpGroup.INTR)) |
                            ((typ == OpGroup.VENDOR) & ~group_ok(OpGroup.VENDOR))):
                    invalid(ErrClass.GROUP_DISABLED)
                with m.Elif(typ == OpGroup.DMABASE):
                    with m.Switch(sub):
                        with m.Case(DmaBaseOp.NOP):
                            m.next = "CST"
                        with m.Case(DmaBaseOp.COPY):
                            s = dsc.DSC_DMAB_COPY
                            with m.If(~size_ok(g(s, "size"))):
                                invalid(ErrClass.SIZE)
                            with m.Else():
                                m.d.sync += [mover.op.eq(MoverOp.COPY), mover.src.eq(g(s, "addr0")),
                                             mover.dst.eq(g(s, "addr1")), mover.last.eq(g(s, "size"))]
                                check_keys(2, g(s, "akey0"), g(s, "akey1"))
                        with m.Case(DmaBaseOp.WRT_IMM):
                            s = dsc.DSC_DMAB_WRT_IMM
                            with m.If(g(s, "size") >= dsc.WRT_IMM_MAX):
                                invalid(ErrClass.SIZE)
                            with m.Else():
                                m.d.sync += [mover.op.eq(MoverOp.FROM_RAM), mover.dst.eq(g(s, "addr0")),
                                             mover.last.eq(g(s, "size")),
                                             mover.ram.eq(lay.desc + (k << 6) + 24)]
                                check_keys(1, g(s, "akey0"))
                        with m.Case(DmaBaseOp.REPCOPY):
                            s = dsc.DSC_DMAB_REPCOPY
                            count = g(s, "count")
                            with m.If((count >> (max_buffer + 9)) != 0):
                                invalid(ErrClass.SIZE)
                            with m.Else():
                                m.d.sync += [mover.op.eq(MoverOp.REPCOPY), mover.src.eq(g(s, "addr0")),
                                             mover.dst.eq(g(s, "addr1")),
                                             mover.last.eq(((count + 1) << 12) - 1)]
                                check_keys(2, g(s, "akey0"), g(s, "akey1"))
                        with m.Default():
                            invalid(ErrClass.UNKNOWN_OPCODE)
                with m.Elif(typ == OpGroup.VENDOR):
                    s = dsc.DSC_VENDOR_FILL
                    with m.If(sub != VendorOp.FILL):
                        invalid(ErrClass.UNKNOWN_OPCODE)
                    with m.Elif(g(s, "psz") >= len(dsc.FILL_PATTERN_SIZES)):
                        invalid(ErrClass.BAD_PARAMETER)
                    with m.Elif(~size_ok(g(s, "size"))):
                        invalid(ErrClass.SIZE)
                    with m.Else():
                        size = g(s, "size")
                        rows = Mux(size >= IMAGE, IMAGE // row, (size >> (row.bit_length() - 1)) + 1)
                        m.d.sync += [mover.op.eq(MoverOp.FROM_RAM), mover.dst.eq(g(s, "addr0")),
                                     mover.last.eq(size), mover.ram.eq(lay.fill),
                                     fill_rows.eq(rows), fill_row.eq(0)]
                        check_keys(1, g(s, "akey0"))
                with m.Elif(typ == OpGroup.INTR):
                    with m.If(sub != IntrOp.INTR):
                        invalid(ErrClass.UNKNOWN_OPCODE)
                    with m.Else():
                        check_keys(1, g(dsc.DSC_INTR, "akey"), intr=True)
                with m.Else():      # AdminGrp
                    s = dsc.DSC_CXT_STOP
                    first, last_ = g(s, "cxt_start"), g(s, "cxt_end")
                    range_ok = ((first >= 1) & (first <= last_) & (last_ <= ctl2_max_cxt) &
                                (last_ <= cfg.max_cxt))
                    m.d.sync += [tgt.eq(first), tgt_end.eq(last_)]
                    with m.If(cur != 0):
                        invalid(ErrClass.ADMIN_NOT_CXT0)
                    with m.Elif(g(s, "vf")):
                        invalid(ErrClass.BAD_PARAMETER)
                    with m.Else():
                        with m.Switch(sub):
                            with m.Case(AdminOp.CXT_START_NM, AdminOp.CXT_START_RS,
                                        AdminOp.CXT_STOP, AdminOp.CXT_UPD):
                                with m.If(~range_ok):
                                    invalid(ErrClass.BAD_PARAMETER)
                                with m.Else():
                                    m.next = "ADMIN"
                            with m.Case(AdminOp.SYNC):
                                with m.If(g(dsc.DSC_SYNC, "flt") > SyncFilter.FN):
                                    invalid(ErrClass.BAD_PARAMETER)
                                with m.Elif((g(dsc.DSC_SYNC, "flt") == SyncFilter.CXT) & ~range_ok):
                                    invalid(ErrClass.BAD_PARAMETER)
                                with m.Else():
                                    m.next = "ADMIN"
                            with m.Case(AdminOp.AKEY_UPD):
                                # No AKey is cached yet: nothing to invalidate.
                                m.next = "CST"
                            with m.Default():
                                invalid(ErrClass.UNKNOWN_OPCODE)

            # ---- admin operations over a context range -----------------------------------------------
            with m.State("ADMIN"):
                # The admin context's entry is saved first: tgt contexts reuse ``cx``.
                m.d.comb += t_wr.en.eq(1)
                with m.Switch(sub):
                    with m.Case(AdminOp.CXT_START_NM, AdminOp.CXT_START_RS):
                        m.next = "ADMIN_START"
                    with m.Case(AdminOp.CXT_STOP):
                        m.next = "ADMIN_STOP"
                    with m.Default():          # CXT_UPD, SYNC
                        with m.If((sub == AdminOp.CXT_UPD) |
                                  (g(dsc.DSC_SYNC, "flt") == SyncFilter.CXT)):
                            for i in range(1, n):
                                with m.If((tgt <= i) & (i <= tgt_end)):
                                    m.d.sync += stale[i].eq(1)
                        m.next = "ADMIN_RETURN"
            with m.State("ADMIN_START"):
                with m.If(running.bit_select(tgt[:cxt_bits], 1)):
                    m.next = "ADMIN_NEXT"         # already running: nothing to do
                with m.Else():
                    m.d.sync += [cur.eq(tgt), mode.eq(MODE_START)]
                    m.next = "FETCH_L2"
            with m.State("ADMIN_STOP"):
                with m.If(known.bit_select(tgt[:cxt_bits], 1)):
                    m.d.sync += cur.eq(tgt)
                    m.next = "STOP_LOAD"
                with m.Else():
                    m.next = "ADMIN_NEXT"
            with m.State("STOP_LOAD"):
                m.next = "STOP_LATCH"
            with m.State("STOP_LATCH"):
                m.d.sync += cx.eq(t_rd.data)
                m.next = "STOP_ENTRY"
            with m.State("STOP_ENTRY"):
                m.d.sync += [cx.state.eq(CxtState.STOP_SW), running.bit_select(cur, 1).eq(0),
                             work.bit_select(cur, 1).eq(0)]
                start_write("STOP_STATE", cx.sts, 1, lay.states + CxtState.STOP_SW)
            write_states("STOP_STATE", lambda: setattr(m, "next", "START_SAVE"),
                         lambda e: setattr(m, "next", "START_SAVE"))
            with m.State("ADMIN_NEXT"):
                with m.If(tgt == tgt_end):
                    m.d.sync += cur.eq(0)
                    m.next = "ADMIN_RETURN"
                with m.Else():
                    m.d.sync += tgt.eq(tgt + 1)
                    with m.Switch(sub):
                        with m.Case(AdminOp.CXT_STOP):
                            m.next = "ADMIN_STOP"
                        with m.Default():
                            m.next = "ADMIN_START"
            with m.State("ADMIN_RETURN"):
                m.next = "ADMIN_RELOAD"
            with m.State("ADMIN_RELOAD"):
                m.d.sync += cx.eq(t_rd.data)
                m.next = "CST"

            # ---- AKey checks (step 11), then execution ----------------------------------------------
            with m.State("AKEY"):
                with m.If(keys == 0):
                    with m.If(key_intr):
                        m.d.sync += intr_after.eq(1)
                        m.next = "CST"
                    with m.Elif((mover.op == MoverOp.FROM_RAM) & (typ == OpGroup.VENDOR)):
                        m.next = "FILL_IMAGE"
                    with m.Else():
                        m.next = "MOVE"
                with m.Elif((key_idx >> (cx.akey_sz + 8)) != 0):
                    context_error(ErrStep.AKEY, ErrSubStep.DVF, ErrClass.AKEY_RANGE, buf=key_buf)
                with m.Else():
                    start_read("AKEY_RD", cx.akey + (key_idx << 4), 16)
            read_states("AKEY_RD", lambda: setattr(m, "next", "AKEY_SIDE"),
                        lambda e: context_error(ErrStep.AKEY, ErrSubStep.DAF, e, buf=key_buf))
            with m.State("AKEY_SIDE"):
                side_read(lay.struct)
                m.next = "AKEY_CHECK"
            with m.State("AKEY_CHECK"):
                a = landed
                with m.If(~_field(a, AKEY_ENT, "vl") | (key_intr & ~_field(a, AKEY_ENT, "iv"))):
                    context_error(ErrStep.AKEY, ErrSubStep.DVF, ErrClass.AKEY_INVALID, buf=key_buf)
                with m.Elif(_field(a, AKEY_ENT, "pv") | (_field(a, AKEY_ENT, "tgt_sfunc") != 0)):
                    context_error(ErrStep.AKEY, ErrSubStep.DVF, ErrClass.AKEY_UNSUPPORTED,
                                  buf=key_buf)
                with m.Elif(key_intr & (_field(a, AKEY_ENT, "intr_num") >= cfg.msix_vectors)):
                    context_error(ErrStep.AKEY, ErrSubStep.DVF, ErrClass.BAD_PARAMETER, buf=key_buf)
                with m.Else():
                    m.d.sync += [vector.eq(_field(a, AKEY_ENT, "intr_num")), keys.eq(keys >> 1),
                                 key_idx.eq(key_idx1), key_buf.eq(1)]
                    m.next = "AKEY"

            with m.State("FILL_IMAGE"):
                # The pattern, repeated over the rows the fill needs (at most IMAGE bytes).
                pattern = g(dsc.DSC_VENDOR_FILL, "pattern")
                psz = g(dsc.DSC_VENDOR_FILL, "psz")
                image = Mux(psz == 0, pattern[:64].replicate(w // 64),
                            Mux(psz == 1, pattern[:128].replicate(w // 128),
                                pattern[:256].replicate(w // 256)))
                m.d.comb += [self.ram_wr.row.eq(lay.fill // row + fill_row),
                             self.ram_wr.data.eq(image), self.ram_wr.en.eq((1 << row) - 1)]
                with m.If(self.ram_wr_taken):
                    m.d.sync += fill_row.eq(fill_row + 1)
                    with m.If(fill_row + 1 == fill_rows):
                        m.next = "MOVE"

            with m.State("MOVE"):
                m.d.comb += [self.mover_cmd.valid.eq(1), self.mover_cmd.payload.eq(mover)]
                with m.If(self.mover_cmd.ready):
                    m.next = "MOVE_WAIT"
            with m.State("MOVE_WAIT"):
                m.d.comb += self.mover_result.ready.eq(1)
                r = self.mover_result.payload
                with m.If(self.mover_result.valid):
                    with m.If(r.aborted):
                        m.next = "RI"             # hard stop: the descriptor stays unfinished
                    with m.Elif(r.error != 0):
                        context_error(ErrStep.DATA_BUFFER, ErrSubStep.DAF, r.error, buf=r.buffer)
                    with m.Else():
                        m.next = "CST"

            # ---- completion: CST flags, then signal = 0; interrupt; next descriptor ------------------
            with m.State("CST"):
                with m.If(has_cst):
                    start_write("CST_FLAGS", csb + 8, 4,
                                Mux(failed, lay.flags_err, lay.flags_ok))
                with m.Elif(failed):
                    m.next = "FAILED"
                with m.Else():
                    m.next = "NEXT"
            cst_fail = lambda e: context_error(ErrStep.CST_BLK, ErrSubStep.DAF, e)
            write_states("CST_FLAGS", lambda: start_write("CST_SIGNAL", csb, 8, lay.zero),
                         cst_fail)
            write_states("CST_SIGNAL", lambda: setattr(m, "next", "CST_ROUTE"), cst_fail)
            with m.State("CST_ROUTE"):
                with m.If(failed):
                    m.next = "FAILED"
                with m.Else():
                    m.next = "NEXT"
            with m.State("NEXT"):
                with m.If(intr_after):
                    m.d.comb += self.raise_vectors.eq(1 << vector)
                last_slot = cx.slot + 1 == cx.ring_sz
                m.d.sync += [cx.read_index.eq(cx.read_index + 1), completed.eq(1),
                             cx.slot.eq(Mux(last_slot, 0, cx.slot + 1)), k.eq(k + 1)]
                with m.If(stopping):
                    m.next = "RI"
                with m.Elif(k + 1 == batch):
                    with m.If(turns > 1):
                        m.d.sync += turns.eq(turns - 1)
                        m.next = "BATCH"
                    with m.Else():
                        m.d.sync += work.bit_select(cur, 1).eq(1)
                        m.next = "RI"
                with m.Else():
                    m.next = "DESC"

            # ---- a failed descriptor: context to ERR_FN, after its log entry and CST ---------------
            with m.State("FAILED"):
                m.next = "RI"

            # ---- read index write-back, then the context is saved -----------------------------------
            with m.State("RI"):
                with m.If(completed):
                    m.d.comb += [self.ram_wr.row.eq(lay.read_index // row),
                                 self.ram_wr.data.eq(cx.read_index.replicate(w // 64)),
                                 self.ram_wr.en.eq(0xFF)]
                    with m.If(self.ram_wr_taken):
                        start_write("RI_WR", cx.sts + 8, 8, lay.read_index)
                with m.Else():
                    m.next = "SAVE"
            write_states("RI_WR", lambda: setattr(m, "next", "SAVE"),
                         lambda e: setattr(m, "next", "SAVE"))
            with m.State("SAVE"):
                m.d.comb += t_wr.en.eq(1)
                m.next = "IDLE"

            # ---- error log --------------------------------------------------------------------------
            with m.State("LOG"):
                m.d.sync += sts_before.eq(self.err_sts[0])
                full = (self.err_wrt - self.err_rd) >= errlog_entries
                with m.If(~self.err_cfg[0] | full):
                    m.d.comb += self.err_sts_set.eq(0b11)          # sts, ovf
                    m.next = "LOG_RAISE"
                with m.Else():
                    m.d.sync += fill_row.eq(0)
                    m.next = "LOG_STAGE"
            with m.State("LOG_STAGE"):
                rows_per_entry = 64 // row
                m.d.comb += [self.ram_wr.row.eq(lay.errlog // row + fill_row),
                             self.ram_wr.data.eq(err.word_select(fill_row[:1], w)
                                                 if rows_per_entry > 1 else err),
                             self.ram_wr.en.eq((1 << row) - 1)]
                with m.If(self.ram_wr_taken):
                    m.d.sync += fill_row.eq(fill_row + 1)
                    with m.If(fill_row + 1 == rows_per_entry):
                        start_write("LOG_BODY", log_base + 8, 56, lay.errlog + 8)
            def log_fail(e):
                m.d.comb += self.err_sts_set.eq(0b1001)        # sts, err: logging failed
                m.next = "LOG_RAISE"

            write_states("LOG_BODY", lambda: start_write("LOG_HEAD", log_base, 8, lay.errlog),
                         log_fail)
            write_states("LOG_HEAD", lambda: setattr(m, "next", "LOG_ADVANCE"), log_fail)
            with m.State("LOG_ADVANCE"):
                m.d.comb += [self.err_wrt_load.eq(1), self.err_wrt_value.eq(self.err_wrt + 1),
                             self.err_sts_set.eq(0b1)]
                m.next = "LOG_RAISE"
            with m.State("LOG_RAISE"):
                with m.If(self.err_ctl[0] & ~sts_before):
                    m.d.comb += self.raise_vectors.eq(1)
                with m.Switch(err_kind):
                    with m.Case(KIND_FUNCTION):
                        m.next = "FN_ERROR"
                    with m.Default():
                        m.d.sync += [cx.state.eq(CxtState.ERR_FN), running.bit_select(cur, 1).eq(0),
                                     work.bit_select(cur, 1).eq(0), failed.eq(1)]
                        start_write("ERR_STATE", cx.sts, 1, lay.states + CxtState.ERR_FN)
            write_states("ERR_STATE", lambda: setattr(m, "next", "ERR_CST"),
                         lambda e: setattr(m, "next", "ERR_CST"))
            with m.State("ERR_CST"):
                # A failed descriptor completes its CST with er = 1; a failed ring or
                # write-index read has no descriptor, a failed CST write no second try.
                with m.If(_field(err, ERRLOG_HD_ENT, "div") &
                          (_field(err, ERRLOG_HD_ENT, "step") != ErrStep.CST_BLK)):
                    m.next = "CST"
                with m.Else():
                    m.next = "RI"
            with m.State("FN_ERROR"):
                with m.If(mode == MODE_ACTIVATE):
                    m.d.comb += [self.activate_done.eq(1), self.activate_ok.eq(0)]
                with m.Else():
                    m.d.comb += self.fatal.eq(1)
                m.next = "IDLE"

        return m
