"""serving.rollout: canary split, shadow, blue-green promote, rollback, on real files."""
import json
import os
import subprocess
import sys
import threading

import pytest

from serving import models_config
from serving.models_config import CANARY, STABLE, ModelEntry
from serving.rollout import (
    NoVersionsError,
    RolloutController,
    RolloutError,
    RouteVersionError,
    UnknownLabelError,
    UnknownVersionError,
    canary_bucket,
)
from serving.routing import Route

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REQUEST_IDS = [f"req-{i:05d}" for i in range(2000)]


class Disk:
    """The versions 'on disk', changeable by a test like a push or a cleanup."""

    def __init__(self, *versions: int) -> None:
        self.versions = list(versions)

    def __call__(self):
        return list(self.versions)


def make(tmp_path, disk, **kwargs):
    return RolloutController(str(tmp_path / "models.config"), str(tmp_path / "rollout.json"), "taxi",
                             disk, base_path=str(tmp_path / "taxi"), **kwargs)


def labels(tmp_path):
    return models_config.read(str(tmp_path / "models.config"))["taxi"].labels


@pytest.fixture
def disk():
    return Disk(1, 2, 3)


def test_bootstrap_makes_the_newest_version_stable_and_writes_models_config(tmp_path, disk):
    controller = make(tmp_path, disk)
    assert not (tmp_path / "models.config").exists()
    route = controller.route("r1")
    assert route == Route(primary=3, shadow=None, reason="stable")
    assert labels(tmp_path) == {STABLE: 3}
    # Pinned, so that real TF Serving keeps the stable version loaded when a newer one is pushed.
    assert models_config.read(str(tmp_path / "models.config"))["taxi"].versions == (3,)
    assert controller.state().stable == 3 and controller.state().history == ()


def test_bootstrap_keeps_other_models_and_needs_a_version_on_disk(tmp_path):
    other = ModelEntry("other", "/models/other", versions=(4,), labels={STABLE: 4})
    models_config.write(str(tmp_path / "models.config"), [other])
    empty = make(tmp_path, Disk())
    with pytest.raises(NoVersionsError, match="no version on disk"):
        empty.route("r1")
    make(tmp_path, Disk(7)).route("r1")
    entries = models_config.read(str(tmp_path / "models.config"))
    assert entries["other"] == other and entries["taxi"].labels == {STABLE: 7}


def test_missing_models_config_without_base_path_is_a_clear_error(tmp_path, disk):
    controller = RolloutController(str(tmp_path / "models.config"), str(tmp_path / "s.json"), "taxi", disk)
    with pytest.raises(RolloutError, match="does not exist") as error:
        controller.state()
    assert error.value.field == "models_config"


@pytest.mark.parametrize("percent", [10, 50])
def test_canary_split_is_within_5_points_over_2000_requests(tmp_path, disk, percent):
    controller = make(tmp_path, disk)
    controller.promote(2)  # stable 2, so that the default canary (newest non-stable) is 3
    state = controller.canary(percent=percent)
    assert (state.stable, state.canary, state.canary_percent) == (2, 3, percent)
    assert labels(tmp_path) == {STABLE: 2, CANARY: 3}
    routes = [controller.route(rid) for rid in REQUEST_IDS]
    share = 100.0 * sum(r.primary == 3 for r in routes) / len(routes)
    assert abs(share - percent) <= 5, share
    assert {r.reason for r in routes if r.primary == 3} == {"canary"}
    assert {r.reason for r in routes if r.primary == 2} == {"stable"}
    # Deterministic: the same id goes the same way, in another instance too.
    again = make(tmp_path, disk)
    assert [again.route(rid).primary for rid in REQUEST_IDS[:200]] == [r.primary for r in routes[:200]]


def test_canary_bucket_is_uniform_and_stable():
    assert canary_bucket("abc") == canary_bucket("abc")
    buckets = [canary_bucket(rid) for rid in REQUEST_IDS]
    assert all(0 <= b < 100 for b in buckets)
    assert 45 <= sum(b < 50 for b in buckets) / 20 <= 55


def test_canary_0_and_100_percent(tmp_path, disk):
    controller = make(tmp_path, disk)
    controller.canary(1, percent=0)
    assert {controller.route(rid).primary for rid in REQUEST_IDS[:300]} == {3}
    controller.canary(1, percent=100)
    assert {controller.route(rid).primary for rid in REQUEST_IDS[:300]} == {1}


