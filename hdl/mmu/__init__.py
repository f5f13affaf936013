"""Address-space manager: the page-table walker (``walker``), the PASID-tagged TLB (``tlb``)
and the translation unit that serves the context engine from them. The in-memory formats they
read are the definitions' (``sdxi_defs.page_tables``)."""
