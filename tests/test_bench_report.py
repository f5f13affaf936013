"""``./sdxi bench report``'s second half: the plots drawn from a report's CSV files (the ones
of docs/bench/, written by a run of the report), without a simulator."""

import shutil
from pathlib import Path

from sim.bench_report import link_ceiling, plot

DOCS = Path(__file__).resolve().parent.parent / "docs" / "bench"


def test_plots_are_drawn_from_the_csv_files(tmp_path):
    for csv_file in DOCS.glob("*.csv"):
        shutil.copy(csv_file, tmp_path)
    paths = plot(tmp_path)
    assert [p.name for p in paths] == ["throughput.png", "queue_depth.png", "spaces.png"]
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000


def test_ceiling_follows_the_tlp_size():
    assert link_ceiling("copy", 64) < link_ceiling("copy", 256) < link_ceiling("copy", 1 << 20)
    assert link_ceiling("write", 100) == link_ceiling("write", 64)
    assert link_ceiling("read", 1 << 20) == link_ceiling("read", 512)
