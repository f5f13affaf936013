"""Shares one request/response server among several clients, one transaction at a time."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .priority import round_robin


__all__ = ["TransactionArbiter"]


class TransactionArbiter(wiring.Component):
    """``clients`` request/response pairs onto one server that answers each request with
    exactly one response, in order.

    One transaction is in flight at a time: a granted request passes straight through in the
    clock it is offered (and keeps the grant until the server takes it, unless its client
    withdraws it), and its response goes back to the client that asked; the next request is
    taken once that response has been taken. Clients with requests are served
    round-robin, so none waits for more than ``clients - 1`` others.

    Members
    -------
    requests : In(stream.Signature(request)).array(clients)
    responses : Out(stream.Signature(response)).array(clients)
    request : Out(stream.Signature(request)), response : In(stream.Signature(response))
    """

    def __init__(self, request, response, *, clients):
        self._n = clients
        super().__init__({
            "requests": In(stream.Signature(request)).array(clients),
            "responses": Out(stream.Signature(response)).array(clients),
            "request": Out(stream.Signature(request)),
            "response": In(stream.Signature(response)),
        })

    def elaborate(self, platform):
        m = Module()
        n = self._n
        waiting = Signal(n)
        m.d.comb += waiting.eq(Cat(self.requests[i].valid for i in range(n)))
        last = Signal(range(max(n, 2)))
        chosen, any_waiting = round_robin(m, waiting, last, name="grant")
        busy = Signal()
        owner = Signal(range(max(n, 2)))
        # A request offered and not taken keeps the grant while it is offered, so that what
        # the server sees does not change under it.
        held = Signal()
        held_client = Signal(range(max(n, 2)))
        granted = Signal(range(max(n, 2)))
        m.d.comb += granted.eq(Mux(held & waiting.bit_select(held_client, 1), held_client,
                                   chosen))
        with m.If(~busy & any_waiting & ~self.request.ready):
            m.d.sync += [held.eq(1), held_client.eq(granted)]

        for i in range(n):
            mine = ~busy & (granted == i)
            with m.If(mine):
                m.d.comb += [self.request.valid.eq(self.requests[i].valid),
                             self.request.payload.eq(self.requests[i].payload),
                             self.requests[i].ready.eq(self.request.ready)]
            m.d.comb += [self.responses[i].payload.eq(self.response.payload),
                         self.responses[i].valid.eq(busy & (owner == i) & self.response.valid)]
            with m.If(busy & (owner == i)):
                m.d.comb += self.response.ready.eq(self.responses[i].ready)

        with m.If(~busy & any_waiting & self.request.ready):
            m.d.sync += [busy.eq(1), owner.eq(granted), last.eq(granted), held.eq(0)]
        with m.If(busy & self.response.valid & self.response.ready):
            m.d.sync += busy.eq(0)
        return m
