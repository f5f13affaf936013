"""FSM building blocks shared by the blocks that drive request/status client ports."""

__all__ = ["goto", "request_states"]


def request_states(m, state, request, status, on_status, *, busy=None):
    """Add two states to the FSM being built in ``m``: ``state`` offers ``request`` (valid held
    until ready, the payload driven by the caller) and ``state + "_WAIT"`` waits for
    ``status.valid``; ``on_status()`` then runs in that clock and chooses the next state.

    ``status`` is ``always_ready``. ``busy``, if given, is a one-bit signal driven
    high in both states.
    """
    with m.State(state):
        m.d.comb += request.valid.eq(1)
        if busy is not None:
            m.d.comb += busy.eq(1)
        with m.If(request.ready):
            m.next = state + "_WAIT"
    with m.State(state + "_WAIT"):
        if busy is not None:
            m.d.comb += busy.eq(1)
        with m.If(status.valid):
            on_status()


def goto(m, state):
    """A callback (any arguments ignored) that makes ``state`` the FSM's next state."""
    return lambda *args: setattr(m, "next", state)
