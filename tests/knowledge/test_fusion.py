"""Reciprocal rank fusion: the arithmetic, ties, weights, and what a list contributes once."""

from __future__ import annotations

import pytest

from knowledge.retrieval import reciprocal_rank_fusion


def test_scores_are_the_sum_of_reciprocal_ranks() -> None:
    fused = dict(reciprocal_rank_fusion([["a", "b"], ["b", "c"]], k=60))
    assert fused == pytest.approx({"a": 1 / 61, "b": 1 / 62 + 1 / 61, "c": 1 / 62})


def test_an_item_found_by_both_lists_beats_items_found_by_one() -> None:
    assert [key for key, _ in reciprocal_rank_fusion([["v1", "both"], ["t1", "both"]])][0] == "both"


def test_ties_keep_first_seen_order() -> None:
    assert [key for key, _ in reciprocal_rank_fusion([["a"], ["b"]])] == ["a", "b"]


def test_weights_scale_a_list() -> None:
    assert [key for key, _ in reciprocal_rank_fusion([["a"], ["b"]], weights=[0.5, 1.0])] == ["b", "a"]


def test_a_repeated_id_in_one_list_counts_once_at_its_best_rank() -> None:
    assert dict(reciprocal_rank_fusion([["a", "a", "b"]], k=0)) == pytest.approx({"a": 1.0, "b": 1 / 2})


def test_empty_lists_fuse_to_nothing_and_mismatched_weights_are_refused() -> None:
    assert reciprocal_rank_fusion([[], []]) == []
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([["a"]], weights=[1.0, 2.0])