def test_explicit_version_and_label_win_over_the_split(tmp_path, disk):
    controller = make(tmp_path, disk)
    controller.canary(2, percent=100)
    assert controller.route("r", explicit_version=1) == Route(1, None, "version")
    assert controller.route("r", explicit_label=STABLE) == Route(3, None, f"label:{STABLE}")
    assert controller.route("r", explicit_label=CANARY) == Route(2, None, f"label:{CANARY}")
    with pytest.raises(UnknownLabelError, match="no version label 'blue'") as error:
        controller.route("r", explicit_label="blue")
    assert (error.value.field, error.value.label) == ("label", "blue")
    # a request's missing version (the gateway's 404) is told from an admin change's (400)
    with pytest.raises(RouteVersionError, match="no version 9 on disk") as error:
        controller.route("r", explicit_version=9)
    assert (error.value.field, error.value.model, error.value.version) == ("version", "taxi", 9)
    with pytest.raises(UnknownVersionError, match="no version 9 on disk") as error:
        controller.shadow(9)
    assert not isinstance(error.value, RouteVersionError)
    with pytest.raises(RolloutError, match="either a version or a label"):
        controller.route("r", explicit_version=1, explicit_label=STABLE)


def test_shadow_is_attached_to_every_route_but_never_to_itself(tmp_path, disk):
    controller = make(tmp_path, disk)
    state = controller.shadow()  # newest non-stable: 2
    assert state.shadow == 2 and state.stable == 3
    routes = [controller.route(rid) for rid in REQUEST_IDS[:100]]
    assert {(r.primary, r.shadow) for r in routes} == {(3, 2)}
    assert controller.route("r", explicit_version=1) == Route(1, 2, "version")
    assert controller.route("r", explicit_version=2) == Route(2, None, "version")
    # TF Serving must load the shadow version too.
    assert 2 in models_config.read(str(tmp_path / "models.config"))["taxi"].versions
    controller.clear()
    assert controller.route("r") == Route(3, None, "stable")


def test_canary_and_shadow_together(tmp_path, disk):
    controller = make(tmp_path, disk)
    controller.canary(2, percent=50)
    controller.shadow(1)
    routes = [controller.route(rid) for rid in REQUEST_IDS[:400]]
    assert {(r.primary, r.shadow) for r in routes} == {(3, 1), (2, 1)}
    with pytest.raises(RolloutError, match=r"both canary \(2\) and shadow \(1\)"):
        controller.promote()
    assert controller.promote(2).stable == 2


def test_promote_moves_stable_clears_candidates_and_records_history(tmp_path, disk):
    controller = make(tmp_path, disk)
    controller.promote(1)
    controller.canary(2, percent=20)
    controller.shadow(3)
    with pytest.raises(RolloutError):
        controller.promote()  # canary 2 and shadow 3 differ
    controller.clear()
    controller.canary(2, percent=20)
    state = controller.promote()
    assert (state.stable, state.canary, state.canary_percent, state.shadow) == (2, None, 0.0, None)
    assert state.history == (3, 1)
    assert labels(tmp_path) == {STABLE: 2}
    controller.shadow(3)
    assert controller.promote().stable == 3  # the shadow is promoted when there is no canary
    served = models_config.read(str(tmp_path / "models.config"))["taxi"].versions
    assert served == (2, 3)  # stable + previous stable, kept loaded for an instant rollback


