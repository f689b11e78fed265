"""``LayerClaims``: which targets of a fleet may start while others run, so that no shared layer is read twice."""

from __future__ import annotations

from muslcheck.fleet import LayerClaims


def test_targets_on_one_base_wait_for_the_first_and_unrelated_ones_do_not() -> None:
    blobs = [("base", "a"), ("base", "b"), ("other",), ("base", "c"), ()]
    claims = LayerClaims([0, 1, 3, 2, 4], blobs)
    assert claims.ready() == [0, 2, 4]  # 1 and 3 wait for the base 0 reads
    assert claims.ready() == []
    claims.finished(2)
    assert claims.ready() == []
    claims.finished(0)
    assert claims.ready() == [1, 3]  # the base is in the store now: both at once (their own layers are theirs)
    assert not claims


def test_a_layer_shared_by_later_targets_only_is_claimed_by_the_first_of_them() -> None:
    blobs = [("base", "app"), ("base", "app", "x"), ("base", "y")]
    claims = LayerClaims([0, 1, 2], blobs)
    assert claims.ready() == [0]
    claims.finished(0)
    assert claims.ready() == [1, 2]  # nothing left unread that both share


def test_a_target_whose_scan_failed_leaves_its_layers_to_the_next() -> None:
    """A failed scan may not have stored the layer: the next target reads it, and only one at a time does."""
    blobs = [("base",), ("base",), ("base",)]
    claims = LayerClaims([0, 1, 2], blobs)
    assert claims.ready() == [0]
    claims.finished(0)
    assert claims.ready() == [1, 2]  # finished counts as read: the store is the judge (a miss reads it again)
    assert claims.ready() == []
