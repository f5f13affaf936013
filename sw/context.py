"""SDXI contexts from the host: rings, the spec's producer algorithm, completions and the calls
users know from libsdxi (``mem_copy``, ``fill``, ``write_imm``, ``interrupt``)."""

from dataclasses import dataclass

from sdxi_defs.descriptors import REPCOPY_BLOCK
from sdxi_defs.structures import AKEY_ENT, CST_BLK, CXT_CTL, CXT_L1_ENT, CXT_STS, CxtState

from .descriptors import (BUFFER_AKEY, copy_descriptor, fill_descriptor, interrupt_descriptor,
                          repcopy_descriptor, write_imm_descriptor)
from .errors import SdxiError, SdxiOpError


__all__ = ["Context", "ContextMemory", "Completion", "FIRST_SPACE_AKEY"]

FIRST_SPACE_AKEY = 2     #: entries from here on are handed out for address spaces (akey_for)
CST_BYTES = 32


async def _poll(card, done, timeout_ns, failure):
    """Poll ``done()`` every poll period; after ``timeout_ns`` raise ``SdxiError`` with the
    message ``failure(waited_ns)``."""
    waited = 0.0
    while not done():
        if waited >= timeout_ns:
            raise SdxiError(failure(waited))
        await card.transport.sleep_ns(card.timing.poll_ns)
        waited += card.timing.poll_ns


@dataclass
class ContextMemory:
    """Host memory of one context, allocated as the Linux driver does (sdxi-spec.md 7.4)."""
    ring: object
    cxt_sts: object
    write_index: object
    cxt_ctl: object
    akey_table: object
    entries: int
    space: object = None        #: the AddressSpace of ring, CXT_STS, write index and CSTs
    privileged: bool = False    #: the engine reaches them as a supervisor (L1 pr)

    @classmethod
    def allocate(cls, alloc, entries, akey_sz=0, akey_table=None, space=None, privileged=False):
        """With ``space``, the ring, CXT_STS and write index are virtual memory of that
        address space (L1 pv = 1); CXT_CTL and the AKey table stay the driver's
        (docs/spec-choices.md, "Address spaces")."""
        if space is None:
            ring, cxt_sts, write_index = alloc(entries * 64, 64), alloc(16, 16), alloc(8, 8)
        else:
            ring, cxt_sts, write_index = (space.allocate(n, user=not privileged)
                                          for n in (entries * 64, 16, 8))
        return cls(ring=ring, cxt_sts=cxt_sts, write_index=write_index, cxt_ctl=alloc(64, 64),
                   akey_table=akey_table or alloc(4096 << akey_sz), entries=entries,
                   space=space, privileged=privileged)

    def completion_buffer(self, alloc):
        """Memory for one CST where this context's engine side will look for it."""
        if self.space is None:
            return alloc(CST_BYTES, CST_BYTES)
        return self.space.allocate(CST_BYTES, user=not self.privileged)

    def cxt_ctl_bytes(self, qos=0):
        return CXT_CTL.encode(vl=1, qos=qos, se=1, csa=1, ds_ring_ptr=self.ring.addr >> 6,
                              ds_ring_sz=self.entries, cxt_sts_ptr=self.cxt_sts.addr >> 4,
                              write_index_ptr=self.write_index.addr >> 3)

    def l1_entry(self, max_buffer, opb, akey_sz=0):
        space = {} if self.space is None else dict(pv=1, cxt_pasid=self.space.pasid,
                                                   pr=int(self.privileged))
        return CXT_L1_ENT.encode(vl=1, ka=1, cxt_ctl_ptr=self.cxt_ctl.addr >> 6,
                                 akey_sz=akey_sz, akey_ptr=self.akey_table.addr >> 12,
                                 max_buffer=max_buffer, opb_000_enb=opb, **space)


