"""Address-space manager (AKeys, PASID page-table walker, TLB): arrives with its issue."""
