"""Data mover: the copy, fill and replicate datapath of the context engine.

Commands are cut into chunks; the chunks of many commands are in flight at once over several
read and write clients of the DMA engines, and results come back in command order. So a long
copy keeps both directions of the link busy, and a stream of small copies overlaps.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sdxi_defs.errors import ErrClass
from sdxi_defs.page_tables import Fault
from sdxi_defs.ram_map import CHUNK, IMAGE, READ_SLOTS, REPCOPY_SLOTS, SLOT_BYTES

from ..common.priority import lowest_set
from ..config import FUNCTION_BITS
from ..mmu.tlb import Lookup, Translation
from ..pcie.dma_read import ReadRequest, ReadStatus
from ..pcie.dma_write import WriteRelease, WriteRequest, WriteStatus
from .error_classes import class_of_fault, class_of_read_error, class_of_write_error


__all__ = ["DataMover", "MoverOp", "MoverCommand", "MoverResult", "BufferSpace", "CHUNKS", "PAGE"]

CHUNKS = 32               #: chunks tracked in flight (a power of two); a chunk's index is its id
PAGE = 4096               #: translation granule: no chunk of a pv = 1 buffer crosses one


class MoverOp(enum.Enum, shape=2):
    COPY = 0        #: ``src`` to ``dst``
    FROM_RAM = 1    #: ``dst`` from RAM at ``ram``, restarting there every IMAGE bytes
    REPCOPY = 2     #: IMAGE bytes of ``src`` read once, then written over and over to ``dst``


class BufferSpace(data.StructLayout):
    """How a buffer's addresses are used (its AKey entry, SDXI Table 3-7): ``pv`` = 0, bus
    addresses as they are; ``pv`` = 1, virtual addresses in ``pasid``'s address space, accessed
    as a user unless the entry's pr bit is set (``user`` = ~pr). ``function`` is the function
    whose requester ID the accesses carry and whose PASID table ``pasid`` is looked up in: the
    descriptor's own function, or the target function of an RKey (docs/spec-choices.md)."""

    def __init__(self):
        super().__init__({"pv": 1, "pasid": 20, "user": 1, "function": FUNCTION_BITS})


class MoverCommand(data.StructLayout):
    """Move ``last + 1`` bytes (1 to 2^32). For FROM_RAM, RAM at ``ram`` holds an IMAGE-byte
    image (or all of a shorter transfer) of what each IMAGE bytes of ``dst`` get. ``function``
    issued the command: a hard stop of that function aborts it."""

    def __init__(self, ram_addr_bits):
        super().__init__({"op": MoverOp, "src": 64, "dst": 64, "last": 32, "ram": ram_addr_bits,
                          "src_space": BufferSpace(), "dst_space": BufferSpace(),
                          "function": FUNCTION_BITS})


class MoverResult(data.StructLayout):
    """``error`` is 0 or an ``ErrClass``; ``buffer`` is the descriptor's operand it hit: 0 the
    source, 1 the destination (a FROM_RAM destination is operand 0 for a translation fault)."""

    def __init__(self):
        super().__init__({"error": 8, "buffer": 1, "aborted": 1})


