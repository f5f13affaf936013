"""Address-space manager: the in-memory formats (``page_tables``) and the page-table walker
(``walker``). The TLB and the datapath's use of them come with the rest of its issue."""
