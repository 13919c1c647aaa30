"""service/rest/inputs.py: base64 and data URLs, option merging, declared types against the bytes."""

from __future__ import annotations

import base64

import pytest

from service.errors import ServiceError
from service.rest.inputs import check_declared_type, decode_base64, merge_options
from service.schemas import DetectOptions

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_base64_with_or_without_a_data_url_prefix() -> None:
    text = base64.b64encode(b"pixels").decode()
    assert decode_base64(text) == decode_base64(f"data:image/png;base64,{text}") == b"pixels"
    with pytest.raises(ServiceError) as caught:
        decode_base64("%%%")
    assert (caught.value.http_status, caught.value.code) == (400, "invalid_base64")


def test_options_set_in_the_body_win_and_unset_ones_keep_the_query() -> None:
    merged = merge_options(DetectOptions(score_threshold=0.2, max_faces=3), DetectOptions(score_threshold=0.9))
    assert (merged.score_threshold, merged.max_faces) == (0.9, 3)


def test_a_declared_type_must_match_known_bytes() -> None:
    check_declared_type("image/png", PNG_SIGNATURE + b"rest")
    check_declared_type("image/png", b"unknown bytes are left to the decoder")
    with pytest.raises(ServiceError) as caught:
        check_declared_type("image/jpeg", PNG_SIGNATURE + b"rest")
    assert (caught.value.http_status, caught.value.code) == (415, "content_type_mismatch")
