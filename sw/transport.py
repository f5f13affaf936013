"""What the driver needs from a host: BAR access, DMA-able memory, time, interrupts."""

import abc


__all__ = ["Transport", "DmaBuffer", "PciIdentity"]


class DmaBuffer(abc.ABC):
    """Host memory the card can reach at bus address ``addr`` (zeroed at allocation).

    Store ordering, which the driver relies on to publish a descriptor or a table entry by
    writing its valid qword last:

    * ``write`` calls reach the card in the order they are made, across every buffer of one
      transport: once the card sees a write's bytes, it sees every earlier write's. A host
      that reorders stores to DMA memory (Arm, POWER) puts a write barrier (Linux's
      ``dma_wmb``) ahead of each store; x86 with write-back memory needs none.
    * An aligned ``write`` of 8 bytes or fewer is one store: the card sees all of it or none.
      Within a longer ``write`` no order is promised.
    * Every ``write`` is visible to the card before any later MMIO write (``wmb`` before a
      doorbell, as ``writeq`` gives in Linux).
    """

    addr: int
    size: int

    @abc.abstractmethod
    def read(self, offset, length):
        """Return ``length`` bytes at ``offset``."""

    @abc.abstractmethod
    def write(self, offset, data):
        """Store ``data`` at ``offset``, ordered after every earlier write (see the class)."""

    def read_u64(self, offset):
        return int.from_bytes(self.read(offset, 8), "little")

    def write_u64(self, offset, value):
        self.write(offset, value.to_bytes(8, "little"))

    def view(self, offset, size):
        """The ``size`` bytes at ``offset`` as a buffer of their own."""
        if offset < 0 or offset + size > self.size:
            raise IndexError(f"a view of {size} bytes at {offset:#x} is outside the buffer")
        return _View(self, offset, size)


class _View(DmaBuffer):
    def __init__(self, parent, offset, size):
        self._parent = parent
        self._offset = offset
        self.addr = parent.addr + offset
        self.size = size

    def read(self, offset, length):
        if offset < 0 or offset + length > self.size:
            raise IndexError(f"access of {length} bytes at {offset:#x} outside the view")
        return self._parent.read(self._offset + offset, length)

    def write(self, offset, data):
        if offset < 0 or offset + len(data) > self.size:
            raise IndexError(f"access of {len(data)} bytes at {offset:#x} outside the view")
        self._parent.write(self._offset + offset, data)


class PciIdentity:
    def __init__(self, vendor_id, device_id, class_code, bus_id):
        self.vendor_id = vendor_id
        self.device_id = device_id
        self.class_code = class_code
        self.bus_id = bus_id

    def __str__(self):
        return (f"{self.bus_id} [{self.vendor_id:04x}:{self.device_id:04x}] "
                f"class {self.class_code:06x}")


class Transport(abc.ABC):
    """A PCIe function's BARs, DMA memory and interrupts, seen from the host."""

    identity: PciIdentity
    interrupt_vectors: int   # MSI-X vectors allocated to the driver

    @abc.abstractmethod
    async def read(self, bar, offset, width):
        """Read a ``width``-bit (32 or 64) little-endian value from ``bar`` at ``offset``."""

    @abc.abstractmethod
    async def write(self, bar, offset, value, width):
        """Write a ``width``-bit (32 or 64) value to ``bar`` at ``offset``."""

    @abc.abstractmethod
    async def read_block(self, bar, offset, length):
        """Read ``length`` bytes of ``bar`` from ``offset`` (large MMIO reads, as memcpy)."""

    @abc.abstractmethod
    async def write_block(self, bar, offset, data):
        """Write ``data`` into ``bar`` at ``offset``."""

    @abc.abstractmethod
    def alloc_dma(self, size, align=4096):
        """Return a zeroed ``DmaBuffer`` of ``size`` bytes aligned to ``align``."""

    @abc.abstractmethod
    def host_memory(self):
        """A ``DmaBuffer`` over all the host memory ``alloc_dma`` hands out (``addr`` is its
        bus address): what page-table walks and virtual buffers reach.

        This assumes ``alloc_dma`` carves every buffer out of one region that is contiguous in
        bus addresses, so that bus address ``host_memory().addr + n`` is byte ``n`` of it. A
        VFIO transport maps one such IOVA range (hugepage-backed, say) and allocates from it.
        """

    @abc.abstractmethod
    async def sleep_ns(self, ns):
        """Let ``ns`` nanoseconds pass (simulated time in simulation)."""

    @abc.abstractmethod
    async def wait_interrupt(self, vector, timeout_ns):
        """Wait for MSI-X ``vector``; return True if it arrived within ``timeout_ns``."""

    @abc.abstractmethod
    def clear_interrupt(self, vector):
        """Forget an interrupt of ``vector`` that arrived earlier."""