def test_promote_is_one_atomic_switch_for_concurrent_readers(tmp_path, disk):
    """A reader polling models.config never sees a half-written file or no stable label."""
    controller = make(tmp_path, disk)
    controller.route("r")
    path = str(tmp_path / "models.config")
    seen, problems = set(), []
    stop = threading.Event()

    def read_loop():
        while not stop.is_set():
            try:
                entry = models_config.read(path)["taxi"]
            except Exception as error:  # a torn file would fail to parse
                problems.append(repr(error))
                continue
            if STABLE not in entry.labels:
                problems.append(f"no stable label: {entry}")
            seen.add(entry.labels.get(STABLE))

    readers = [threading.Thread(target=read_loop) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        for i in range(60):  # stable 3 -> 1 -> 2 -> 3 -> 1 ...
            controller.promote(1 + i % 3)
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert problems == []
    assert seen == {1, 2, 3}


def test_rollback_restores_previous_then_goes_further_then_errors(tmp_path, disk):
    controller = make(tmp_path, disk)
    controller.promote(1)       # stable 1, history (3,)
    controller.promote(2)       # stable 2, history (3, 1)
    controller.canary(3, percent=50)
    state = controller.rollback()
    assert (state.stable, state.history, state.canary, state.shadow) == (1, (3,), None, None)
    assert labels(tmp_path) == {STABLE: 1}
    assert {controller.route(rid).primary for rid in REQUEST_IDS[:200]} == {1}
    assert controller.rollback().stable == 3
    with pytest.raises(RolloutError, match="no previous stable version") as error:
        controller.rollback()
    assert error.value.field == "history"
    assert labels(tmp_path) == {STABLE: 3}  # a failed rollback changes nothing


def test_rollback_skips_versions_deleted_from_disk(tmp_path, disk):
    controller = make(tmp_path, disk)
    controller.promote(1)
    controller.promote(2)       # history (3, 1)
    disk.versions = [2]         # versions 1 and 3 were retired
    with pytest.raises(RolloutError, match=r"no previous stable version is still on disk") as error:
        controller.rollback()
    assert error.value.field == "history"
    disk.versions = [2, 3]      # only version 1 was retired
    state = controller.rollback()
    assert (state.stable, state.history) == (3, ())


@pytest.mark.parametrize("call, field, message", [
    (lambda c: c.canary(9), "version", "no version 9 on disk"),
    (lambda c: c.canary(2, percent=150), "percent", r"expected a number in \[0, 100\], got 150"),
    (lambda c: c.canary(2, percent=-1), "percent", "got -1"),
    (lambda c: c.canary(2, percent=float("nan")), "percent", "got nan"),
    (lambda c: c.canary(2, percent="10"), "percent", "got '10'"),
    (lambda c: c.canary(3), "version", "already stable"),
    (lambda c: c.canary(0), "version", "positive integer"),
    (lambda c: c.shadow(True), "version", "positive integer"),
    (lambda c: c.promote(), "version", "no canary or shadow to promote"),
    (lambda c: c.promote(3), "version", "already stable"),
    (lambda c: c.promote(8), "version", "no version 8 on disk"),
    (lambda c: c.rollback(), "history", "no previous stable version"),
])
def test_bad_inputs_raise_rollout_error_naming_the_field(tmp_path, disk, call, field, message):
    controller = make(tmp_path, disk)
    before = controller.state()
    with pytest.raises(RolloutError, match=message) as error:
        call(controller)
    assert error.value.field == field
    assert str(error.value).startswith(f"{field}: ")
    assert controller.state() == before


def test_no_candidate_to_canary_when_only_stable_is_on_disk(tmp_path):
    controller = make(tmp_path, Disk(5))
    with pytest.raises(RolloutError, match=r"other than stable \(5\)") as error:
        controller.canary()
    assert error.value.field == "version"


def test_state_survives_a_restart(tmp_path, disk):
    first = make(tmp_path, disk, clock=lambda: 1234.5)
    first.promote(1)
    first.canary(2, percent=25)
    first.shadow(3)
    second = make(tmp_path, disk)
    state = second.state()
    assert (state.stable, state.canary, state.canary_percent, state.shadow, state.history) == (1, 2, 25.0, 3, (3,))
    assert state.updated_at == 1234.5
    assert state.to_dict()["history"] == [3]
    json.dumps(state.to_dict())
    assert second.rollback().stable == 3


def test_changes_by_another_instance_are_picked_up(tmp_path, disk):
    gateway = make(tmp_path, disk)
    cli = make(tmp_path, disk)
    assert gateway.route("r").primary == 3
    cli.promote(1)
    assert gateway.route("r").primary == 1
    cli.canary(2, percent=100)
    assert gateway.route("r") == Route(2, None, "canary")
    cli.shadow(3)
    assert gateway.route("r") == Route(2, 3, "canary")
    # And the other way round: the gateway's instance changes, the CLI's sees it.
    gateway.rollback()
    assert cli.state().stable == 3


@pytest.mark.integration
def test_changes_by_another_process_are_picked_up(tmp_path, disk):
    gateway = make(tmp_path, disk)
    assert gateway.route("r").primary == 3
    script = (
        "import sys\n"
        "from serving.rollout import RolloutController\n"
        "c = RolloutController(sys.argv[1], sys.argv[2], 'taxi', lambda: [1, 2, 3])\n"
        "c.promote(2)\n"
        "c.canary(1, percent=100)\n")
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "models.config"),
                    str(tmp_path / "rollout.json")], cwd=REPO, check=True, timeout=60)
    assert gateway.route("r") == Route(1, None, "canary")
    assert gateway.state().history == (3,)


