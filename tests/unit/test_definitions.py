"""The definitions package on its own: the metadata schema and the DMA RAM map."""

import copy

import pytest

from hdl.config import VARIANTS
from sdxi_defs.metadata import MetadataError, validate
from sdxi_defs.ram_map import BATCH, BUFFERS, IMAGE, READ_SLOTS, SLOT_BYTES, RamLayout
from sdxi_defs.regmap import DMA_RAM_BYTES


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_writes_metadata_that_follows_the_schema(variant):
    meta = VARIANTS[variant].metadata()
    assert validate(meta) is meta


@pytest.mark.parametrize("path, value, message", [
    (("sdxi", "cap0"), None, "sdxi_engine.json.sdxi: key 'cap0' missing"),
    (("sdxi", "cap0"), 0x1234, "sdxi_engine.json.sdxi.cap0: a hexadecimal string"),
    (("pci", "vendor_id"), "10ee", "sdxi_engine.json.pci.vendor_id: a hexadecimal string"),
    (("pcie", "lanes"), True, "sdxi_engine.json.pcie.lanes: an integer expected"),
    (("pcie", "straddle", "rc"), 3, "sdxi_engine.json.pcie.straddle.rc: 0 or 2 or 4 expected"),
    (("pcie", "straddle", "rc"), False, "sdxi_engine.json.pcie.straddle.rc: 0 or 2 or 4"),
    (("pcie", "client_tag"), 1, "sdxi_engine.json.pcie.client_tag: bool expected"),
    (("bars",), [], "sdxi_engine.json.bars: a non-empty list expected"),
])
def test_schema_names_what_is_wrong(path, value, message):
    meta = copy.deepcopy(VARIANTS["default"].metadata())
    parent = meta
    for key in path[:-1]:
        parent = parent[key]
    if value is None:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    with pytest.raises(MetadataError) as info:
        validate(meta)
    assert str(info.value).startswith(message), str(info.value)


@pytest.mark.parametrize("row_bytes", [32, 64])
def test_ram_map_regions_are_disjoint_aligned_and_fit(row_bytes):
    layout = RamLayout(row_bytes)
    regions = layout.regions()
    for before, after in zip(regions, regions[1:]):
        assert before.end <= after.start, (before, after)
    assert all(r.start % 64 == 0 and r.size % row_bytes == 0 for r in regions)
    assert regions[-1].end == layout.bytes <= DMA_RAM_BYTES
    by_name = {r.name: r for r in regions}
    assert by_name["slots"].size == READ_SLOTS * SLOT_BYTES
    assert by_name["fill"].size == IMAGE and by_name["desc"].size == 64 * BATCH * BUFFERS
    stage = by_name["stage"]
    for addr in (layout.zero, layout.flags_ok, layout.flags_err, layout.states,
                 layout.read_index, layout.errlog):
        assert stage.start <= addr < stage.end


def test_ram_map_refuses_other_rows():
    with pytest.raises(ValueError, match="rows are 32 or 64 bytes, not 48"):
        RamLayout(48)
