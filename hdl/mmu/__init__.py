"""Address-space manager: the in-memory formats (``page_tables``), the page-table walker
(``walker``) and the PASID-tagged TLB (``tlb``). Their registers and the datapath's use of
translations come with the rest of their issue."""
