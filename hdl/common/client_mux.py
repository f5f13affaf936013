"""Client multiplexer: several DMA clients on one request stream, told apart by an id prefix."""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .priority import round_robin


__all__ = ["ClientMux"]


class ClientMux(wiring.Component):
    """Shares one request stream and one status stream among ``clients`` clients.

    A client is an id prefix, not a port with its own state: a request of client *i* with id
    *x* leaves with id ``Cat(x, i)``, and a status whose id carries prefix *i* goes back to
    client *i* with the prefix removed. A client may have as many requests in flight as its
    ``client_id_bits`` can tell apart. Clients with a request waiting are served round-robin,
    one request per turn.

    The outgoing request is a register, so no path runs from a client's logic through the
    multiplexer into the engine; the grant is a register too, so none runs from one client's
    logic into another's ``ready``. In each clock the granted client may hand over a request;
    the grant then moves to the next client waiting after it (round-robin), and stays while
    no other waits, so one client alone may send a request every clock. A request arriving
    at an idle multiplexer leaves one clock later than it would with a combinational grant.
    Statuses are never held back (``always_ready``) and are routed without a register.

    ``request`` and ``status`` give the payload layouts for an id width (for example
    ``ReadRequest``); each must have an ``id`` field. ``notice``, if given, is the layout of a
    second stream the engine sends back (the write engine's release notices), routed as
    statuses are.

    Members
    -------
    requests : In(stream.Signature(request(client_id_bits))).array(clients)
    statuses : Out(stream.Signature(status(client_id_bits), always_ready=True)).array(clients)
    request : Out(stream.Signature(request(id_bits)))
    status : In(stream.Signature(status(id_bits), always_ready=True))
    notices : Out(stream.Signature(notice(client_id_bits), always_ready=True)).array(clients)
    notice : In(stream.Signature(notice(id_bits), always_ready=True))
        Only with ``notice``.
    """

    def __init__(self, *, request, status, clients, client_id_bits, notice=None):
        if clients < 1:
            raise ValueError("at least one client")
        self._n = clients
        self._client_bits = client_id_bits
        self.prefix_bits = max(1, (clients - 1).bit_length())
        self.id_bits = client_id_bits + self.prefix_bits
        self._notices = notice is not None
        members = {}
        if notice is not None:
            members = {
                "notices": Out(stream.Signature(notice(client_id_bits),
                                                always_ready=True)).array(clients),
                "notice": In(stream.Signature(notice(self.id_bits), always_ready=True)),
            }
        super().__init__({
            **members,
            "requests": In(stream.Signature(request(client_id_bits))).array(clients),
            "statuses": Out(stream.Signature(status(client_id_bits),
                                             always_ready=True)).array(clients),
            "request": Out(stream.Signature(request(self.id_bits))),
            "status": In(stream.Signature(status(self.id_bits), always_ready=True)),
        })

    def elaborate(self, platform):
        m = Module()
        n = self._n
        out = self.request

        grant = Signal(range(max(n, 2)))     # the client that may hand over in this clock
        following, waiting = round_robin(m, Cat(r.valid for r in self.requests), grant,
                                         name="grant")
        with m.If(waiting):
            m.d.sync += grant.eq(following)
        room = Signal()
        m.d.comb += room.eq(~out.valid | out.ready)
        with m.If(out.ready):
            m.d.sync += out.valid.eq(0)
        with m.Switch(grant):
            for i, req in enumerate(self.requests):
                with m.Case(i):
                    m.d.comb += req.ready.eq(room)
                    with m.If(room & req.valid):
                        m.d.sync += [out.valid.eq(1)] + self._forward(
                            req.payload, out.payload,
                            Cat(req.payload.id, Const(i, self.prefix_bits)))

        self._route(m, self.status, self.statuses)
        if self._notices:
            self._route(m, self.notice, self.notices)
        return m

    def _route(self, m, source, targets):
        """Each of ``source``'s transfers to the target its id's prefix names."""
        prefix = source.payload.id[self._client_bits:]
        for i, target in enumerate(targets):
            m.d.comb += target.valid.eq(source.valid & (prefix == i))
            m.d.comb += self._forward(source.payload, target.payload,
                                      source.payload.id[:self._client_bits])

    @staticmethod
    def _forward(source, target, ident):
        """Assignments of every field of ``source`` to ``target``, ``id`` given as ``ident``."""
        return [getattr(target, name).eq(ident if name == "id" else getattr(source, name))
                for name, _ in target.shape()]
