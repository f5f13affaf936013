"""PCIe side: UltraScale+ hard-block shims, the MMIO completer, MSI-X."""
