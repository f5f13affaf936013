"""Data mover: the copy, fill and replicate datapath of the context engine.

Commands are cut into chunks; the chunks of many commands are in flight at once over several
read and write clients of the DMA engines, and results come back in command order. So a long
copy keeps both directions of the link busy, and a stream of small copies overlaps.
"""

import operator
from functools import reduce

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from sdxi_defs.errors import ErrClass, WriteError
from sdxi_defs.page_tables import Fault
from sdxi_defs.ram_map import CHUNK, IMAGE, READ_SLOTS, REPCOPY_SLOTS, SLOT_BYTES

from ..common.priority import lowest_set
from ..mmu.tlb import Lookup, Translation
from ..pcie.dma_read import ReadRequest, ReadStatus
from ..pcie.dma_write import WriteRequest, WriteStatus
from .error_classes import class_of_fault, class_of_read_error, class_of_write_error


__all__ = ["DataMover", "MoverOp", "MoverCommand", "MoverResult", "BufferSpace",
           "WRITE_CLIENTS", "PAGE"]

WRITE_CLIENTS = 8         #: writes in flight, so confirmation latency hides behind other data
CHUNKS = 32               #: chunks tracked in flight (a power of two)
PAGE = 4096               #: translation granule: no chunk of a pv = 1 buffer crosses one


class MoverOp(enum.Enum, shape=2):
    COPY = 0        #: ``src`` to ``dst``
    FROM_RAM = 1    #: ``dst`` from RAM at ``ram``, restarting there every IMAGE bytes
    REPCOPY = 2     #: IMAGE bytes of ``src`` read once, then written over and over to ``dst``


class BufferSpace(data.StructLayout):
    """How a buffer's addresses are used (its AKey entry, SDXI Table 3-7): ``pv`` = 0, bus
    addresses as they are; ``pv`` = 1, virtual addresses in ``pasid``'s address space, accessed
    as a user unless the entry's pr bit is set (``user`` = ~pr)."""

    def __init__(self):
        super().__init__({"pv": 1, "pasid": 20, "user": 1})


class MoverCommand(data.StructLayout):
    """Move ``last + 1`` bytes (1 to 2^32). For FROM_RAM, RAM at ``ram`` holds an IMAGE-byte
    image (or all of a shorter transfer) of what each IMAGE bytes of ``dst`` get."""

    def __init__(self, ram_addr_bits):
        super().__init__({"op": MoverOp, "src": 64, "dst": 64, "last": 32, "ram": ram_addr_bits,
                          "src_space": BufferSpace(), "dst_space": BufferSpace()})


class MoverResult(data.StructLayout):
    """``error`` is 0 or an ``ErrClass``; ``buffer`` is the descriptor's operand it hit: 0 the
    source, 1 the destination (a FROM_RAM destination is operand 0 for a translation fault)."""

    def __init__(self):
        super().__init__({"error": 8, "buffer": 1, "aborted": 1})