def test_a_hand_edited_stable_label_is_taken_as_a_promote(tmp_path, disk):
    controller = make(tmp_path, disk)
    controller.route("r")  # stable 3
    entry = models_config.read(str(tmp_path / "models.config"))["taxi"]
    models_config.write(str(tmp_path / "models.config"), [entry.with_label(STABLE, 1)])
    assert controller.route("r").primary == 1
    assert controller.state().history == (3,)
    assert controller.rollback().stable == 3


def test_corrupt_state_file_is_a_clear_error(tmp_path, disk):
    controller = make(tmp_path, disk)
    controller.canary(2)
    (tmp_path / "rollout.json").write_text("{not json")
    with pytest.raises(RolloutError, match="rollout.json: not valid JSON") as error:
        make(tmp_path, disk).state()
    assert error.value.field == "state"
    (tmp_path / "rollout.json").write_text(json.dumps({"model": "taxi", "canary_percent": 300}))
    with pytest.raises(RolloutError, match="percent: expected a number"):
        make(tmp_path, disk).state()
    (tmp_path / "rollout.json").write_text(json.dumps({"model": "liar"}))
    with pytest.raises(RolloutError, match="model 'liar'"):
        make(tmp_path, disk).state()


def test_concurrent_changes_from_threads_are_serialized(tmp_path, disk):
    """Two instances (as two processes would) promoting at once never lose a history entry."""
    a, b = make(tmp_path, disk), make(tmp_path, disk)
    a.route("r")
    errors = []

    def flip(controller, n):
        for _ in range(n):
            try:
                stable = controller.state().stable
                controller.promote(1 if stable != 1 else 2)
            except RolloutError as error:  # the other thread may have promoted the same version
                errors.append(str(error))

    threads = [threading.Thread(target=flip, args=(c, 20)) for c in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    history = a.state().history
    assert len(history) + len(errors) == 40
    assert all(e.startswith("version: version") and "already stable" in e for e in errors)


def test_versions_on_disk_lists_numeric_directories_only(tmp_path):
    from serving.rollout import versions_on_disk

    assert versions_on_disk(str(tmp_path / "missing")) == []
    for name in ("1700000000", "3", ".staging-1700000001", "tmp"):
        (tmp_path / name).mkdir()
    (tmp_path / "42").write_text("a file, not a version")
    assert versions_on_disk(str(tmp_path)) == [3, 1700000000]
    controller = RolloutController(str(tmp_path / "models.config"), str(tmp_path / "r.json"), "taxi",
                                   lambda: versions_on_disk(str(tmp_path)), base_path=str(tmp_path))
    assert controller.route("r").primary == 1700000000


def test_history_is_bounded(tmp_path, disk):
    from serving.rollout import MAX_HISTORY

    controller = make(tmp_path, disk)
    for i in range(MAX_HISTORY + 10):
        controller.promote(1 + i % 3)
    assert len(controller.state().history) == MAX_HISTORY


def test_routing_with_a_hand_written_models_config_writes_nothing(tmp_path, disk):
    """A gateway only reading the rollout never rewrites models.config (TF Serving's file) or creates state."""
    path = tmp_path / "models.config"
    models_config.write(str(path), [ModelEntry("taxi", str(tmp_path / "taxi"), labels={STABLE: 2})])
    before = os.stat(path)
    controller = make(tmp_path, disk)
    assert [controller.route(rid).primary for rid in REQUEST_IDS[:50]] == [2] * 50
    assert controller.state().stable == 2
    after = os.stat(path)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert not (tmp_path / "rollout.json").exists()
    # A hand edit is still noticed and recorded, so rollback works.
    models_config.write(str(path), [ModelEntry("taxi", str(tmp_path / "taxi"), labels={STABLE: 3})])
    assert controller.route("r").primary == 3
    assert controller.state().history == (2,)
    assert controller.rollback().stable == 2
