import pytest

from relaygate.config import ConfigError, load_settings


def test_defaults_match_the_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RELAYGATE_ENV", "RELAYGATE_DATABASE_URL", "RELAYGATE_REDIS_URL", "RELAYGATE_PORT"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert (settings.env, settings.host, settings.port) == ("dev", "127.0.0.1", 4000)
    assert settings.database_url == "sqlite+aiosqlite:///var/relaygate.db"
    assert settings.redis_url is None and not settings.cluster
    assert settings.token_ttl == 86400
    assert settings.allowed_origins is None  # dev accepts any origin
    assert settings.mail_adapter == "local" and settings.mail_from == "no-reply@relaygate.local"


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"RELAYGATE_ENV": "prod"}, "RELAYGATE_SECRET_KEY is required"),
        ({"RELAYGATE_ENV": "staging"}, "RELAYGATE_ENV"),
        ({"RELAYGATE_DATABASE_URL": "mysql://x/y"}, "RELAYGATE_DATABASE_URL"),
        ({"RELAYGATE_DATABASE_URL": "::not a url::"}, "RELAYGATE_DATABASE_URL"),
        ({"RELAYGATE_PORT": "http"}, "RELAYGATE_PORT"),
        ({"RELAYGATE_REDIS_URL": "localhost:6379"}, "RELAYGATE_REDIS_URL"),
        ({"RELAYGATE_SECRET_KEY": "short"}, "at least 32"),
    ],
)
def test_bad_settings_raise_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], fragment: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_prod_defaults_to_same_host_origin_and_lists_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAYGATE_ENV", "prod")
    monkeypatch.setenv("RELAYGATE_SECRET_KEY", "x" * 40)
    monkeypatch.setenv("RELAYGATE_HOST", "api.example.com")
    monkeypatch.setenv("RELAYGATE_CORS_ORIGINS", "https://a.example, https://b.example")
    settings = load_settings()
    assert settings.allowed_origins == ["//api.example.com"]
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert not settings.dev_routes
    assert "x" * 40 not in repr(settings)