class DataMover(wiring.Component):
    """Executes commands with their chunks overlapped (docs/context-engine.md, "Data mover").

    A command is cut into chunks as fast as there is room: COPY chunks (CHUNK bytes, aligned to
    CHUNK of the source) each take a free RAM slot and its read client; FROM_RAM chunks (IMAGE
    bytes) need no read. Chunks are written in order over ``WRITE_CLIENTS`` write clients, a
    COPY chunk as soon as its read has completed. A command's result comes once all its chunks
    and all earlier ones have been written and confirmed by the hard block, so whatever the
    context engine writes after it (a completion status) follows the data. REPCOPY waits for an
    empty mover, reads its block into the first slots and holds them until its last chunk.

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
    operand); the command's other chunks still run. ``abort`` (a hard stop) ends the command
    being cut and every later one at once with ``aborted``; chunks in flight finish.

    Members
    -------
    cmd : In(stream.Signature(MoverCommand))
    result : Out(stream.Signature(MoverResult))
    rd_req, rd_status : read clients (READ_SLOTS)
    wr_req, wr_status, wr_released : write clients (WRITE_CLIENTS); a slot is free again once
        the write engine has read it (``released``), before the write is confirmed
    translate : Out(stream.Signature(Lookup)), translated : In(stream.Signature(Translation))
        Page translations, one outstanding.
    abort : In(1)
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
            "rd_req": Out(stream.Signature(ReadRequest(ram_addr_bits))).array(READ_SLOTS),
            "rd_status": In(stream.Signature(ReadStatus())).array(READ_SLOTS),
            "wr_req": Out(stream.Signature(WriteRequest(ram_addr_bits))).array(WRITE_CLIENTS),
            "wr_status": In(stream.Signature(WriteStatus())).array(WRITE_CLIENTS),
            "wr_released": In(WRITE_CLIENTS),
            "translate": Out(stream.Signature(Lookup())),
            "translated": In(stream.Signature(Translation())),
            "abort": In(1),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        row_mask = self._row - 1
        slot_ram = [self._slot_base + s * SLOT_BYTES for s in range(READ_SLOTS)]
        seq_bits = (CHUNKS - 1).bit_length()

        # ---- chunks in flight: created at head, written at wr, retired at tail -------------------
        head = Signal(seq_bits + 1)
        wr = Signal(seq_bits + 1)
        tail = Signal(seq_bits + 1)
        room = Signal()
        m.d.comb += room.eq((head - tail)[:seq_bits + 1] < CHUNKS)     # modulo the counters
        c_len = [Signal(13, name=f"c_len{i}") for i in range(CHUNKS)]
        c_dst = [Signal(64, name=f"c_dst{i}") for i in range(CHUNKS)]
        c_ram = [Signal(self._ram_bits, name=f"c_ram{i}") for i in range(CHUNKS)]
        c_slot = [Signal(range(READ_SLOTS), name=f"c_slot{i}") for i in range(CHUNKS)]
        c_err = [Signal(8, name=f"c_err{i}") for i in range(CHUNKS)]
        c_buf = Signal(CHUNKS)
        c_last = Signal(CHUNKS)       # ends its command
        c_copy = Signal(CHUNKS)       # holds a slot until written
        c_write = Signal(CHUNKS)      # has data to write
        c_ready = Signal(CHUNKS)      # data in place (or nothing to wait for)
        c_done = Signal(CHUNKS)
        c_release = Signal(CHUNKS)    # frees the REPCOPY slots when done
        c_abort = Signal(CHUNKS)

        # Slots in use: flip-flops updated once a clock from the slots taken (``slot_take``) and
        # the slots whose data has left the RAM or will never come (``slot_free``).
        slot_busy = Signal(READ_SLOTS)
        slot_take = Signal(READ_SLOTS)
        slot_free = Signal(READ_SLOTS)
        repcopy_slots = (1 << REPCOPY_SLOTS) - 1
        m.d.sync += slot_busy.eq((slot_busy | slot_take) & ~slot_free)
        free_slot, have_slot = lowest_set(m, ~slot_busy, name="free_slot")
        rd_pending = Signal(READ_SLOTS)
        rd_seq = [Signal(seq_bits, name=f"rd_seq{s}") for s in range(READ_SLOTS)]
        rq = [Signal(ReadRequest(self._ram_bits), name=f"rq{s}") for s in range(READ_SLOTS)]

        def new_chunk(*, length, dst, ram, last, copy=0, write=1, ready=1, done=0, slot=0,
                      release=0, abort=0, err=0, buf=0):
            i = head[:seq_bits]
            stmts = [head.eq(head + 1)]
            for k in range(CHUNKS):
                with m.If(i == k):
                    m.d.sync += [c_len[k].eq(length), c_dst[k].eq(dst), c_ram[k].eq(ram),
                                 c_slot[k].eq(slot), c_err[k].eq(err), c_buf[k].eq(buf),
                                 c_last[k].eq(last), c_copy[k].eq(copy), c_write[k].eq(write),
                                 c_ready[k].eq(ready), c_done[k].eq(done),
                                 c_release[k].eq(release), c_abort[k].eq(abort)]
            m.d.sync += stmts

        def start_read(slot, addr, length, ram):
            m.d.comb += slot_take.eq(1 << slot)
            for s in range(READ_SLOTS):
                with m.If(slot == s):
                    m.d.sync += [rd_pending[s].eq(1),
                                 rd_seq[s].eq(head[:seq_bits]), rq[s].addr.eq(addr),
                                 rq[s].length.eq(length), rq[s].ram_addr.eq(ram),
                                 rq[s].id.eq(s)]

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
        m.d.comb += aborting.eq(self.abort)
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
                        with m.If(have_slot):
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
                with m.If((head == tail) & (slot_busy == 0)):
                    ram = slot_ram[0] + (p.src & row_mask)
                    m.d.sync += [rep_ram.eq(ram), rep_seq.eq(head[:seq_bits])]
                    new_chunk(length=0, dst=0, ram=ram, last=0, write=0, ready=0)
                    start_read(0, src_phys, IMAGE, ram)
                    m.d.comb += slot_take.eq(repcopy_slots)     # the block spans them
                    m.next = "REP_WAIT"
            with m.State("REP_WAIT"):
                done = c_done.bit_select(rep_seq, 1)
                err = Signal(8)
                for k in range(CHUNKS):
                    with m.If(rep_seq == k):
                        m.d.comb += err.eq(c_err[k])
                with m.If(done & room):
                    with m.If((err != 0) | aborting):
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

        # ---- reads ---------------------------------------------------------------------------------
        slot_frees = []         # one mask per event that frees slots
        for s in range(READ_SLOTS):
            req = self.rd_req[s]
            st = self.rd_status[s]
            m.d.comb += [req.valid.eq(rd_pending[s]), req.payload.eq(rq[s]), st.ready.eq(1)]
            with m.If(req.valid & req.ready):
                m.d.sync += rd_pending[s].eq(0)
            failed_class = Signal(8, name=f"rd_failed_class{s}")
            m.d.comb += failed_class.eq(class_of_read_error(st.payload.error))
            read_failed = st.valid & (st.payload.error != 0)
            slot_frees.append(Mux(read_failed & c_copy.bit_select(rd_seq[s], 1), 1 << s, 0))
            with m.If(st.valid):
                for k in range(CHUNKS):
                    with m.If(rd_seq[s] == k):
                        m.d.sync += c_ready[k].eq(1)
                        with m.If(st.payload.error != 0):
                            m.d.sync += [c_err[k].eq(failed_class),
                                         c_buf[k].eq(0), c_write[k].eq(0), c_done[k].eq(1)]
                        with m.Elif(~c_write[k]):
                            m.d.sync += c_done[k].eq(1)      # the REPCOPY block is in

        # ---- writes, in chunk order ----------------------------------------------------------------
        w = wr[:seq_bits]
        w_client = wr[:(WRITE_CLIENTS - 1).bit_length()]
        writing = Signal(WRITE_CLIENTS)
        w_seq = [Signal(seq_bits, name=f"w_seq{c}") for c in range(WRITE_CLIENTS)]
        w_ready = Signal()
        w_needs = Signal()
        m.d.comb += [w_ready.eq((wr != head) & c_ready.bit_select(w, 1)),
                     w_needs.eq(c_write.bit_select(w, 1))]
        w_addr = Signal(64)
        w_len = Signal(13)
        w_ram = Signal(self._ram_bits)
        w_slot = Signal(range(READ_SLOTS))
        for k in range(CHUNKS):
            with m.If(w == k):
                m.d.comb += [w_addr.eq(c_dst[k]), w_len.eq(c_len[k]), w_ram.eq(c_ram[k]),
                             w_slot.eq(c_slot[k])]
        # What chunk w frees when its data has left the RAM: its slot, or the REPCOPY block.
        w_frees = Signal(READ_SLOTS)
        m.d.comb += w_frees.eq(Mux(c_copy.bit_select(w, 1), 1 << w_slot, 0) |
                               Mux(c_release.bit_select(w, 1), repcopy_slots, 0))
        with m.If(w_ready & ~w_needs):
            m.d.sync += wr.eq(wr + 1)                 # nothing to write (error, block, end)
        # A chunk with nothing to write frees only the REPCOPY block: a copy chunk whose read
        # failed freed its slot then.
        slot_frees.append(Mux(w_ready & ~w_needs & c_release.bit_select(w, 1), repcopy_slots, 0))
        # Each write client latches what its chunk frees when it takes the chunk.
        frees_of = [Signal(READ_SLOTS, name=f"w_frees{c}") for c in range(WRITE_CLIENTS)]

        for c in range(WRITE_CLIENTS):
            req = self.wr_req[c]
            st = self.wr_status[c]
            m.d.comb += [
                req.valid.eq(w_ready & w_needs & (w_client == c) & ~writing[c]),
                req.payload.addr.eq(w_addr),
                req.payload.length.eq(w_len),
                req.payload.ram_addr.eq(w_ram),
                req.payload.id.eq(c),
                st.ready.eq(1),
            ]
            with m.If(req.valid & req.ready):
                m.d.sync += [writing[c].eq(1), w_seq[c].eq(w), frees_of[c].eq(w_frees),
                             wr.eq(wr + 1)]
            # Released: the write engine has read the data. Nothing is released for a write
            # refused with bus mastering off, so its status frees the slots instead.
            refused = st.valid & (st.payload.error == WriteError.BUS_MASTER_OFF)
            slot_frees.append(Mux(self.wr_released[c] | refused, frees_of[c], 0))
            failed_class = Signal(8, name=f"wr_failed_class{c}")
            m.d.comb += failed_class.eq(class_of_write_error(st.payload.error))
            with m.If(st.valid):
                m.d.sync += writing[c].eq(0)
                for k in range(CHUNKS):
                    with m.If(w_seq[c] == k):
                        m.d.sync += c_done[k].eq(1)
                        with m.If(st.payload.error != 0):
                            m.d.sync += [c_err[k].eq(failed_class), c_buf[k].eq(1)]
        m.d.comb += slot_free.eq(reduce(operator.or_, slot_frees))

        # ---- results, in command order -----------------------------------------------------------
        t = tail[:seq_bits]
        acc_err = Signal(8)
        acc_buf = Signal()
        t_err = Signal(8)
        t_buf = Signal()
        for k in range(CHUNKS):
            with m.If(t == k):
                m.d.comb += [t_err.eq(c_err[k]), t_buf.eq(c_buf[k])]
        t_done = Signal()
        m.d.comb += t_done.eq((tail != head) & c_done.bit_select(t, 1))
        first_err = Mux(acc_err != 0, acc_err, t_err)
        m.d.comb += [
            self.result.valid.eq(t_done & c_last.bit_select(t, 1)),
            self.result.payload.error.eq(first_err),
            self.result.payload.buffer.eq(Mux(acc_err != 0, acc_buf, t_buf)),
            self.result.payload.aborted.eq(c_abort.bit_select(t, 1) & (first_err == 0)),
        ]
        with m.If(t_done & ~c_last.bit_select(t, 1)):
            m.d.sync += tail.eq(tail + 1)
            with m.If((acc_err == 0) & (t_err != 0)):
                m.d.sync += [acc_err.eq(t_err), acc_buf.eq(t_buf)]
        with m.If(self.result.valid & self.result.ready):
            m.d.sync += [tail.eq(tail + 1), acc_err.eq(0), acc_buf.eq(0)]

        m.d.comb += self.idle.eq((head == tail) & (slot_busy == 0))
        return m