class DataMover(wiring.Component):
    """Executes commands with their chunks overlapped (docs/context-engine.md, "Data mover").

    A command is cut into chunks as fast as there is room: COPY chunks (CHUNK bytes, aligned to
    CHUNK of the source) each take a free RAM slot and a read; FROM_RAM chunks (IMAGE
    bytes) need no read. Chunks are written in order, a COPY chunk as soon as its read has
    completed; many writes wait for their confirmation at once. A command's result comes once
    all its chunks and all earlier ones have been written and confirmed by the hard block, so
    whatever the context engine writes after it (a completion status) follows the data.
    REPCOPY waits for an empty mover, reads its block into the first slots and holds them
    until its last chunk.

    A buffer in a pv = 1 address space is translated a 4 KiB page at a time through
    ``translate`` / ``translated`` (the TLB) as the cutter reaches the page, and no chunk crosses
    one of its pages; a COPY source (read) and destination (write) are looked up as such. A
    fault ends the command where it is: the chunks already cut (permitted pages) still run,
    nothing more is cut, and the result carries the fault's class (``FAULT_CLASS``) and
    buffer. While a page is being cut, the next page of each translated buffer is looked up
    ahead (a fault found ahead is not reported until the cutter reaches that page and asks
    again). A REPCOPY block read through a translation must lie in one page (a block that does
    not ends with BAD_PARAMETER before anything moves). Translations are held for the command
    being cut only.

    A DMA error is reported in the result of the command it hit (the first one, with its
    operand); the command's other chunks still run. ``abort`` (one bit per function: a hard
    stop) ends the command being cut, if its function's bit is set, and every later one of that
    function at once with ``aborted``; chunks in flight finish.

    Members
    -------
    cmd : In(stream.Signature(MoverCommand))
    result : Out(stream.Signature(MoverResult))
    rd_req, rd_status : the read client; a request's id is its chunk's index
    wr_req, wr_status, wr_released : the write client, ids as for reads; a slot is free again
        once the write engine has read it (``released``), before the write is confirmed
    translate : Out(stream.Signature(Lookup)), translated : In(stream.Signature(Translation))
        Page translations, one outstanding.
    abort : In(1 << FUNCTION_BITS)
    idle : Out(1)
        Nothing in flight: RAM images may be rewritten.
    """

    def __init__(self, *, ram_addr_bits, row_bytes, slot_base):
        self._ram_bits = ram_addr_bits
        self._row = row_bytes
        self._slot_base = slot_base
        if slot_base % row_bytes:
            raise ValueError("the slots must start on a RAM row")
        super().__init__({
            "cmd": In(stream.Signature(MoverCommand(ram_addr_bits))),
            "result": Out(stream.Signature(MoverResult())),
            "rd_req": Out(stream.Signature(ReadRequest(ram_addr_bits))),
            "rd_status": In(stream.Signature(ReadStatus(), always_ready=True)),
            "wr_req": Out(stream.Signature(WriteRequest(ram_addr_bits))),
            "wr_status": In(stream.Signature(WriteStatus(), always_ready=True)),
            "wr_released": In(stream.Signature(WriteRelease(), always_ready=True)),
            "translate": Out(stream.Signature(Lookup())),
            "translated": In(stream.Signature(Translation())),
            "abort": In(1 << FUNCTION_BITS),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        row_mask = self._row - 1
        slot_ram = [self._slot_base + s * SLOT_BYTES for s in range(READ_SLOTS)]
        seq_bits = (CHUNKS - 1).bit_length()

        # ---- chunks in flight: created at head, written at wr, retired at tail -------------------
        # What a chunk is, written once when it is made, in three tables by where it is read:
        # by the writer, by whatever frees slots (read status, release, writer), and at retire.
        head = Signal(seq_bits + 1)
        wr = Signal(seq_bits + 1)
        tail = Signal(seq_bits + 1)
        room = Signal()
        m.d.comb += room.eq((head - tail)[:seq_bits + 1] < CHUNKS)     # modulo the counters
        chunk_write = data.StructLayout({"length": 13, "dst": 64, "ram": self._ram_bits,
                                         "function": FUNCTION_BITS})
        chunk_use = data.StructLayout({
            "slot": range(READ_SLOTS),
            "copy": 1,        # holds a slot until written
            "write": 1,       # has data to write
            "release": 1,     # frees the REPCOPY slots when written (or skipped)
        })
        chunk_end = data.StructLayout({
            "last": 1,        # ends its command
            "abort": 1,
            "error": 8,       # found when cut (a fault, a bad REPCOPY block)
            "buffer": 1,
            "write": 1,
        })
        m.submodules.chunk_write = write_table = Memory(shape=chunk_write, depth=CHUNKS, init=[])
        m.submodules.chunk_use = use_table = Memory(shape=chunk_use, depth=CHUNKS, init=[])
        m.submodules.chunk_end = end_table = Memory(shape=chunk_end, depth=CHUNKS, init=[])
        # Errors the engines report, by chunk: written with every status, read at retire.
        m.submodules.read_errors = read_errors = Memory(shape=3, depth=CHUNKS, init=[])
        m.submodules.write_errors = write_errors = Memory(shape=2, depth=CHUNKS, init=[])

        new = Signal()
        made = Signal(data.StructLayout({"write": chunk_write, "use": chunk_use, "end": chunk_end,
                                         "ready": 1, "done": 1}))
        h = head[:seq_bits]
        for table, part in ((write_table, made.write), (use_table, made.use),
                            (end_table, made.end)):
            port = table.write_port()
            m.d.comb += [port.en.eq(new), port.addr.eq(h), port.data.eq(part)]
        with m.If(new):
            m.d.sync += head.eq(head + 1)

        def new_chunk(*, length, dst, ram, last, copy=0, write=1, ready=1, done=0, slot=0,
                      release=0, abort=0, err=0, buf=0):
            m.d.comb += [
                new.eq(1),
                made.write.length.eq(length), made.write.dst.eq(dst), made.write.ram.eq(ram),
                made.write.function.eq(self.cmd.payload.dst_space.function),
                made.use.slot.eq(slot), made.use.copy.eq(copy), made.use.write.eq(write),
                made.use.release.eq(release),
                made.end.last.eq(last), made.end.abort.eq(abort), made.end.error.eq(err),
                made.end.buffer.eq(buf), made.end.write.eq(write),
                made.ready.eq(ready), made.done.eq(done),
            ]

        # Per-chunk flags, flip-flops updated once a clock from set masks; a new chunk's bits
        # are overwritten.
        c_ready = Signal(CHUNKS)      # data in place (or nothing to wait for)
        c_done = Signal(CHUNKS)
        c_read_failed = Signal(CHUNKS)
        head_bit = Signal(CHUNKS)
        m.d.comb += head_bit.eq(Mux(new, 1 << h, 0))
        ready_set, done_set, failed_set = Signal(CHUNKS), Signal(CHUNKS), Signal(CHUNKS)
        m.d.sync += [
            c_ready.eq((c_ready & ~head_bit) | Mux(made.ready, head_bit, 0) | ready_set),
            c_done.eq((c_done & ~head_bit) | Mux(made.done, head_bit, 0) | done_set),
            c_read_failed.eq((c_read_failed & ~head_bit) | failed_set),
        ]

        # Slots in use: flip-flops updated once a clock from the slots taken (``slot_take``) and
        # the slots whose data has left the RAM or will never come (``slot_free``).
        slot_busy = Signal(READ_SLOTS)
        slot_take = Signal(READ_SLOTS)
        slot_free = Signal(READ_SLOTS)
        repcopy_slots = (1 << REPCOPY_SLOTS) - 1
        m.d.sync += slot_busy.eq((slot_busy | slot_take) & ~slot_free)
        free_slot, have_slot = lowest_set(m, ~slot_busy, name="free_slot")

        # The read request waiting for the read engine, one at a time.
        rd = self.rd_req
        read_free = Signal()
        m.d.comb += read_free.eq(~rd.valid | rd.ready)
        with m.If(rd.ready):
            m.d.sync += rd.valid.eq(0)

        def start_read(slot, addr, length, ram):
            m.d.comb += slot_take.eq(1 << slot)
            m.d.sync += [rd.valid.eq(1), rd.payload.addr.eq(addr), rd.payload.length.eq(length),
                         rd.payload.ram_addr.eq(ram), rd.payload.id.eq(h),
                         rd.payload.function.eq(self.cmd.payload.src_space.function)]

        # ---- cutting commands into chunks ------------------------------------------------------
        p = self.cmd.payload
        pos = Signal(33)
        total = Signal(33)
        m.d.comb += total.eq(p.last + 1)
        left = Signal(33)
        m.d.comb += left.eq(total - pos)
        src_here = Signal(64)
        dst_here = Signal(64)
        m.d.comb += [src_here.eq(p.src + pos), dst_here.eq(p.dst + pos)]

        # ---- translations of pv = 1 buffers: the page being cut and the next one --------------
        page_bits = (PAGE - 1).bit_length()
        vpn_bits = 64 - page_bits
        names = ("src", "dst")
        here = (src_here, dst_here)
        used = (p.src_space.pv & (p.op != MoverOp.FROM_RAM), p.dst_space.pv)
        last_page = [Signal(vpn_bits, name=f"{n}_last_page") for n in names]
        m.d.comb += [
            last_page[0].eq(Mux(p.op == MoverOp.REPCOPY, p.src + IMAGE - 1,
                                p.src + p.last)[page_bits:]),
            last_page[1].eq((p.dst + p.last)[page_bits:]),
        ]
        held = [Signal(name=f"{n}_held") for n in names]
        vpn = [Signal(vpn_bits, name=f"{n}_vpn") for n in names]
        pfn = [Signal(vpn_bits, name=f"{n}_pfn") for n in names]
        ahead = [Signal(name=f"{n}_ahead") for n in names]          # the page after vpn
        ahead_pfn = [Signal(vpn_bits, name=f"{n}_ahead_pfn") for n in names]
        need = [Signal(name=f"need_{n}") for n in names]
        demand = [Signal(name=f"demand_{n}") for n in names]
        want_ahead = [Signal(name=f"want_ahead_{n}") for n in names]
        for b in range(2):
            page = here[b][page_bits:]
            promote = held[b] & ahead[b] & (page == vpn[b] + 1)
            m.d.comb += [
                need[b].eq(used[b] & ~(held[b] & (vpn[b] == page))),
                demand[b].eq(need[b] & ~promote),
                want_ahead[b].eq(used[b] & held[b] & ~ahead[b] & (vpn[b] != last_page[b])),
            ]
            with m.If(need[b] & promote):
                m.d.sync += [vpn[b].eq(vpn[b] + 1), pfn[b].eq(ahead_pfn[b]), ahead[b].eq(0)]
        need_src, need_dst = need
        src_phys, dst_phys = Signal(64), Signal(64)
        m.d.comb += [
            src_phys.eq(Mux(p.src_space.pv, Cat(src_here[:page_bits], pfn[0]), src_here)),
            dst_phys.eq(Mux(p.dst_space.pv, Cat(dst_here[:page_bits], pfn[1]), dst_here)),
        ]

        # One lookup at a time: the page the cutter waits for, else the page after a held one.
        cutting = Signal()                  # the cutter is in a state that waits on ``need``
        t_busy, t_buf, t_ahead, t_stale = Signal(), Signal(), Signal(), Signal()
        t_vpn = Signal(vpn_bits)
        fault_pending = Signal()
        fault_class = Signal(8)
        fault_buf = Signal()
        ask_buf, ask_ahead = Signal(), Signal()
        ask_vpn = Signal(vpn_bits)
        with m.If(demand[0] | demand[1]):
            m.d.comb += [ask_buf.eq(~demand[0]), ask_ahead.eq(0)]
        with m.Else():
            m.d.comb += [ask_buf.eq(~want_ahead[0]), ask_ahead.eq(1)]
        m.d.comb += ask_vpn.eq(Mux(ask_ahead, Mux(ask_buf, vpn[1], vpn[0]) + 1,
                                   Mux(ask_buf, dst_here, src_here)[page_bits:]))
        asking = Mux(ask_ahead, want_ahead[0] | want_ahead[1],
                     cutting & (demand[0] | demand[1]))
        m.d.comb += [
            self.translate.valid.eq(self.cmd.valid & asking & ~t_busy & ~fault_pending),
            self.translate.payload.pasid.eq(Mux(ask_buf, p.dst_space.pasid, p.src_space.pasid)),
            self.translate.payload.vaddr.eq(Cat(Const(0, page_bits), ask_vpn)),
            self.translate.payload.write.eq(ask_buf),
            self.translate.payload.user.eq(Mux(ask_buf, p.dst_space.user, p.src_space.user)),
            self.translate.payload.function.eq(Mux(ask_buf, p.dst_space.function,
                                                   p.src_space.function)),
            self.translated.ready.eq(1),
        ]
        with m.If(self.translate.valid & self.translate.ready):
            m.d.sync += [t_busy.eq(1), t_buf.eq(ask_buf), t_ahead.eq(ask_ahead), t_vpn.eq(ask_vpn)]
        t = self.translated.payload
        with m.If(self.translated.valid):
            m.d.sync += [t_busy.eq(0), t_stale.eq(0)]
            with m.If(t_stale):
                pass                            # asked for a command that has ended
            with m.Elif(t_ahead):
                with m.If(t.fault == Fault.NONE):   # a fault ahead is asked again when reached
                    for b in range(2):
                        with m.If(t_buf == b):
                            m.d.sync += [ahead[b].eq(1), ahead_pfn[b].eq(t.paddr[page_bits:])]
            with m.Elif(t.fault != Fault.NONE):
                m.d.sync += [fault_pending.eq(1), fault_class.eq(class_of_fault(t.fault)),
                             fault_buf.eq(t_buf & (p.op != MoverOp.FROM_RAM))]
            with m.Else():
                for b in range(2):
                    with m.If(t_buf == b):
                        m.d.sync += [held[b].eq(1), vpn[b].eq(t_vpn),
                                     pfn[b].eq(t.paddr[page_bits:]), ahead[b].eq(0)]
        with m.If(self.cmd.valid & self.cmd.ready):
            # Translations are held for one command.
            m.d.sync += [held[0].eq(0), held[1].eq(0), ahead[0].eq(0), ahead[1].eq(0),
                         fault_pending.eq(0)]
            with m.If(t_busy & ~self.translated.valid):
                m.d.sync += t_stale.eq(1)

        def shortest(*lengths):
            out = lengths[0]
            for length in lengths[1:]:
                out = Mux(length < out, length, out)
            return out

        # A chunk ends at the command's end, at a CHUNK of the source (COPY) or the image's end
        # (FROM_RAM, REPCOPY writes), and at a page of a translated destination.
        to_dst_page = Signal(page_bits + 1)
        m.d.comb += to_dst_page.eq(Mux(p.dst_space.pv, PAGE - dst_here[:page_bits], PAGE))
        image_off = Signal(page_bits)
        m.d.comb += image_off.eq(pos[:(IMAGE - 1).bit_length()])
        copy_len = Signal(13)
        to_boundary = Signal(13)
        m.d.comb += to_boundary.eq(CHUNK - src_here[:(CHUNK - 1).bit_length()])
        m.d.comb += copy_len.eq(shortest(left, to_boundary, to_dst_page))
        image_len = Signal(13)
        m.d.comb += image_len.eq(shortest(left, IMAGE - image_off, to_dst_page))
        rep_ram = Signal(self._ram_bits)
        rep_seq = Signal(seq_bits)
        aborting = Signal()
        m.d.comb += aborting.eq(self.abort.bit_select(self.cmd.payload.function, 1))
        def end_command():
            m.d.comb += self.cmd.ready.eq(1)
            m.d.sync += pos.eq(0)

        with m.FSM(init="CUT"):
            with m.State("CUT"):
                m.d.comb += cutting.eq(1)
                with m.If(self.cmd.valid & room):
                    with m.If(aborting):
                        new_chunk(length=0, dst=0, ram=0, last=1, write=0, done=1, abort=1)
                        end_command()
                    with m.Elif(fault_pending):
                        # Nothing more of this command moves; what was cut still runs.
                        new_chunk(length=0, dst=0, ram=0, last=1, write=0, done=1,
                                  err=fault_class, buf=fault_buf)
                        end_command()
                    with m.Elif(need_src | need_dst):
                        pass                    # waiting for a translation
                    with m.Elif(p.op == MoverOp.COPY):
                        with m.If(have_slot & read_free):
                            ram_of_slot = Signal(self._ram_bits)
                            for s in range(READ_SLOTS):
                                with m.If(free_slot == s):
                                    m.d.comb += ram_of_slot.eq(slot_ram[s] + (src_here & row_mask))
                            last = copy_len == left
                            new_chunk(length=copy_len, dst=dst_phys, ram=ram_of_slot,
                                      last=last, copy=1, ready=0, slot=free_slot)
                            start_read(free_slot, src_phys, copy_len, ram_of_slot)
                            with m.If(last):
                                end_command()
                            with m.Else():
                                m.d.sync += pos.eq(pos + copy_len)
                    with m.Elif(p.op == MoverOp.FROM_RAM):
                        last = image_len == left
                        new_chunk(length=image_len, dst=dst_phys, ram=p.ram + image_off,
                                  last=last)
                        with m.If(last):
                            end_command()
                        with m.Else():
                            m.d.sync += pos.eq(pos + image_len)
                    with m.Elif(p.src_space.pv & (p.src[:page_bits] != 0)):
                        new_chunk(length=0, dst=0, ram=0, last=1, write=0, done=1,
                                  err=ErrClass.BAD_PARAMETER, buf=0)
                        end_command()
                    with m.Else():
                        m.next = "REP_DRAIN"

            with m.State("REP_DRAIN"):
                # The block needs the first slots: wait until nothing is in flight.
                with m.If((head == tail) & (slot_busy == 0) & read_free):
                    ram = slot_ram[0] + (p.src & row_mask)
                    m.d.sync += [rep_ram.eq(ram), rep_seq.eq(head[:seq_bits])]
                    new_chunk(length=0, dst=0, ram=ram, last=0, write=0, ready=0)
                    start_read(0, src_phys, IMAGE, ram)
                    m.d.comb += slot_take.eq(repcopy_slots)     # the block spans them
                    m.next = "REP_WAIT"
            with m.State("REP_WAIT"):
                done = c_done.bit_select(rep_seq, 1)
                failed = c_read_failed.bit_select(rep_seq, 1)
                with m.If(done & room):
                    with m.If(failed | aborting):
                        new_chunk(length=0, dst=0, ram=0, last=1, write=0, done=1,
                                  release=1, abort=aborting)
                        end_command()
                        m.next = "CUT"
                    with m.Else():
                        m.next = "REP_WRITE"
            with m.State("REP_WRITE"):
                m.d.comb += cutting.eq(1)
                with m.If(room):
                    last = image_len == left
                    with m.If(aborting | fault_pending):
                        new_chunk(length=0, dst=0, ram=0, last=1, write=0, done=1, release=1,
                                  abort=aborting, err=Mux(aborting, 0, fault_class),
                                  buf=fault_buf)
                        end_command()
                        m.next = "CUT"
                    with m.Elif(need_dst):
                        pass                    # waiting for a translation
                    with m.Else():
                        new_chunk(length=image_len, dst=dst_phys, ram=rep_ram + image_off,
                                  last=last, release=last)
                        with m.If(last):
                            end_command()
                            m.next = "CUT"
                        with m.Else():
                            m.d.sync += pos.eq(pos + image_len)

        # ---- read statuses: the chunk's data is in (or never comes) ---------------------------
        rs = self.rd_status
        rs_chunk = rs.payload.id[:seq_bits]
        rs_use = use_table.read_port(domain="comb")
        rs_failed = rs.valid & (rs.payload.error != 0)
        rs_bit = Signal(CHUNKS)
        m.d.comb += [rs_use.addr.eq(rs_chunk), rs_bit.eq(Mux(rs.valid, 1 << rs_chunk, 0))]
        rd_err_wr = read_errors.write_port()
        m.d.comb += [rd_err_wr.en.eq(rs.valid), rd_err_wr.addr.eq(rs_chunk),
                     rd_err_wr.data.eq(rs.payload.error)]
        # A copy chunk whose read failed frees its slot now, as it will never be written; the
        # REPCOPY block is written nothing, so it is done once in.
        m.d.comb += [
            ready_set.eq(rs_bit),
            failed_set.eq(Mux(rs_failed, rs_bit, 0)),
        ]
        read_done = Mux(rs_failed | ~rs_use.data.write, rs_bit, 0)
        free_failed = Mux(rs_failed & rs_use.data.copy, 1 << rs_use.data.slot, 0)

        # ---- writes, in chunk order --------------------------------------------------------------
        w = wr[:seq_bits]
        w_data = write_table.read_port(domain="comb")
        w_use = use_table.read_port(domain="comb")
        m.d.comb += [w_data.addr.eq(w), w_use.addr.eq(w)]
        w_ready = Signal()
        w_needs = Signal()
        m.d.comb += [w_ready.eq((wr != head) & c_ready.bit_select(w, 1)),
                     w_needs.eq(w_use.data.write & ~c_read_failed.bit_select(w, 1))]
        wq = self.wr_req
        m.d.comb += [
            wq.valid.eq(w_ready & w_needs),
            wq.payload.addr.eq(w_data.data.dst),
            wq.payload.length.eq(w_data.data.length),
            wq.payload.ram_addr.eq(w_data.data.ram),
            wq.payload.id.eq(w),
            wq.payload.function.eq(w_data.data.function),
        ]
        skipped = w_ready & ~w_needs                  # nothing to write (error, block, end)
        with m.If((wq.valid & wq.ready) | skipped):
            m.d.sync += wr.eq(wr + 1)
        # A chunk skipped frees only the REPCOPY block: a copy chunk whose read failed freed
        # its slot then.
        free_skipped = Mux(skipped & w_use.data.release, repcopy_slots, 0)

        # Released: the write engine has read the chunk's data from the RAM.
        rel = self.wr_released
        rel_use = use_table.read_port(domain="comb")
        m.d.comb += rel_use.addr.eq(rel.payload.id[:seq_bits])
        free_released = Mux(rel.valid, Mux(rel_use.data.copy, 1 << rel_use.data.slot, 0) |
                            Mux(rel_use.data.release, repcopy_slots, 0), 0)
        m.d.comb += slot_free.eq(free_failed | free_skipped | free_released)

        ws = self.wr_status
        ws_chunk = ws.payload.id[:seq_bits]
        wr_err_wr = write_errors.write_port()
        m.d.comb += [wr_err_wr.en.eq(ws.valid), wr_err_wr.addr.eq(ws_chunk),
                     wr_err_wr.data.eq(ws.payload.error),
                     done_set.eq(read_done | Mux(ws.valid, 1 << ws_chunk, 0))]

        # ---- results, in command order -----------------------------------------------------------
        t = tail[:seq_bits]
        t_end = end_table.read_port(domain="comb")
        t_read_error = read_errors.read_port(domain="comb")
        t_write_error = write_errors.read_port(domain="comb")
        m.d.comb += [t_end.addr.eq(t), t_read_error.addr.eq(t), t_write_error.addr.eq(t)]
        end = t_end.data
        t_read_failed = c_read_failed.bit_select(t, 1)
        t_write_failed = end.write & ~t_read_failed & (t_write_error.data != 0)
        t_err = Signal(8)
        t_buf = Signal()
        with m.If(end.error != 0):
            m.d.comb += [t_err.eq(end.error), t_buf.eq(end.buffer)]
        with m.Elif(t_read_failed):
            m.d.comb += [t_err.eq(class_of_read_error(t_read_error.data)), t_buf.eq(0)]
        with m.Elif(t_write_failed):
            m.d.comb += [t_err.eq(class_of_write_error(t_write_error.data)), t_buf.eq(1)]
        acc_err = Signal(8)
        acc_buf = Signal()
        t_done = Signal()
        m.d.comb += t_done.eq((tail != head) & c_done.bit_select(t, 1))
        first_err = Mux(acc_err != 0, acc_err, t_err)
        m.d.comb += [
            self.result.valid.eq(t_done & end.last),
            self.result.payload.error.eq(first_err),
            self.result.payload.buffer.eq(Mux(acc_err != 0, acc_buf, t_buf)),
            self.result.payload.aborted.eq(end.abort & (first_err == 0)),
        ]
        with m.If(t_done & ~end.last):
            m.d.sync += tail.eq(tail + 1)
            with m.If((acc_err == 0) & (t_err != 0)):
                m.d.sync += [acc_err.eq(t_err), acc_buf.eq(t_buf)]
        with m.If(self.result.valid & self.result.ready):
            m.d.sync += [tail.eq(tail + 1), acc_err.eq(0), acc_buf.eq(0)]

        m.d.comb += self.idle.eq((head == tail) & (slot_busy == 0))
        return m
