"""The web server's Lua functions: dnsdist 1.7.3's error texts, warnings, and what they
record in registry.web (check-config mode: nothing is bound, webserver() stays quiet)."""
from __future__ import annotations

import pytest

from luaapi.runtime import ConfigError, LuaConfig
from pydist.registry import CHECK, Registry


def run(code: str) -> tuple[LuaConfig, list[str]]:
    logs: list[str] = []
    cfg = LuaConfig(Registry(CHECK, log=logs.append))
    cfg.run_code(code, "chunk")
    return cfg, logs


@pytest.mark.parametrize("code,message", [
    ('webserver("nonsense")', "Caught exception: Error parsing the bind address for the "
                              "webserver: Unable to convert presentation address 'nonsense'"),
    ("hashPassword()", "This function requires at least 1 parameter(s)"),
    ('hashPassword("x", 1000)', "Caught exception: Error setting the work factor to the scrypt "
                                "context to hash the supplied password"),
    ('hashPassword("x", "abc")', "Unable to convert parameter from string to N5boost8optionalImEE"),
])
def test_errors_read_like_dnsdist(code: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        run(code)
    assert e.value.lines[0].startswith(f'Fatal Lua error: [string "chunk"]:1: {message}')


def test_check_mode_records_without_binding_or_warning() -> None:
    cfg, logs = run('webserver("127.0.0.1:8083", "pw", "key", {}, "127.0.0.1")\n'
                    'webserver("[::1]")')
    web = cfg.registry.web
    assert web.address == ("::1", 0) and web.sock is None
    assert logs == [], "check-config prints only the OK line (corpus 56)"


def test_set_webserver_config_records_and_warns() -> None:
    cfg, logs = run('setWebserverConfig({password="pw", apiKey="k", acl="127.0.0.1, 10.0.0.0/8",'
                    ' statsRequireAuthentication=false, maxConcurrentConnections=7,'
                    ' hashPlaintextCredentials=true, customHeaders={["X-A"]="b"}})\n'
                    'h = hashPassword("pw2")\nsetWebserverConfig({password=h})\n'
                    'setAPIWritable(true, "/var/lib/dnsdist-api")')
    web = cfg.registry.web
    assert logs == [
        "Passing a plain-text password via the 'password' parameter to 'setWebserverConfig()' is "
        "not advised, please consider generating a hashed one using 'hashPassword()' instead.",
        "Passing a plain-text API key via the 'apiKey' parameter to 'setWebserverConfig()' is "
        "not advised, please consider generating a hashed one using 'hashPassword()' instead."]
    assert str(web.acl) == "10.0.0.0/8, 127.0.0.1/32"
    assert not web.stats_require_auth and web.max_connections == 7
    assert web.custom_headers == {"X-A": "b"} and web.api_writable
    assert web.api_key is not None and web.api_key.hashed is not None, "hashPlaintextCredentials"
    assert web.password is not None and web.password.verify("pw2") and not web.password.verify("pw")
