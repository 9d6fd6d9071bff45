"""Issue 16, item 14: times are stored as aware UTC and compared as times, old naive values included."""

from datetime import UTC, datetime, timedelta, timezone

from coatflow.launchers.config import CampaignConfig
from coatflow.launchers.stores import JOBS, make_store
from coatflow.workflows.builders import newest_by_formula
from coatflow.workflows.timestamps import is_newer, newest, utc_iso, utc_time


def test_jobflow_naive_local_completed_at_is_stored_as_aware_utc(tmp_path):
    store = make_store(CampaignConfig(store={"path": str(tmp_path / "s")}), JOBS)
    store.connect()
    local = datetime.now()  # what jobflow writes: naive local time
    store.update([{"uuid": "u", "index": 1, "completed_at": local.isoformat()}], key=["uuid", "index"])
    stored = datetime.fromisoformat(store.query_one({})["completed_at"])
    store.close()
    assert stored.utcoffset() == timedelta(0) and stored == local.astimezone(UTC)


def test_comparisons_are_by_time_not_by_string():
    tokyo = datetime(2026, 12, 3, 20, 0, tzinfo=timezone(timedelta(hours=9))).isoformat()  # 11:00 UTC
    utc = datetime(2026, 12, 3, 12, 0, tzinfo=UTC).isoformat()
    assert tokyo > utc and is_newer(utc, tokyo)  # the string order is wrong, the time order is not
    assert newest([tokyo, None, "", "garbage", utc]) == utc
    assert is_newer(utc, None) and not is_newer(None, utc) and not is_newer("garbage", None)
    naive = "2026-12-03T12:00:00"  # an old document: read as this machine's local time
    assert utc_time(naive) == datetime(2026, 12, 3, 12, 0).astimezone(UTC)
    assert utc_iso(naive).endswith("+00:00") and utc_time(utc_iso(naive)) == utc_time(naive)
    assert utc_time(datetime(2026, 1, 1), naive="utc") == datetime(2026, 1, 1, tzinfo=UTC)  # pymongo's dates


def test_the_builder_picks_the_newest_document_across_time_zones(tmp_path):
    store = make_store(CampaignConfig(store={"path": str(tmp_path / "s")}), JOBS)
    store.connect()
    tokyo = datetime(2026, 12, 3, 20, 0, tzinfo=timezone(timedelta(hours=9))).isoformat()  # older
    utc = datetime(2026, 12, 3, 12, 0, tzinfo=UTC).isoformat()
    store.update([{"uuid": u, "index": 1, "completed_at": t, "output": {"formula": "LiF"},
                   "metadata": {"coatflow": {"task": "slab_ip"}}} for u, t in (("new", utc), ("old", tokyo))],
                 key=["uuid", "index"])
    assert newest_by_formula(store, "slab_ip")["LiF"]["uuid"] == "new"
    store.close()
