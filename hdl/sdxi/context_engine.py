"""SDXI context engine front end: activation, doorbells, the turn of a context, AKey checks,
the fill image and issue, composed with its parts (docs/context-engine.md): the context table
and scheduler, the context loader, the ring fetcher, the descriptor decoder and the admin unit.
Completion is the retire unit's (retire.py)."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from sdxi_defs import descriptors as dsc
from sdxi_defs.descriptors import AdminOp, DmaBaseOp, OpGroup, SyncFilter
from sdxi_defs.errors import ErrClass, ErrStep, ErrSubStep
from sdxi_defs.ram_map import BATCH, IMAGE, RamLayout
from sdxi_defs.regmap import REGISTERS_BY_NAME
from sdxi_defs.structures import (AKEY_ENT, LOCAL_SFUNC, RKEY_ENT, CxtState,
                                  function_of_sfunc, sfunc_of)

from ..common.fsm import goto, request_states
from ..common.layouts import layout_of
from ..common.priority import lowest_set
from ..config import FUNCTION_BITS
from ..mmu.tlb import Lookup, Translation
from ..pcie.dma_ram import RamReadPairSignature, RamWriteSignature
from ..pcie.dma_read import ReadRequest, ReadStatus
from ..pcie.dma_write import WriteRequest, WriteStatus
from .data_mover import BufferSpace, MoverCommand, MoverOp
from .error_classes import class_of_fault, class_of_write_error
from .admin_unit import AdminAction, AdminUnit
from .akey_cache import AkeyCache, akey_lookup
from .context_loader import ContextLoader
from .context_table import ContextTable, CxtEntry
from .control_requests import (read_request, structure_read_states, translate_request,
                               translate_states)
from .descriptor_decoder import Action, DescriptorDecoder, ImageCache, descriptor_views
from .error_completion import ErrorFound, ErrorReport, found_fields
from .retire import ContextFailure, RetireRecord
from .ring_fetcher import FETCHERS, RingFetcher


__all__ = ["ContextEngine", "FETCHERS", "RECORDS"]

RECORDS = 64                #: issued descriptors waiting to retire
#: The data a turn may issue while other contexts wait, in 4 KiB units (256 KiB): with the
#: descriptor count of a turn, it interleaves large copies of different contexts (and
#: functions) on the link (docs/context-engine.md, "Front end").
TURN_UNITS = 64


class ContextEngine(wiring.Component):
    """Runs the contexts of the engine's SDXI functions (docs/context-engine.md).

    The contexts of all functions are numbered together, function * contexts + ID (``cur``):
    a context's function is the number's upper bits. Each function has its own tables, limits
    and state requests (the per-function ports below, indexed by function); everything a
    context reads or writes carries its function's requester ID.

    Fetches ring batches ahead of decode, decodes one descriptor per clock on its fast path
    (AKeys cached, fill image in place), issues data operations to the data mover and every
    descriptor to the retire unit in ring order, without waiting for earlier ones to complete
    unless fe = 1 or the descriptor is an admin operation. Errors found here wait for everything
    earlier to retire, then end the context (or the function, for table errors).

    Members
    -------
    rd_req, rd_status : control read client (tables, write index, AKeys)
    fetch_req, fetch_status : ring read clients (FETCHERS)
    wr_req, wr_status : control write client (CXT_STS.state, CSTs of failed descriptors)
    translate, translated : the TLB, for the structures of a context whose L1 entry has pv = 1
        (CXT_STS and write index when it is loaded, each CST before its descriptor runs)
    ring_translate, ring_translated : the TLB, for the pages of such a context's ring
    mover_cmd, mover_idle, mover_abort : the data mover
    tlb_flush : Out(1), a SYNC invalidates the TLB
    records : Out(stream.Signature(RetireRecord)), to the retire unit (buffered here)
    retire_idle, failure, clear_failed, retire_restart : the retire unit
    error_report : Out(stream.Signature(ErrorReport)), errors found here, to the error
        completion unit (held until it has written everything)
    ram_wr, ram_wr_taken, ram_rd : the DMA RAM's side ports
    pending, take_valid, take_cxt : doorbells (of all functions, numbered as ``cur``)
    activate, soft_stop, hard_stop : In(functions), quiesced : Out(functions), per function FSM
    activate_done, activate_ok, fatal : Out(1), for the FSM of ``function``
    function : Out(FUNCTION_BITS), the function of the context being worked on
    ctl2, cxt_l2, rkey : In(layout_of(CTL2)), In(layout_of(CXT_L2)), In(layout_of(RKEY)), per
        function: register values;
        CTL2's limits are already bounded by CAP1 (the register file clamps them), so the
        engine takes them as they are
    mover_abort : Out(1 << FUNCTION_BITS), the functions stopping hard
    decode_cycles, decoded : Out(32), performance counters (clocks spent deciding on a
        descriptor that was in place, descriptors decided)
    """

    def __init__(self, *, config, ram_addr_bits, row_bytes):
        self._cfg = config
        self._ram_bits = ram_addr_bits
        self._lay = RamLayout(row_bytes)
        n = config.contexts * config.functions
        self._cxt_bits = max(1, (n - 1).bit_length())
        fns = config.functions
        rows = (1 << ram_addr_bits) * 8 // config.data_width
        super().__init__({
            "rd_req": Out(stream.Signature(ReadRequest(ram_addr_bits))),
            "rd_status": In(stream.Signature(ReadStatus(), always_ready=True)),
            "fetch_req": Out(stream.Signature(ReadRequest(ram_addr_bits))).array(FETCHERS),
            "fetch_status": In(stream.Signature(ReadStatus(), always_ready=True)).array(FETCHERS),
            "wr_req": Out(stream.Signature(WriteRequest(ram_addr_bits))),
            "wr_status": In(stream.Signature(WriteStatus(), always_ready=True)),
            "translate": Out(stream.Signature(Lookup())),
            "translated": In(stream.Signature(Translation())),
            "ring_translate": Out(stream.Signature(Lookup())),
            "ring_translated": In(stream.Signature(Translation())),
            "mover_cmd": Out(stream.Signature(MoverCommand(ram_addr_bits))),
            "mover_idle": In(1),
            "mover_abort": Out(1 << FUNCTION_BITS),
            "tlb_flush": Out(1),
            "records": Out(stream.Signature(RetireRecord(self._cxt_bits))),
            "retire_idle": In(1),
            "failure": In(stream.Signature(ContextFailure(self._cxt_bits))),
            "clear_failed": Out(n),
            "retire_restart": Out(1),
            "error_report": Out(stream.Signature(ErrorReport())),
            "ram_wr": Out(RamWriteSignature(config.data_width, rows)),
            "ram_wr_taken": In(1),
            "ram_rd": Out(RamReadPairSignature(config.data_width, rows)),
            "pending": In(n),
            "take_valid": Out(1),
            "take_cxt": Out(range(n)),
            "activate": In(fns), "activate_done": Out(1), "activate_ok": Out(1),
            "soft_stop": In(fns), "hard_stop": In(fns), "quiesced": Out(fns), "fatal": Out(1),
            "function": Out(FUNCTION_BITS),
            "ctl2": In(layout_of(REGISTERS_BY_NAME["CTL2"])).array(fns),
            "cxt_l2": In(layout_of(REGISTERS_BY_NAME["CXT_L2"])).array(fns),
            "rkey": In(layout_of(REGISTERS_BY_NAME["RKEY"])).array(fns),
            "decode_cycles": Out(32), "decoded": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        lay = self._lay
        row = lay.row
        w = cfg.data_width
        n = cfg.contexts * cfg.functions
        fns = cfg.functions
        cxt_bits = self._cxt_bits
        cbits = cfg.context_bits
        row_shift = row.bit_length() - 1

        # ---- context table and per-context flags --------------------------------------------
        m.submodules.contexts = contexts = ContextTable(contexts=n, context_bits=cbits)
        cx = Signal(CxtEntry())               # the context being worked on
        cur = Signal(range(n))
        fn = Signal(FUNCTION_BITS)            # its function, and its ID within the function
        local = Signal(cbits)
        m.d.comb += [fn.eq(cur >> cbits), local.eq(cur[:cbits]), self.function.eq(fn)]

        def of_function(f):
            """The number of function ``f``'s admin context."""
            return Cat(Const(0, cbits), f)

        # The registers of ``fn``.
        ctl2 = Signal(layout_of(REGISTERS_BY_NAME["CTL2"]))
        cxt_l2 = Signal(layout_of(REGISTERS_BY_NAME["CXT_L2"]))
        with m.Switch(fn):
            for f in range(fns):
                with m.Case(f):
                    m.d.comb += [ctl2.eq(self.ctl2[f]), cxt_l2.eq(self.cxt_l2[f])]
        m.d.comb += [contexts.cur.eq(cur), contexts.save_entry.eq(cx),
                     contexts.pending.eq(self.pending)]
        save = contexts.save
        saved = contexts.entry                # cur's entry, one clock after cur is set
        update = contexts.update
        forget_all, stopped_cur, started_cur = update.forget_all, update.stopped, update.started
        idle_cur, more_cur, fresh_cur, known_cur = update.idle, update.more, update.fresh, \
            update.known
        stale_cur = update.stale
        activated = Signal(fns)               # per function: activated, not stopped since
        stop_seen = Signal(fns)               # per function: its stop is done (``quiesced``)

        # ---- retire records ----------------------------------------------------------------------
        m.submodules.record_fifo = fifo = SyncFIFOBuffered(
            width=len(self.records.payload.as_value()), depth=RECORDS)
        m.d.comb += [self.records.valid.eq(fifo.r_rdy), self.records.payload.eq(fifo.r_data),
                     fifo.r_en.eq(self.records.ready)]
        record = Signal(RetireRecord(cxt_bits))
        m.d.comb += fifo.w_data.eq(record)
        drained = Signal()
        m.d.comb += drained.eq((fifo.level == 0) & self.retire_idle & self.mover_idle)

        # ---- control reads and writes ------------------------------------------------------------
        # The control read client and the TLB port are the loader's while it loads (``loading``)
        # and otherwise the engine's own (``own_rd``, ``own_xlate``: write index, AKeys, CSTs).
        m.submodules.loader = loader = ContextLoader(
            config=cfg, ram_addr_bits=self._ram_bits, struct_ram=lay.struct, row_bytes=row)
        loading = Signal()
        own_rd = stream.Signature(ReadRequest(self._ram_bits)).create(path=("own_rd",))
        own_xlate = stream.Signature(Lookup()).create(path=("own_xlate",))
        m.d.comb += [loader.cxt_l2.eq(cxt_l2), loader.max_akey_sz.eq(ctl2.max_akey_sz),
                     loader.entry.eq(cx)]
        for outer, mine, theirs in ((self.rd_req, own_rd, loader.rd_req),
                                    (self.translate, own_xlate, loader.translate)):
            m.d.comb += [outer.valid.eq(Mux(loading, theirs.valid, mine.valid)),
                         outer.payload.eq(Mux(loading, theirs.payload, mine.payload)),
                         theirs.ready.eq(outer.ready & loading),
                         mine.ready.eq(outer.ready & ~loading)]
            with m.If(loading):
                m.d.comb += outer.payload.function.eq(fn)   # the context's own structures
        m.d.comb += [loader.rd_status.valid.eq(self.rd_status.valid),
                     loader.rd_status.payload.eq(self.rd_status.payload),
                     loader.translated.valid.eq(self.translated.valid),
                     loader.translated.payload.eq(self.translated.payload)]

        rq = Signal(ReadRequest(self._ram_bits))
        wq = Signal(WriteRequest(self._ram_bits))
        m.d.comb += [own_rd.payload.eq(rq), self.wr_req.payload.eq(wq),
                     self.wr_req.payload.function.eq(fn)]

        def start_read(state, addr, length, function=None):
            """Read a structure of ``function`` (default: the context's own)."""
            m.d.sync += [*read_request(rq, addr, length, struct_ram=lay.struct, row_bytes=row),
                         rq.function.eq(fn if function is None else function)]
            m.next = state

        def start_write(state, addr, length, ram):
            m.d.sync += [wq.addr.eq(addr), wq.length.eq(length), wq.ram_addr.eq(ram)]
            m.next = state

        def land():
            m.d.comb += [self.ram_rd.en.eq(1), self.ram_rd.row.eq(lay.struct // row)]

        def read_states(state, ok, fail):
            """Issue ``rq`` and wait; then read the structure from the RAM and ``ok()``, or
            ``fail(error_class)``."""
            structure_read_states(m, state, own_rd, self.rd_status, land=land, ok=ok, fail=fail)

        def write_states(state, ok, fail=None):
            def written():
                if fail is None:
                    ok()                  # best effort: the context is stopping anyway
                else:
                    with m.If(self.wr_status.payload.error == 0):
                        ok()
                    with m.Else():
                        fail(class_of_write_error(self.wr_status.payload.error))

            request_states(m, state, self.wr_req, self.wr_status, written)

        # ---- translations of a pv = 1 context's structures (docs/spec-choices.md) ----------------
        xq = Signal(Lookup())
        m.d.comb += [own_xlate.payload.eq(xq), self.translated.ready.eq(1)]

        def start_translate(state, vaddr, *, write):
            m.d.sync += [*translate_request(xq, vaddr, write=write, entry=cx), xq.function.eq(fn)]
            m.next = state

        # The structure just read, shifted down to its first byte.
        struct_off = Signal(range(row))
        with m.If(self.rd_req.valid & self.rd_req.ready):
            m.d.sync += struct_off.eq(self.rd_req.payload.addr[:row_shift] >> 3)
        pair = Cat(self.ram_rd.lo, self.ram_rd.hi)
        # Every structure is aligned to its size (8, 16, 32 or 64 bytes), so qword i of it can
        # only come from the qwords of the 64 bytes that are i modulo its size: the first from
        # any, the second from an odd one, the next two from either half's upper 16 bytes, and
        # the upper 32 bytes (CXT_CTL, 64-byte aligned) are where they are. With 64-byte rows,
        # the second row is never needed.
        landed = Signal(512)
        m.d.comb += landed.eq(Cat(pair[:512].word_select(struct_off, 64),
                                  pair[:512].word_select(Cat(Const(1, 1), struct_off[1:3]), 64),
                                  pair[:512].word_select(Cat(Const(1, 1), struct_off[2]), 128),
                                  pair[256:512]))
        m.d.comb += loader.landed.eq(landed)

        # ---- error reporting ---------------------------------------------------------------------
        # What an error found here reports (the error completion unit makes the log entry);
        # the index is the read index when the report leaves.
        found = Signal(ErrorFound())
        err_fn = found.function

        def report(step, sub_step, cls, *, function=False, buf=None, bv=None, index=True):
            m.d.sync += notify.eq(0)
            m.d.sync += found_fields(found, step=step, sub_step=sub_step, err_class=cls,
                                     function=function, cxt=cur,
                                     index=0 if index else None, buf=buf, bv=bv)
            m.next = "REPORT" if function else "ERR_DRAIN"

        # ---- why a context is loaded; admin operations' ranges ------------------------------------
        mode = Signal(2)
        MODE_ACTIVATE, MODE_START, MODE_REFRESH = 0, 1, 2
        m.submodules.admin = admin = AdminUnit()
        m.d.comb += [contexts.query.eq(Cat(admin.query[:cbits], fn)),
                     admin.query_running.eq(contexts.query_running),
                     admin.query_known.eq(contexts.query_known)]

        # ---- the turn: write index, fetch, decode ------------------------------------------------
        turn = Signal(data.StructLayout({
            "write_index": 64,
            "on": 1,                            # the fetcher may fetch for ``cx``
            "left": 8,                          # descriptors before others get a turn
            "k": range(BATCH + 1),              # the descriptor of the batch being decoded
            "units": range(TURN_UNITS + 256),   # data issued, in 4 KiB units (TURN_UNITS)
        }))
        write_index, turn_on, turn_left, k = turn.write_index, turn.on, turn.left, turn.k
        m.submodules.fetcher = fetcher = RingFetcher(ram_addr_bits=self._ram_bits,
                                                     desc_base=lay.desc)
        for f in range(FETCHERS):
            wiring.connect(m, fetcher.fetch_req[f], wiring.flipped(self.fetch_req[f]))
            wiring.connect(m, wiring.flipped(self.fetch_status[f]), fetcher.fetch_status[f])
        wiring.connect(m, fetcher.ring_translate, wiring.flipped(self.ring_translate))
        wiring.connect(m, wiring.flipped(self.ring_translated), fetcher.ring_translated)
        m.d.comb += [fetcher.enable.eq(turn_on), fetcher.write_index.eq(write_index)]
        fetch_busy = fetcher.busy
        batch = fetcher.batch

        def desc_row(buffer, index):
            return lay.desc // row + ((buffer * BATCH + index) << (6 - row_shift))

        # ---- the descriptor: the RAM's output, read again after a structure read ---------------
        now = Signal(512)
        m.d.comb += now.eq(pair[:512])

        def reread_descriptor():
            """The descriptor being decided is in ``now`` from the next clock on."""
            m.d.comb += [self.ram_rd.en.eq(1), self.ram_rd.row.eq(desc_row(batch.buffer, k))]

        views = descriptor_views(now)
        gen, admin_range, sync, fill, imm = \
            views.generic, views.admin, views.sync, views.fill, views.imm
        typ, sub = gen.type, gen.subtype
        csb_ptr = Cat(Const(0, 5), gen.csb_ptr)

        enabled = Signal(32)
        m.d.comb += enabled.eq(cx.opb & ctl2.opb_000_avl)
        max_buffer = Signal(4)
        m.d.comb += max_buffer.eq(Mux(cx.max_buffer < ctl2.max_buffer, cx.max_buffer,
                                      ctl2.max_buffer))

        # ---- AKey cache and fill image -----------------------------------------------------------
        akeys = Signal(AkeyCache())
        # An AKey of another function: that function and the index into its RKey table, and
        # its RKEY register. ``notify``: the error found is that function's to log as well.
        target = Signal(FUNCTION_BITS)
        rkey_idx = Signal(16)
        notify = Signal()
        target_rkey = Signal(layout_of(REGISTERS_BY_NAME["RKEY"]))
        with m.Switch(target):
            for f in range(fns):
                with m.Case(f):
                    m.d.comb += target_rkey.eq(self.rkey[f])
        image = Signal(ImageCache(row))

        # ---- the decoder's verdict on the descriptor in ``now`` ----------------------------------
        m.submodules.decoder = decoder = DescriptorDecoder(
            ram_addr_bits=self._ram_bits, row_bytes=row, fill_ram=lay.fill)
        verdict = decoder.verdict
        m.d.comb += [decoder.descriptor.eq(now), decoder.enabled.eq(enabled),
                     decoder.max_buffer.eq(max_buffer), decoder.max_cxt.eq(ctl2.max_cxt),
                     decoder.admin_context.eq(local == 0), decoder.akeys.eq(akeys),
                     decoder.image.eq(image)]

        # ---- what the current descriptor needs ---------------------------------------------------
        mover = Signal(MoverCommand(self._ram_bits))
        slow = Signal(data.StructLayout({      # the slow path: AKeys to check, image to write
            "keys": 2, "key_idx": 16, "key_idx1": 16, "key_buf": 1, "key_intr": 1,
            "fill_rows": range(IMAGE // row + 1), "fill_row": range(IMAGE // row + 1),
            "vector": 11, "vector_function": FUNCTION_BITS}))
        keys, key_idx, key_idx1, key_buf, key_intr = \
            slow.keys, slow.key_idx, slow.key_idx1, slow.key_buf, slow.key_intr
        fill_rows, fill_row, vector = slow.fill_rows, slow.fill_row, slow.vector
        vector_function = slow.vector_function
        cst = Signal(data.StructLayout({"has": 1, "csb": 64, "ready": 1}))
        # ``csb_ready``: ``csb`` holds the translated CST address
        has_cst, csb, csb_ready = cst.has, cst.csb, cst.ready

        # The record is driven in one place; where one is written, the state says only what
        # differs between descriptors (``make_record``).
        rec = Signal(data.StructLayout({"mover": 1, "intr": 1, "vector": 11,
                                        "intr_function": FUNCTION_BITS, "units": 8}))
        # The data issued in this turn, added where a record is written: past TURN_UNITS,
        # other contexts first.
        others_first = Signal()
        with m.If(fifo.w_en & (turn.units < TURN_UNITS)):
            m.d.sync += turn.units.eq(turn.units + rec.units)
        m.d.sync += others_first.eq((turn.units >= TURN_UNITS) & contexts.others_waiting)
        m.d.comb += [record.cxt.eq(cur), record.sts.eq(cx.sts), record.index.eq(cx.read_index),
                     record.mover.eq(rec.mover),
                     record.cst.eq(~gen.np), record.csb.eq(Mux(csb_ready, csb, csb_ptr)),
                     record.intr.eq(rec.intr), record.vector.eq(rec.vector),
                     record.intr_function.eq(rec.intr_function)]

        def units_of(cmd):
            """A mover command's data in 4 KiB units, at most 255 (the turn's budget)."""
            return Mux(cmd.last[12:] >= 255, 255, cmd.last[12:] + 1)

        def make_record(*, mover_op, intr=0, vec=0, vec_function=0, units=0):
            return [rec.mover.eq(mover_op), rec.intr.eq(intr), rec.vector.eq(vec),
                    rec.intr_function.eq(vec_function), rec.units.eq(units)]

        # The mover command of the fast path (the decoder's) or, on the slow path, the one kept
        # in ``mover``; driven in one place.
        cmd_from_mover = Signal()
        m.d.comb += [self.mover_cmd.payload.eq(Mux(cmd_from_mover, mover, verdict.cmd)),
                     self.mover_cmd.payload.function.eq(fn)]

        others_waiting = contexts.others_waiting
        stopping = Signal()                     # ``fn`` is stopping
        m.d.comb += stopping.eq((self.soft_stop | self.hard_stop).bit_select(fn, 1))
        m.d.comb += self.mover_abort.eq(self.hard_stop)
        # Per function: activation asked for, a stop not yet done (the first of each goes next).
        to_activate = Signal(fns)
        to_stop = Signal(fns)
        m.d.comb += [to_activate.eq(self.activate & ~activated),
                     to_stop.eq((self.soft_stop | self.hard_stop) & ~stop_seen)]
        m.d.sync += stop_seen.eq(stop_seen & (self.soft_stop | self.hard_stop))
        m.d.comb += self.quiesced.eq(stop_seen)
        activating, _ = lowest_set(m, to_activate, name="activating")
        stopper, _ = lowest_set(m, to_stop, name="stopper")
        # A descriptor failed in the datapath: the retire unit has set ERR_FN, logged it and
        # completed its CST; the context stops (a restart re-reads its CXT_STS).
        m.d.comb += self.failure.ready.eq(1)
        m.d.comb += [contexts.failed.eq(self.failure.valid),
                     contexts.failed_cxt.eq(self.failure.payload.cxt)]
        lost = Signal()                         # the current context stopped running
        m.d.comb += lost.eq(~contexts.cur_running)

        # The descriptor is issued: on to the next. The states that issue set ``advancing``;
        # what it changes is written in one place, after the state machine.
        advancing = Signal()
        last_of_batch = Signal()
        m.d.comb += last_of_batch.eq(k + 1 == batch.count)

        def advance():
            m.d.comb += advancing.eq(1)
            with m.If(last_of_batch):
                m.next = "BATCH"
            with m.Else():
                m.next = "DECODE"

        counters = Signal(data.StructLayout({"decoded": 32, "decode_cycles": 32}))
        decoded_count, decode_cycles = counters.decoded, counters.decode_cycles
        m.d.comb += [self.decoded.eq(decoded_count), self.decode_cycles.eq(decode_cycles)]

        with m.FSM(init="IDLE"):
            # ---- scheduling ----------------------------------------------------------------------
            with m.State("IDLE"):
                with m.If(to_activate.any()):
                    m.d.sync += [mode.eq(MODE_ACTIVATE), cur.eq(of_function(activating)),
                                 image.ok.eq(0)]
                    m.next = "ACTIVATE"
                with m.Elif(to_stop.any()):
                    # Every function's work waits while one stops: its contexts are walked one
                    # per clock once nothing is in flight (a function stop is rare).
                    with m.If(fn != stopper):
                        m.d.sync += cur.eq(of_function(stopper))
                    with m.Elif(~drained):
                        pass
                    with m.Elif(~contexts.fn_running.bit_select(stopper, 1)):
                        m.d.sync += [stop_seen.bit_select(stopper, 1).eq(1),
                                     activated.bit_select(stopper, 1).eq(0)]
                    with m.Elif(contexts.cur_running):
                        m.next = "FN_STOP_LOAD"
                    with m.Else():
                        m.d.sync += cur.eq(Cat((local + 1)[:cbits], fn))
                with m.Elif(contexts.next_valid):
                    m.d.sync += cur.eq(contexts.next)
                    m.d.comb += contexts.served.eq(1)
                    m.next = "LOAD"

            def stop_states(prefix, state, then):
                """Load context ``cur``, stop it in ``state`` (written to its CXT_STS), save it."""
                with m.State(prefix + "_LOAD"):
                    m.next = prefix + "_LATCH"
                with m.State(prefix + "_LATCH"):
                    m.d.sync += cx.eq(saved)
                    m.next = prefix + "_ENTRY"
                with m.State(prefix + "_ENTRY"):
                    m.d.sync += cx.state.eq(state)
                    m.d.comb += stopped_cur.eq(1)
                    start_write(prefix + "_STATE", cx.sts, 1, lay.states + state)
                write_states(prefix + "_STATE", goto(m, then))

            stop_states("FN_STOP", CxtState.STOP_FN, "SAVE")

            # ---- activation: constants, then the admin context's tables --------------------------
            with m.State("ACTIVATE"):
                # ``cur`` is the function's admin context from here on.
                m.d.comb += [forget_all.eq(1), admin.abort.eq(1), self.retire_restart.eq(1),
                             self.clear_failed.eq(contexts.cur_function)]
                m.next = "CONSTANTS"
            with m.State("CONSTANTS"):
                m.d.comb += [self.ram_wr.row.eq(lay.stage // row),
                             self.ram_wr.data.eq(lay.constants_row()),
                             self.ram_wr.en.eq((1 << row) - 1)]
                with m.If(self.ram_wr_taken):
                    m.next = "LOAD_TABLES"

            def table_error(step, sub_step, err_class):
                report(step, sub_step, err_class, function=True, index=False)

            with m.State("LOAD_TABLES"):
                m.d.comb += [loader.cmd.valid.eq(1), loader.cmd.payload.cxt.eq(local),
                             loader.cmd.payload.tables_only.eq(mode == MODE_REFRESH)]
                with m.If(loader.cmd.ready):
                    m.next = "LOADING"
            with m.State("LOADING"):
                m.d.comb += [loading.eq(1), loader.done.ready.eq(1)]
                with m.If(loader.land):
                    land()
                loaded = loader.done.payload
                with m.If(loader.done.valid):
                    with m.If(~loaded.ok):
                        # A CXT_STS that cannot be translated: the function stops, this
                        # context is not stopped through a CXT_STS the engine may not write.
                        m.d.comb += stopped_cur.eq(loaded.sts_lost)
                        table_error(loaded.step, loaded.sub_step, loaded.err_class)
                    with m.Elif(mode == MODE_REFRESH):
                        m.d.comb += fresh_cur.eq(1)
                        m.next = "TAKE"
                    with m.Else():
                        m.next = "FETCH_DONE"
            with m.State("FETCH_DONE"):
                m.d.comb += known_cur.eq(1)
                with m.If(mode == MODE_ACTIVATE):
                    m.d.comb += [save.eq(1), self.activate_done.eq(1),
                                 self.activate_ok.eq(1)]
                    m.d.sync += activated.bit_select(fn, 1).eq(1)
                    m.d.comb += started_cur.eq(cx.state == CxtState.RUN)     # the admin context
                    m.next = "IDLE"
                with m.Else():
                    # CXT_START: the context runs from the read index in its CXT_STS.
                    m.d.sync += cx.state.eq(CxtState.RUN)
                    m.d.comb += [started_cur.eq(1), fresh_cur.eq(1)]
                    m.d.comb += self.clear_failed.eq(Const(1, n) << cur)
                    start_write("START_STATE", cx.sts, 1, lay.states + CxtState.RUN)
            write_states("START_STATE", goto(m, "START_SAVE"),
                         lambda e: table_error(ErrStep.CXT_STS, ErrSubStep.DAF, e))
            with m.State("START_SAVE"):
                m.d.comb += save.eq(1)
                m.next = "ADMIN_STEP_DONE"

            # ---- a turn of a context -------------------------------------------------------------
            with m.State("LOAD"):
                m.next = "LOAD_LATCH"
            with m.State("LOAD_LATCH"):
                m.d.sync += cx.eq(saved)
                with m.If(contexts.cur_stale):
                    m.d.sync += mode.eq(MODE_REFRESH)
                    m.next = "LOAD_TABLES"
                with m.Else():
                    m.next = "TAKE"
            def context_error(step, sub_step, err_class, *, buf=None, bv=None, index=True):
                report(step, sub_step, err_class, buf=buf, bv=bv, index=index)

            with m.State("TAKE"):
                m.d.comb += [self.take_valid.eq(1), self.take_cxt.eq(cur)]
                m.d.sync += [turn_left.eq((cx.qos + 1) * BATCH), turn.units.eq(0),
                             akeys.valid.eq(0)]
                with m.If(cx.wi_fault != 0):
                    context_error(ErrStep.WRITE_INDEX, ErrSubStep.ATF,
                                  class_of_fault(cx.wi_fault), index=False)
                with m.Else():
                    start_read("WI_RD", cx.wi_ptr, 8)

            def start_turn():
                m.d.sync += [write_index.eq(landed[:64]), k.eq(0)]
                m.d.comb += [fetcher.start.eq(1), fetcher.turn.ring.eq(cx.ring),
                             fetcher.turn.ring_sz.eq(cx.ring_sz),
                             fetcher.turn.pos.eq(cx.read_index),
                             fetcher.turn.slot.eq(cx.slot), fetcher.turn.space.pv.eq(cx.pv),
                             fetcher.turn.space.pasid.eq(cx.pasid),
                             fetcher.turn.space.user.eq(cx.user),
                             fetcher.turn.space.function.eq(fn)]
                m.next = "WI_CHECK"

            read_states("WI_RD", start_turn,
                        lambda e: context_error(ErrStep.WRITE_INDEX, ErrSubStep.DAF, e,
                                                index=False))

            with m.State("WI_CHECK"):
                # A producer is never more than a ring ahead of the consumer: a write index
                # beyond that would run slots a second time (docs/spec-choices.md, "Errors").
                with m.If((write_index > cx.read_index) &
                          (write_index - cx.read_index > cx.ring_sz)):
                    context_error(ErrStep.WRITE_INDEX, ErrSubStep.DVF,
                                  ErrClass.WRITE_INDEX_AHEAD, index=False)
                with m.Else():
                    m.d.sync += turn_on.eq(1)
                    m.next = "BATCH"

            with m.State("BATCH"):
                # Wait for the next batch of the ring, or end the turn.
                m.d.sync += csb_ready.eq(0)
                with m.If(lost | stopping):
                    m.next = "END_TURN"
                with m.Elif(batch.full):
                    with m.If(batch.failed):
                        m.d.sync += has_cst.eq(0)
                        cls = batch.err_class
                        context_error(ErrStep.DESCRIPTOR,
                                      Mux(ErrClass.is_translation(cls), ErrSubStep.ATF,
                                          ErrSubStep.DAF), cls)
                    with m.Elif((turn_left == 0) & others_waiting):
                        m.d.comb += more_cur.eq(1)
                        m.next = "END_TURN"
                    with m.Else():
                        m.d.comb += [self.ram_rd.en.eq(1),
                                     self.ram_rd.row.eq(desc_row(batch.buffer, 0))]
                        m.next = "DECODE"
                with m.Elif(~fetch_busy & (fetcher.pos >= write_index)):
                    m.d.comb += idle_cur.eq(1)      # caught up with the producer
                    m.next = "END_TURN"

            with m.State("END_TURN"):
                m.d.sync += turn_on.eq(0)
                m.next = "END_WAIT"
            with m.State("END_WAIT"):
                # A ring read may have left in END_TURN's clock: let it land first.
                with m.If(~fetch_busy):
                    m.d.sync += k.eq(0)
                    m.d.comb += fetcher.flush.eq(1)
                    m.next = "SAVE"
            with m.State("SAVE"):
                m.d.comb += save.eq(1)
                m.next = "IDLE"

            # ---- decide: one descriptor per clock on the fast path -------------------------------
            presented = Signal()                # the mover command is out: hold it

            def issue_fast(record_stmts):
                """Hand the decoder's command and the record over in one clock, or hold them."""
                m.d.comb += self.mover_cmd.valid.eq(fifo.w_rdy)
                with m.If(fifo.w_rdy & self.mover_cmd.ready):
                    m.d.comb += [fifo.w_en.eq(1)] + record_stmts
                    m.d.sync += presented.eq(0)
                    advance()
                with m.Elif(fifo.w_rdy):
                    m.d.sync += presented.eq(1)

            def push_fast(record_stmts):
                with m.If(fifo.w_rdy):
                    m.d.comb += [fifo.w_en.eq(1)] + record_stmts
                    advance()

            with m.State("DECODE"):
                with m.If(~csb_ready):
                    m.d.sync += csb.eq(csb_ptr)
                m.d.sync += [has_cst.eq(~gen.np), decode_cycles.eq(decode_cycles + 1)]
                with m.If(presented):
                    # A command is out to the mover: it must stay until taken.
                    issue_fast(make_record(mover_op=1, units=units_of(verdict.cmd)))
                with m.Elif(lost | stopping):
                    m.next = "END_TURN"
                with m.Elif(others_first):
                    m.d.comb += more_cur.eq(1)      # back after the others' turns
                    m.next = "END_TURN"
                with m.Elif(~gen.vl):
                    # Not yet written: wait for the next doorbell (sdxi-spec.md 5.1).
                    m.d.comb += idle_cur.eq(1)
                    m.next = "END_TURN"
                with m.Elif(cx.pv & ~gen.np & ~csb_ready):
                    start_translate("CST_XLATE", csb_ptr, write=1)
                with m.Elif(gen.fe & ~drained):
                    pass                             # fence: wait for everything earlier
                with m.Else():
                    with m.Switch(verdict.action):
                        with m.Case(Action.INVALID):
                            context_error(ErrStep.DESCRIPTOR, ErrSubStep.DVF, verdict.err_class,
                                          buf=verdict.buf, bv=verdict.bv)
                        with m.Case(Action.PUSH):
                            push_fast(make_record(mover_op=0, intr=verdict.intr,
                                                  vec=verdict.vector,
                                                  vec_function=verdict.intr_function))
                        with m.Case(Action.ISSUE):
                            issue_fast(make_record(mover_op=1, units=units_of(verdict.cmd)))
                        with m.Case(Action.CHECK):
                            m.d.sync += [mover.eq(verdict.cmd), fill_rows.eq(verdict.fill_rows),
                                         keys.eq(verdict.keys), key_idx.eq(verdict.key_idx),
                                         key_idx1.eq(verdict.key_idx1), key_buf.eq(0),
                                         key_intr.eq(verdict.key_intr)]
                            m.next = "AKEY"
                        with m.Case(Action.ADMIN):
                            with m.If(~drained):
                                pass                 # admin operations wait for quiet
                            with m.Elif((sub == AdminOp.AKEY_UPD) | (sub == AdminOp.RKEY_UPD)):
                                m.d.sync += akeys.valid.eq(0)
                                m.next = "RECORD"
                            with m.Else():
                                m.next = "ADMIN"

            def cst_translated(paddr):
                m.d.sync += [csb.eq(paddr), csb_ready.eq(1)]
                reread_descriptor()
                m.next = "DECODE"

            def cst_refused(fault):
                m.d.sync += has_cst.eq(0)           # nowhere to write its er
                context_error(ErrStep.CST_BLK, ErrSubStep.ATF, class_of_fault(fault))

            translate_states(m, "CST_XLATE", own_xlate, self.translated, ok=cst_translated,
                             fault=cst_refused)

            # ---- admin operations over a context range (the pipeline is empty) -------------------
            with m.State("ADMIN"):
                # The admin context's entry is saved first: target contexts reuse ``cx``. The
                # range goes to the admin unit now: the targets' structures will be read over
                # the descriptor.
                m.d.comb += [save.eq(1), self.tlb_flush.eq(sub == AdminOp.SYNC),
                             admin.job.payload.first.eq(admin_range.cxt_start),
                             admin.job.payload.last.eq(admin_range.cxt_end)]
                m.d.sync += akeys.valid.eq(0)
                with m.Switch(sub):
                    with m.Case(AdminOp.CXT_START_NM, AdminOp.CXT_START_RS):
                        m.d.comb += admin.job.payload.action.eq(AdminAction.START)
                    with m.Case(AdminOp.CXT_STOP):
                        m.d.comb += admin.job.payload.action.eq(AdminAction.STOP)
                    with m.Default():          # CXT_UPD, SYNC
                        m.d.comb += admin.job.payload.action.eq(AdminAction.MARK)
                with m.If((sub == AdminOp.SYNC) & (sync.flt != SyncFilter.CXT)):
                    m.next = "ADMIN_RETURN"
                with m.Else():
                    m.d.comb += admin.job.valid.eq(1)       # the unit is idle: taken now
                    m.next = "ADMIN_WALK"
            with m.State("ADMIN_WALK"):
                step = admin.step.payload
                with m.If(admin.step.valid):
                    m.d.sync += cur.eq(Cat(step.cxt[:cbits], fn))
                    with m.Switch(step.action):
                        with m.Case(AdminAction.START):
                            m.d.sync += mode.eq(MODE_START)
                            m.next = "LOAD_TABLES"
                        with m.Case(AdminAction.STOP):
                            m.next = "STOP_LOAD"
                        with m.Default():
                            m.next = "ADMIN_MARK"
                with m.Elif(~admin.busy):
                    m.d.sync += cur.eq(of_function(fn))
                    m.next = "ADMIN_RETURN"
            with m.State("ADMIN_MARK"):
                m.d.comb += stale_cur.eq(1)     # re-read before its next use
                m.next = "ADMIN_STEP_DONE"
            stop_states("STOP", CxtState.STOP_SW, "START_SAVE")
            with m.State("ADMIN_STEP_DONE"):
                m.d.comb += admin.step.ready.eq(1)
                m.next = "ADMIN_WALK"
            with m.State("ADMIN_RETURN"):
                reread_descriptor()             # the targets' structures were read over it
                m.next = "ADMIN_RELOAD"
            with m.State("ADMIN_RELOAD"):
                m.d.sync += cx.eq(saved)
                m.next = "RECORD"

            # ---- AKey checks (step 11) on a cache miss -------------------------------------------
            def keep_space(space):
                """The buffer this key covers gets its address space: key 0 is a FROM_RAM's
                destination and otherwise the source, key 1 the destination."""
                with m.If(key_buf | (mover.op == MoverOp.FROM_RAM)):
                    m.d.sync += mover.dst_space.eq(space)
                with m.Else():
                    m.d.sync += mover.src_space.eq(space)

            cached = akey_lookup(akeys, key_idx)
            with m.State("AKEY"):
                with m.If(keys == 0):
                    with m.If(key_intr):
                        m.next = "RECORD"
                    with m.Elif((mover.op == MoverOp.FROM_RAM)):
                        m.next = "IMAGE_WAIT"
                    with m.Else():
                        m.next = "RECORD"
                with m.Elif((key_idx >> (cx.akey_sz + 8)) != 0):
                    context_error(ErrStep.AKEY, ErrSubStep.DVF, ErrClass.AKEY_RANGE, buf=key_buf)
                with m.Elif(cached.hit & (~key_intr | cached.intr_ok)):
                    keep_space(cached.space)
                    m.d.sync += [vector.eq(cached.vector),
                                 vector_function.eq(cached.space.function), keys.eq(keys >> 1),
                                 key_idx.eq(key_idx1), key_buf.eq(1)]
                with m.Else():
                    start_read("AKEY_RD", cx.akey + (key_idx << 4), 16)
            def accept_key(entry, function, vector_ok):
                """The key checked out (``entry``: its AKEY_ENT or, for another function's
                memory, its RKEY_ENT view): its buffer is in ``entry``'s space of ``function``;
                cache it; on to the next."""
                space = Signal(BufferSpace())
                m.d.comb += [space.pv.eq(entry.pv), space.pasid.eq(entry.pasid),
                             space.user.eq(~entry.pr), space.function.eq(function)]
                iv, vec = entry.iv & vector_ok, entry.intr_num
                keep_space(space)
                for i in range(2):
                    with m.If(akeys.next == i):
                        m.d.sync += [akeys.valid[i].eq(1), akeys.idx[i].eq(key_idx),
                                     akeys.iv[i].eq(iv), akeys.vec[i].eq(vec),
                                     akeys.space[i].eq(space)]
                m.d.sync += [akeys.next.eq(~akeys.next), vector.eq(vec),
                             vector_function.eq(space.function), keys.eq(keys >> 1),
                             key_idx.eq(key_idx1), key_buf.eq(1)]
                reread_descriptor()         # the entry was read over it
                m.next = "AKEY"

            def check_akey():
                entry = data.View(layout_of(AKEY_ENT), landed[:AKEY_ENT.size * 8])
                vector_ok = entry.intr_num < cfg.msix_vectors
                local_key = (entry.tgt_sfunc == LOCAL_SFUNC) | (entry.tgt_sfunc == sfunc_of(fn))
                # Through another function's key, its RKey entry says whether it interrupts.
                with m.If(~entry.vl | (key_intr & local_key & ~entry.iv)):
                    context_error(ErrStep.AKEY, ErrSubStep.DVF, ErrClass.AKEY_INVALID, buf=key_buf)
                with m.Elif(~local_key & (entry.tgt_sfunc > sfunc_of(fns - 1))):
                    context_error(ErrStep.AKEY, ErrSubStep.DVF, ErrClass.AKEY_UNSUPPORTED,
                                  buf=key_buf)
                with m.Elif(~local_key):
                    # Another function of the group: its RKey table decides (step 12).
                    m.d.sync += [target.eq(function_of_sfunc(entry.tgt_sfunc)),
                                 rkey_idx.eq(entry.rkey)]
                    m.next = "RKEY"
                with m.Elif(key_intr & ~vector_ok):
                    context_error(ErrStep.AKEY, ErrSubStep.DVF, ErrClass.BAD_PARAMETER,
                                  buf=key_buf)
                with m.Else():
                    accept_key(entry, fn, vector_ok)

            read_states("AKEY_RD", check_akey,
                        lambda e: context_error(ErrStep.AKEY, ErrSubStep.DAF, e, buf=key_buf))

            # ---- RKey checks (step 12): the target function's table, read as the target ------
            def rkey_error(sub_step, cls):
                context_error(ErrStep.RKEY, sub_step, cls, buf=key_buf)
                m.d.sync += notify.eq(1)            # after ``report``'s clear: this one wins

            with m.State("RKEY"):
                with m.If(~target_rkey.en | ((rkey_idx >> (target_rkey.sz + 8)) != 0)):
                    rkey_error(ErrSubStep.DVF, ErrClass.RKEY_RANGE)
                with m.Else():
                    start_read("RKEY_RD",
                               Cat(Const(0, 12), target_rkey.ptr) + (rkey_idx << 4), 16,
                               function=target)

            def check_rkey():
                entry = data.View(layout_of(RKEY_ENT), landed[:RKEY_ENT.size * 8])
                vector_ok = entry.intr_num < cfg.msix_vectors
                with m.If(~entry.vl | (key_intr & ~entry.iv)):
                    rkey_error(ErrSubStep.DVF, ErrClass.RKEY_INVALID)
                with m.Elif(entry.req_sfunc != sfunc_of(fn)):
                    rkey_error(ErrSubStep.DVF, ErrClass.RKEY_DENIED)
                with m.Elif(key_intr & ~vector_ok):
                    rkey_error(ErrSubStep.DVF, ErrClass.BAD_PARAMETER)
                with m.Else():
                    accept_key(entry, target, vector_ok)

            read_states("RKEY_RD", check_rkey,
                        lambda e: rkey_error(ErrSubStep.DAF, e))


            # ---- the fill / write-immediate image (waits until the mover no longer reads it) -----
            with m.State("IMAGE_WAIT"):
                with m.If(self.mover_idle & (fifo.level == 0) & self.retire_idle):
                    m.d.sync += fill_row.eq(0)
                    m.next = "IMAGE"
            with m.State("IMAGE"):
                is_fill = typ == OpGroup.VENDOR
                pattern, psz = fill.pattern, fill.psz
                fill_data = Mux(psz == 0, pattern[:64].replicate(w // 64),
                                Mux(psz == 1, pattern[:128].replicate(w // 128),
                                    pattern[:256].replicate(w // 256)))
                imm_data = Cat(imm.data, Const(0, max(0, w - 256)))[:w]
                m.d.comb += [self.ram_wr.row.eq(lay.fill // row + fill_row),
                             self.ram_wr.data.eq(Mux(is_fill, fill_data, imm_data)),
                             self.ram_wr.en.eq((1 << row) - 1)]
                last_row = Mux(is_fill, fill_rows - 1, (dsc.WRT_IMM_MAX - 1) // row)
                with m.If(self.ram_wr_taken):
                    m.d.sync += fill_row.eq(fill_row + 1)
                    with m.If(fill_row == last_row):
                        m.d.sync += [image.ok.eq(is_fill), image.psz.eq(psz),
                                     image.pattern.eq(pattern), image.rows.eq(fill_rows)]
                        m.next = "RECORD"

            # ---- slow-path issue: the record, then the mover command -----------------------------
            with m.State("RECORD"):
                needs_mover = ~key_intr & (typ != OpGroup.ADMIN) & (typ != OpGroup.INTR) & \
                    ~((typ == OpGroup.DMABASE) & (sub == DmaBaseOp.NOP))
                with m.If(fifo.w_rdy):
                    m.d.comb += [fifo.w_en.eq(1)] + make_record(
                        mover_op=needs_mover, intr=key_intr, vec=vector,
                        vec_function=vector_function,
                        units=Mux(needs_mover, units_of(mover), 0))
                    with m.If(needs_mover):
                        m.next = "MOVE"
                    with m.Else():
                        m.next = "ADVANCE"
            with m.State("MOVE"):
                m.d.comb += [self.mover_cmd.valid.eq(1), cmd_from_mover.eq(1)]
                with m.If(self.mover_cmd.ready):
                    m.next = "ADVANCE"
            with m.State("ADVANCE"):
                advance()

            # ---- a descriptor-level error: wait for everything earlier, then end the context -----
            with m.State("ERR_DRAIN"):
                m.d.sync += turn_on.eq(0)
                with m.If(lost & ~err_fn):
                    m.next = "END_TURN"      # an earlier descriptor failed first: that one counts
                with m.Elif(drained & ~fetch_busy):
                    m.d.sync += cx.state.eq(CxtState.ERR_FN)
                    m.d.comb += stopped_cur.eq(1)
                    m.next = "REPORT"
            with m.State("REPORT"):
                # CXT_STS says ERR_FN, the entry is logged, the CST gets er (not for a table
                # error, which stops the function and names no descriptor).
                rep = self.error_report
                m.d.comb += [rep.valid.eq(1), rep.payload.found.eq(found),
                             rep.payload.found.index.eq(cx.read_index),
                             rep.payload.stop.eq(~err_fn), rep.payload.sts.eq(cx.sts),
                             rep.payload.cst.eq(~err_fn & found.div & has_cst),
                             rep.payload.csb.eq(csb), rep.payload.notify.eq(notify),
                             rep.payload.notify_function.eq(target)]
                with m.If(rep.ready):
                    with m.If(err_fn):
                        m.next = "FN_ERROR"
                    with m.Else():
                        m.next = "END_TURN"
            with m.State("FN_ERROR"):
                with m.If(mode == MODE_ACTIVATE):
                    m.d.comb += [self.activate_done.eq(1), self.activate_ok.eq(0)]
                with m.Else():
                    m.d.comb += self.fatal.eq(1)
                m.next = "END_TURN"

        # What the loader learns of the context it loads (only while the state machine waits
        # for it, so nothing else writes ``cx`` then).
        up = loader.update
        new = up.entry
        with m.If(up.l1):
            m.d.sync += [cx.akey.eq(new.akey), cx.akey_sz.eq(new.akey_sz),
                         cx.max_buffer.eq(new.max_buffer), cx.opb.eq(new.opb), cx.pv.eq(new.pv),
                         cx.pasid.eq(new.pasid), cx.user.eq(new.user)]
        with m.If(up.ctl):
            m.d.sync += [cx.ring.eq(new.ring), cx.ring_sz.eq(new.ring_sz), cx.qos.eq(new.qos),
                         cx.wi_fault.eq(0)]
        with m.If(up.sts_addr):
            m.d.sync += cx.sts.eq(new.sts)
        with m.If(up.wi_addr):
            m.d.sync += cx.wi_ptr.eq(new.wi_ptr)
        with m.If(up.wi_fault):
            m.d.sync += cx.wi_fault.eq(new.wi_fault)
        with m.If(up.sts):
            m.d.sync += [cx.read_index.eq(new.read_index), cx.state.eq(new.state)]
        with m.If(up.slot):
            m.d.sync += cx.slot.eq(new.slot)

        # After the state machine, so that these win over anything a state wrote.
        with m.If(advancing):
            m.d.sync += [cx.read_index.eq(cx.read_index + 1), csb_ready.eq(0),
                         cx.slot.eq(Mux(cx.slot + 1 == cx.ring_sz, 0, cx.slot + 1)),
                         k.eq(Mux(last_of_batch, 0, k + 1)),
                         turn_left.eq(Mux(turn_left == 0, 0, turn_left - 1)),
                         decoded_count.eq(decoded_count + 1)]
            with m.If(last_of_batch):
                m.d.comb += fetcher.consume.eq(1)
            with m.Else():
                m.d.comb += [self.ram_rd.en.eq(1),
                             self.ram_rd.row.eq(desc_row(batch.buffer, k + 1))]

        return m
