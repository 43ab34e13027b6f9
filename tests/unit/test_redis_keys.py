"""Key hygiene, on fakeredis: a Redis the harness did not start keeps every key but its own."""

from __future__ import annotations

import fakeredis
import pytest

from harness.errors import UsageError
from harness.providers import open_redis, provider_for
from harness.providers.base import RedisServer, redact_secrets, redact_url


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> fakeredis.FakeRedis:
    client = fakeredis.FakeRedis()
    monkeypatch.setattr(RedisServer, "client", lambda self: client)
    return client


def seed(client: fakeredis.FakeRedis) -> None:
    client.set("users:1", "alice")
    client.set("throttle-harness:abc:1::1:throttle_anon_127.0.0.1", "x")
    client.set("throttle-harness:abc:1:throttle:x", "y")
    client.set("throttle-harness:abc:10:other-run", "z")
    client.set("throttle-harness:abc:1*weird", "w")


def test_a_users_redis_loses_only_the_runs_keys(fake: fakeredis.FakeRedis) -> None:
    seed(fake)
    server = RedisServer(url="redis://127.0.0.1:6379/0", provider="url", owned=False, version="7")
    deleted = server.clear("throttle-harness:abc:1:")
    assert deleted == 2
    assert sorted(fake.keys()) == sorted(
        [b"throttle-harness:abc:10:other-run", b"throttle-harness:abc:1*weird", b"users:1"]
    )


def test_a_harness_started_redis_is_flushed(fake: fakeredis.FakeRedis) -> None:
    seed(fake)
    server = RedisServer(url="redis://127.0.0.1:1/0", provider="embedded", owned=True, version="7")
    server.clear("throttle-harness:abc:1:")
    assert fake.keys() == []


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ("redis://10.0.0.5:6379/0", "not a loopback address"),
        ("redis://example.com:6379", "not a loopback address"),
        ("memcached", "unknown --redis 'memcached'"),
    ],
)
def test_bad_redis_specs(spec: str, complaint: str) -> None:
    with pytest.raises(UsageError, match=complaint):
        provider_for(spec)


def test_loopback_urls_are_accepted() -> None:
    for url in ("redis://127.0.0.1:6379/0", "redis://:pw@localhost:1/2", "redis://[::1]:6379"):
        assert provider_for(url).name == "url"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://default:def@127.0.0.1:6379/0", "redis://default:***@127.0.0.1:6379/0"),
        ("redis://:s3cr3t@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("redis://127.0.0.1:6379/0?password=s3cr3t", "redis://127.0.0.1:6379/0?password=***"),
        (
            "redis://127.0.0.1/0?db=1&PassWord=s3cr3t&x=2",
            "redis://127.0.0.1/0?db=1&PassWord=***&x=2",
        ),
        ("redis://h/0?pass%77ord=s3cr3t", "redis://h/0?pass%77ord=***"),  # parse_qs decodes keys
        ("redis://h/0?ssl_password=s3cr3t", "redis://h/0?ssl_password=***"),
        ("redis://u:p%40ss@h:1/2?password=q", "redis://u:***@h:1/2?password=***"),
        ("redis://:pa/ss@127.0.0.1:1/0", "redis://:***@127.0.0.1:1/0"),  # unencoded '/'
        ("redis://:pa#ss@127.0.0.1:1/0", "redis://:***@127.0.0.1:1/0"),  # unencoded '#'
        ("redis://h/0?password=s3cr3t&name=a@b", "redis://h/0?password=***&name=a@b"),
        ("redis:/:s3cr3t@h", "redis:/:***@h"),  # a mistyped scheme still hides it
        ("redis://user@127.0.0.1/0", "redis://user@127.0.0.1/0"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("embedded", "embedded"),
        ("docker:redis:7-alpine", "docker:redis:7-alpine"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_secrets_keeps_the_user_name_and_scrubs_the_rest() -> None:
    url = "redis://default:def@127.0.0.1:6379/0?password=hunter2%21"
    text = f"cannot reach {url}; at {redact_url(url)}: auth def failed, hunter2! hunter2%21"
    assert redact_secrets(text, url) == (
        "cannot reach redis://default:***@127.0.0.1:6379/0?password=***; "
        "at redis://default:***@127.0.0.1:6379/0?password=***: auth *** failed, *** ***"
    )
    assert redact_secrets("untouched", "local") == "untouched"


@pytest.mark.parametrize(
    "spec",
    [
        "REDIS://:s3cr3tpw@127.0.0.1:1/0",  # redis-py wants the scheme in lowercase
        "redis://:s3cr3tpw@127.0.0.1:notaport/0",
        "redis://:s3cr3tpw@127.0.0.1:99999/0",
        "redis://127.0.0.1/0?password=s3cr3tpw&db=x",
        "redis://:s3cr3tpw@10.0.0.5:6379/0",
        "rediss:/:s3cr3tpw@127.0.0.1",
    ],
)
def test_bad_redis_urls_never_show_the_password(spec: str) -> None:
    with pytest.raises(UsageError) as caught:
        provider_for(spec)
    assert "s3cr3tpw" not in caught.value.message


def test_require_docker_does_not_show_the_password() -> None:
    with pytest.raises(UsageError, match="Docker is required") as caught:
        open_redis("redis://:s3cr3tpw@127.0.0.1:1/0", require_docker=True)
    assert "s3cr3tpw" not in caught.value.message


def test_a_server_never_shows_its_url_in_its_repr() -> None:
    server = RedisServer(
        url="redis://:s3cr3tpw@127.0.0.1:1/0", provider="url", owned=False, version="7"
    )
    assert "s3cr3tpw" not in repr(server)
