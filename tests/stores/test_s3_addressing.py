"""Which endpoints get virtual-hosted requests: COS's, which refuse path-style for new buckets."""

from __future__ import annotations

import pytest

from runner.stores.s3 import S3ObjectStore, addressing_style


@pytest.mark.parametrize(
    ("endpoint", "style"),
    [
        ("https://cos.ap-guangzhou.myqcloud.com", "virtual"),
        ("https://cos.accelerate.myqcloud.com", "virtual"),
        ("https://cos.ap-beijing.tencentcos.cn", "virtual"),
        ("http://127.0.0.1:8333", "path"),
        ("https://s3.us-east-1.amazonaws.com", "path"),
        (None, "path"),
    ],
)
def test_addressing_style(endpoint: str | None, style: str) -> None:
    assert addressing_style(endpoint) == style


def test_a_cos_store_asks_virtual_hosted_names() -> None:
    store = S3ObjectStore(
        "https://cos.ap-guangzhou.myqcloud.com",
        "ap-guangzhou",
        credentials={"aws_access_key_id": "id", "aws_secret_access_key": "key"},
    )
    try:
        url = store.client.generate_presigned_url(
            "get_object", Params={"Bucket": "logs-1250000000", "Key": "a.txt"}
        )
        assert url.startswith("https://logs-1250000000.cos.ap-guangzhou.myqcloud.com/a.txt?")
        assert store.fast is None  # the fast path speaks path-style only
    finally:
        store.close()