class Completion:
    """A completion status block: ``signal`` 1 until the function completes it."""

    def __init__(self, card, buffer=None):
        self.card = card
        self.buf = buffer or card.transport.alloc_dma(CST_BYTES, CST_BYTES)
        self.buf.write(0, CST_BLK.encode(signal=1))

    @property
    def addr(self):
        return self.buf.addr

    def done(self):
        return CST_BLK.decode(self.buf.read(0, CST_BYTES))["signal"] == 0

    def error(self):
        return bool(CST_BLK.decode(self.buf.read(0, CST_BYTES))["er"])

    async def settle(self, what, timeout_ns):
        """Poll until complete, whether in error or not; return the error bit. Raise
        ``SdxiError`` on time-out."""
        await _poll(self.card, self.done, timeout_ns,
                    lambda waited: f"{what}: no completion after {waited:.0f} ns")
        return self.error()

    async def wait(self, what, timeout_ns):
        """Poll until complete; raise ``SdxiOpError`` with the error log on er = 1,
        ``SdxiError`` on time-out."""
        if await self.settle(what, timeout_ns):
            log = await self.card.read_error_log()
            raise SdxiOpError(f"{what} failed", log, self.card.error_log_lost)


class Context:
    """One context: its ring and the producer side of the spec's enqueue algorithm."""

    def __init__(self, card, cxt_id, mem):
        self.card = card
        self.id = cxt_id
        self.mem = mem
        self.write_index = mem.write_index.read_u64(0)
        self._space_keys = {}

    # ---- ring ---------------------------------------------------------------------------------

    def completion(self):
        """A new CST for a descriptor of this context (in its address space, if it has one)."""
        return Completion(self.card, self.mem.completion_buffer(self.card.transport.alloc_dma))

    def read_index(self):
        return CXT_STS.decode(self.mem.cxt_sts.read(0, 16))["read_index"]

    def state(self):
        return CxtState(CXT_STS.decode(self.mem.cxt_sts.read(0, 16))["state"])

    def reserve(self, n):
        """Claim ``n`` slots (sdxi-spec.md 5.1 steps 1-4); return the first index."""
        ridx = self.read_index()
        if ridx > self.write_index:
            raise RuntimeError(f"context {self.id}: read index {ridx} is past the write index "
                               f"{self.write_index}")
        if self.write_index + n - ridx > self.mem.entries:
            raise BlockingIOError(f"context {self.id}: ring full ({self.mem.entries} entries)")
        first = self.write_index
        self.write_index += n
        self.mem.write_index.write_u64(0, self.write_index)
        return first

    def place(self, index, raw, *, valid=True):
        """Write a descriptor into its slot: qwords 1-7 first, then qword 0 (step 5)."""
        slot = (index % self.mem.entries) * 64
        self.mem.ring.write(slot + 8, raw[8:])
        self.mem.ring.write(slot, raw[:8] if valid else bytes([raw[0] & ~1]) + raw[1:8])

    async def ring_doorbell(self, value=None):
        await self.card.ring_doorbell(self.id, self.write_index if value is None else value)

    async def submit(self, descriptors):
        """Enqueue descriptors and ring the doorbell; return the index of the first."""
        first = self.reserve(len(descriptors))
        for i, raw in enumerate(descriptors):
            self.place(first + i, raw)
        await self.ring_doorbell()
        return first

    async def wait_read_index(self, index, timeout_ns=None):
        """Wait until the function has completed every descriptor below ``index``."""
        timeout_ns = self.card.timing.completion_timeout_ns if timeout_ns is None else timeout_ns
        await _poll(self.card, lambda: self.read_index() >= index, timeout_ns,
                    lambda waited: f"context {self.id}: read index {self.read_index()} short of "
                                   f"{index} after {waited:.0f} ns (state {self.state().name})")

    async def wait_state(self, states, what):
        """Wait until CXT_STS.state is one of ``states`` (bounded by the state time-out);
        return it."""
        await _poll(self.card, lambda: self.state() in states, self.card.timing.state_timeout_ns,
                    lambda waited: f"context {self.id}: {what}: state {self.state().name} after "
                                   f"{waited:.0f} ns")
        return self.state()

    # ---- operations (libsdxi-style) ------------------------------------------------------------

    async def _run(self, what, make, nbytes=0):
        cst = self.completion()
        await self.submit([make(cst)])
        await cst.wait(what, self.card.timing.completion_timeout(nbytes))

    async def mem_copy(self, dst, src, n, *, src_akey=BUFFER_AKEY, dst_akey=BUFFER_AKEY):
        """Copy ``n`` bytes from ``src`` to ``dst`` (bus addresses, or addresses in the
        spaces of the AKey entries given) and wait for the completion."""
        await self._run(f"copy of {n} bytes", lambda cst: copy_descriptor(
            dst, src, n, cst=cst, src_akey=src_akey, dst_akey=dst_akey), n)

    async def copy_between(self, dst_space, dst, src_space, src, n):
        """Copy ``n`` bytes from ``src`` in ``src_space`` to ``dst`` in ``dst_space``: each an
        ``AddressSpace`` (virtual addresses), a ``RemoteKey`` (addresses in another function's
        memory as its RKey grants it), or None (bus addresses)."""
        await self.mem_copy(dst, src, n, src_akey=self.akey_for(src_space),
                            dst_akey=self.akey_for(dst_space))

    async def fill(self, dst, pattern, n, *, akey=BUFFER_AKEY):
        """Fill ``n`` bytes at ``dst`` with ``pattern`` (8, 16 or 32 bytes) repeated."""
        await self._run(f"fill of {n} bytes",
                        lambda cst: fill_descriptor(dst, pattern, n, cst=cst, akey=akey), n)

    async def write_imm(self, dst, data):
        """Write up to 32 bytes of immediate data to ``dst``."""
        await self._run(f"write-immediate of {len(data)} bytes",
                        lambda cst: write_imm_descriptor(dst, data, cst=cst))

    async def rep_copy(self, dst, src, blocks, *, src_akey=BUFFER_AKEY, dst_akey=BUFFER_AKEY):
        """Replicate the 4 KiB at ``src`` into ``blocks`` consecutive 4 KiB blocks at ``dst``."""
        await self._run(f"replicate into {blocks} blocks", lambda cst: repcopy_descriptor(
            dst, src, blocks, cst=cst, src_akey=src_akey, dst_akey=dst_akey),
            blocks * REPCOPY_BLOCK)

    async def interrupt(self, akey):
        """Raise the vector of AKey entry ``akey`` (fenced, as Linux does after a copy) and
        wait for it to arrive; return True if it did."""
        vector = AKEY_ENT.decode(self.mem.akey_table.read(16 * akey, 16))["intr_num"]
        t = self.card.transport
        t.clear_interrupt(vector)
        await self.submit([interrupt_descriptor(akey)])
        return await t.wait_interrupt(vector, self.card.timing.interrupt_timeout_ns)

    def set_akey(self, index, **fields):
        self.mem.akey_table.write(16 * index, AKEY_ENT.encode(**fields))

    def akey_for(self, space, *, privileged=False):
        """The index of an AKey entry for buffers in ``space``, written into the table the
        first time it is asked for: an ``AddressSpace`` (pv = 1 with its PASID, user accesses
        unless ``privileged``), a ``RemoteKey`` (another function's memory, as its RKey entry
        grants it: tgt_sfunc and rkey), or None (bus addresses)."""
        if space is None:
            return BUFFER_AKEY
        remote = hasattr(space, "sfunc")
        key = ("rkey", space.sfunc, space.index) if remote else (space.pasid, privileged)
        if key not in self._space_keys:
            index = FIRST_SPACE_AKEY + len(self._space_keys)
            if index >= self.mem.akey_table.size // AKEY_ENT.size:
                raise RuntimeError(f"context {self.id}: AKey table full")
            if remote:
                self.set_akey(index, vl=1, tgt_sfunc=space.sfunc, rkey=space.index)
            else:
                self.set_akey(index, vl=1, pv=1, pasid=space.pasid, pr=int(privileged))
            self._space_keys[key] = index
        return self._space_keys[key]

