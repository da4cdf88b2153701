"""Settings: CLI beats ini beats default, and a bad value names the option and what it expects."""

from __future__ import annotations

import pytest

from pytest_dockerimg.settings import OPTIONS, OptionSpec, Settings, SettingsError


def resolve(cli: dict[str, object] | None = None, ini: dict[str, object] | None = None) -> Settings:
    cli = cli or {}
    ini = ini or {}
    return Settings.resolve(lambda option: cli.get(option.flag), lambda option: ini.get(option.ini, ""))


def test_defaults_choose_the_bind_host_by_engine_and_kill_at_teardown():
    settings = resolve()
    assert settings == Settings()
    assert settings.bind_host is None  # 127.0.0.1 for a local engine, 0.0.0.0 for a remote one
    assert settings.stop_timeout == 0.0
    assert settings.keep_containers == "never"
    assert settings.registry_image == "registry:2"
    assert settings.registry_url is None


def test_every_option_has_an_ini_twin_named_docker_something():
    names = {option.flag: option.ini for option in OPTIONS}
    assert names["--no-build-cache"] == "docker_no_build_cache"
    assert names["--docker-pull"] == "docker_pull"
    assert names["--keep-containers"] == "docker_keep_containers"
    assert names["--docker-registry-url"] == "docker_registry_url"
    assert len(set(names.values())) == len(OPTIONS)


def test_cli_wins_over_ini():
    settings = resolve(
        cli={"--docker-timeout": "5"}, ini={"docker_timeout": "99", "docker_stop_timeout": "2"}
    )
    assert settings.timeout == 5.0
    assert settings.stop_timeout == 2.0


@pytest.mark.parametrize("text", ["true", "1", "yes", "on", "True"])
def test_ini_flags_read_true(text):
    assert resolve(ini={"docker_keep_images": text}).keep_images is True


@pytest.mark.parametrize(
    ("cli", "message"),
    [
        ({"--docker-timeout": "soon"}, "--docker-timeout: expected a number of seconds, got 'soon'"),
        ({"--docker-timeout": "0"}, "--docker-timeout: must be more than 0 seconds"),
        ({"--docker-timeout": "nan"}, "finite"),
        ({"--docker-stop-timeout": "-1"}, "--docker-stop-timeout: must not be negative"),
        ({"--keep-containers": "sometimes"}, "expected one of never, failed, always, got 'sometimes'"),
        ({"--docker-bind-host": "localhost"}, "--docker-bind-host: expected an IP address"),
        ({"--docker-registry-url": "no-port"}, "--docker-registry-url: expected HOST:PORT"),
        ({"--docker-registry-url": "host:99999"}, "--docker-registry-url: expected HOST:PORT"),
    ],
)
def test_bad_values_say_which_option_and_what_it_expects(cli, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve(cli=cli)


def test_bad_ini_flag_names_the_ini_key():
    with pytest.raises(SettingsError, match="docker_pull: expected true or false, got 'maybe'"):
        resolve(ini={"docker_pull": "maybe"})


def test_registry_url_accepts_an_http_prefix_and_ipv6():
    assert resolve(cli={"--docker-registry-url": "127.0.0.1:5000/"}).registry_url == "http://127.0.0.1:5000"
    assert (
        resolve(cli={"--docker-registry-url": "https://reg.example:443"}).registry_url
        == "https://reg.example:443"
    )
    assert resolve(cli={"--docker-registry-url": "[::1]:5000"}).registry_url == "http://[::1]:5000"


def test_bind_host_is_normalised():
    assert resolve(cli={"--docker-bind-host": "[::1]"}).bind_host == "::1"
    assert resolve(cli={"--docker-bind-host": "0.0.0.0"}).bind_host == "0.0.0.0"


def test_option_spec_ini_name():
    assert OptionSpec("--docker-x-y", "x", "text", None, "").ini == "docker_x_y"
    assert OptionSpec("--keep-x", "x", "text", None, "").ini == "docker_keep_x"


@pytest.mark.parametrize(
    ("given", "kept"),
    [("192.168.1.20", "192.168.1.20"), ("[::1]", "::1"), ("docker.example.com", "docker.example.com")],
)
def test_reach_host_takes_an_address_or_a_host_name(given, kept):
    assert resolve(cli={"--docker-reach-host": given}).reach_host == kept


@pytest.mark.parametrize("bad", ["http://10.0.0.1", "10.0.0.1:2375", "two words"])
def test_reach_host_rejects_urls_and_ports(bad):
    with pytest.raises(SettingsError, match="--docker-reach-host: expected a host name or an IP address"):
        resolve(cli={"--docker-reach-host": bad})
