"""Transport over cocotbext-pcie's root complex: the simulated card seen from the host."""

from cocotb.triggers import First, Timer

from .transport import DmaBuffer, PciIdentity, Transport


__all__ = ["CocotbTransport"]


class _RegionBuffer(DmaBuffer):
    def __init__(self, region, offset, addr, size):
        self._region = region
        self._offset = offset
        self.addr = addr
        self.size = size

    def _check(self, offset, length):
        if offset < 0 or offset + length > self.size:
            raise IndexError(f"access of {length} bytes at {offset:#x} outside a "
                             f"{self.size}-byte buffer")

    def read(self, offset, length):
        self._check(offset, length)
        start = self._offset + offset
        return bytes(self._region[start:start + length])

    def write(self, offset, data):
        self._check(offset, len(data))
        start = self._offset + offset
        self._region[start:start + len(data)] = bytes(data)


class CocotbTransport(Transport):
    """BARs through the root complex's BAR windows; DMA memory from its memory pool.

    Every BAR access is bounded by ``access_timeout_ns``: a completion that never comes raises
    instead of hanging the test.
    """

    def __init__(self, rc, pci_dev, *, host_memory_bytes=16 << 20, access_timeout_ns=20_000):
        self._dev = pci_dev
        self._timeout_ns = access_timeout_ns
        self._region = rc.mem_pool.alloc_region(host_memory_bytes)
        self._base = self._region.get_absolute_address(0)
        self._next = 4096          # keep bus address 0 unused: a zero pointer is never valid
        self.identity = PciIdentity(pci_dev.vendor_id, pci_dev.device_id, pci_dev.class_code,
                                    str(pci_dev.pcie_id))
        self.interrupt_vectors = len(pci_dev.msi_vectors)

    async def read(self, bar, offset, width):
        window = self._dev.bar_window[bar]
        if width == 64:
            return await window.read_qword(offset, timeout=self._timeout_ns, timeout_unit="ns")
        if width == 32:
            return await window.read_dword(offset, timeout=self._timeout_ns, timeout_unit="ns")
        raise ValueError(f"width must be 32 or 64, not {width}")

    async def write(self, bar, offset, value, width):
        window = self._dev.bar_window[bar]
        if width == 64:
            await window.write_qword(offset, value)
        elif width == 32:
            await window.write_dword(offset, value)
        else:
            raise ValueError(f"width must be 32 or 64, not {width}")

    # The root complex issues the reads of one block all at once and the function answers them
    # in turn; 4 KiB at a time keeps each within its time-out.
    BLOCK = 4096

    async def read_block(self, bar, offset, length):
        out = bytearray()
        window = self._dev.bar_window[bar]
        for start in range(offset, offset + length, self.BLOCK):
            n = min(self.BLOCK, offset + length - start)
            out += await window.read(start, n, timeout=self._timeout_ns, timeout_unit="ns")
        return bytes(out)

    async def write_block(self, bar, offset, data):
        await self._dev.bar_window[bar].write(offset, bytes(data))

    def alloc_dma(self, size, align=4096):
        if align & (align - 1):
            raise ValueError(f"alignment must be a power of two, not {align}")
        start = (self._next + align - 1) & ~(align - 1)
        if start + size > self._region.size:
            raise MemoryError(f"host memory exhausted: {size} bytes wanted, "
                              f"{self._region.size - start} left")
        self._next = start + size
        self._region[start:start + size] = bytes(size)
        return _RegionBuffer(self._region, start, self._base + start, size)

    def host_memory(self):
        return _RegionBuffer(self._region, 0, self._base, self._region.size)

    async def sleep_ns(self, ns):
        await Timer(max(1, round(ns)), "ns")

    def clear_interrupt(self, vector):
        self._dev.msi_vectors[vector].event.clear()

    async def wait_interrupt(self, vector, timeout_ns):
        event = self._dev.msi_vectors[vector].event
        if not event.is_set():
            await First(event.wait(), Timer(max(1, round(timeout_ns)), "ns"))
        return event.is_set()
