"""If-None-Match matching (RFC 9110 §13.1.2: weak comparison, `*`, lists)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from admin_api.etags import none_match

_TAGS = st.text(alphabet="0123456789abcdef", min_size=1, max_size=32).map(lambda h: f'"{h}"')


@given(current=_TAGS, others=st.lists(_TAGS, max_size=4), weak=st.booleans(), spaces=st.sampled_from(["", " ", "  "]))
def test_a_list_naming_the_tag_matches_and_one_without_it_does_not(current: str, others: list[str], weak: bool,
                                                                     spaces: str) -> None:
    offered = [t for t in others if t != current]
    named = (spaces + ",").join([*offered, ("W/" if weak else "") + current])
    assert none_match(named, current)
    assert not none_match(",".join(offered) or '"none-at-all"', current)


def test_a_star_matches_any_tag() -> None:
    assert none_match("*", '"abc"') and none_match(' "x", * ', '"abc"')
