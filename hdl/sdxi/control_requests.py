"""FSM states shared by the context engine's parts for their control reads and translations."""

from .error_classes import class_of_read_error
from ..common.fsm import request_states


__all__ = ["read_request", "structure_read_states", "translate_request", "translate_states"]


def read_request(rq, addr, length, *, struct_ram, row_bytes):
    """Assignments that make ``rq`` (a ``ReadRequest`` view) read ``length`` bytes at ``addr``
    into the structure staging row at ``struct_ram``, at ``addr``'s offset in a row."""
    return [rq.addr.eq(addr), rq.length.eq(length),
            rq.ram_addr.eq(struct_ram + (addr & (row_bytes - 1)))]


def translate_request(xq, vaddr, *, write, entry):
    """Assignments that make ``xq`` (a TLB ``Lookup`` view) translate ``vaddr`` in the address
    space of context ``entry`` (a ``CxtEntry`` view: its pasid, as a user unless pr)."""
    return [xq.pasid.eq(entry.pasid), xq.vaddr.eq(vaddr), xq.write.eq(write),
            xq.user.eq(entry.user)]


def structure_read_states(m, state, request, status, *, land, ok, fail):
    """Add states to the FSM in ``m``: offer ``request``, wait for ``status``; on success
    ``land()`` (read the staging row: the structure is there in the next clock, in
    ``state + "_LANDED"``, which runs ``ok()``), else ``fail(error_class)``."""
    def arrived():
        with m.If(status.payload.error == 0):
            land()
            m.next = state + "_LANDED"
        with m.Else():
            fail(class_of_read_error(status.payload.error))

    request_states(m, state, request, status, arrived)
    with m.State(state + "_LANDED"):
        ok()


def translate_states(m, state, request, answer, *, ok, fault):
    """Add states to the FSM in ``m``: offer ``request`` (a TLB ``Lookup``) and wait for
    ``answer``; then ``ok(paddr)`` or ``fault(fault)`` (a ``Fault``)."""
    result = answer.payload

    def answered():
        with m.If(result.fault == 0):
            ok(result.paddr)
        with m.Else():
            fault(result.fault)

    request_states(m, state, request, answer, answered)
