"""Host side of the DMA exerciser: program reads and writes, reach the DMA RAM window."""

from sdxi_defs.regmap import DMA_EXERCISER_REGISTERS, DMA_RAM_BYTES, DMA_RAM_WINDOW

from .device import BAR_REGS
from .errors import SdxiError


__all__ = ["DmaExerciser", "ExerciserResult"]

REG = {r.name: r for r in DMA_EXERCISER_REGISTERS}


class ExerciserResult:
    def __init__(self, error, cycles):
        self.error = error
        self.cycles = cycles

    def __repr__(self):
        return f"ExerciserResult(error={self.error}, cycles={self.cycles})"


class DmaExerciser:
    """Drives the engine's DMA exerciser through BAR0; every wait is bounded."""

    ram_bytes = DMA_RAM_BYTES

    def __init__(self, transport, *, poll_ns=200, timeout_ns=2_000_000):
        self.t = transport
        self.poll_ns = poll_ns
        self.timeout_ns = timeout_ns

    async def _write(self, name, value):
        await self.t.write(BAR_REGS, REG[name].offset, value, 64)

    async def _read(self, name):
        return await self.t.read(BAR_REGS, REG[name].offset, 64)

    async def set_timeout(self, clocks):
        await self._write("DMA_TIMEOUT", clocks)

    async def set_read_split(self, log2):
        """Cut reads at 1 << log2 bytes as well (2 to 12; 0: Max_Read_Request_Size only)."""
        await self._write("DMA_RD_SPLIT", log2)

    async def info(self):
        return REG["DMA_INFO"].decode(await self._read("DMA_INFO"))

    async def _run(self, prefix, addr, length, ram_addr):
        await self._write(f"{prefix}_ADDR", addr)
        await self._write(f"{prefix}_LEN", length)
        await self._write(f"{prefix}_RAM", ram_addr)
        await self._write(f"{prefix}_GO", 1)
        waited = 0
        while True:
            status = REG[f"{prefix}_STATUS"].decode(await self._read(f"{prefix}_STATUS"))
            if not status["busy"]:
                return ExerciserResult(status["error"], status["cycles"])
            if waited >= self.timeout_ns:
                raise SdxiError(f"{prefix}: transfer of {length} bytes still busy after "
                                f"{waited} ns")
            await self.t.sleep_ns(self.poll_ns)
            waited += self.poll_ns

    async def read(self, addr, length, ram_addr):
        """Host memory to RAM; ``ram_addr`` must equal ``addr`` modulo the RAM row size."""
        return await self._run("DMA_RD", addr, length, ram_addr)

    async def write(self, ram_addr, length, addr):
        """RAM to host memory, any alignments."""
        return await self._run("DMA_WR", addr, length, ram_addr)

    def _check_window(self, offset, length):
        if offset < 0 or offset + length > self.ram_bytes:
            raise ValueError(f"{length} bytes at {offset} are outside the {self.ram_bytes}-byte RAM")

    async def ram_write(self, offset, data):
        """Store ``data`` in the DMA RAM at byte ``offset`` (while the exerciser is idle)."""
        self._check_window(offset, len(data))
        await self.t.write_block(BAR_REGS, DMA_RAM_WINDOW + offset, data)

    async def ram_read(self, offset, length):
        self._check_window(offset, length)
        return await self.t.read_block(BAR_REGS, DMA_RAM_WINDOW + offset, length)
