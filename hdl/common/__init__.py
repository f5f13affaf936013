"""SDXI-agnostic building blocks: nothing here imports from pcie/, sdxi/ or mmu/."""
