"""What webserver()/setWebserverConfig()/setAPIWritable()/registerWebHandler() declared."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydist.dns.netmask import NetmaskGroup
from pydist.web.credentials import Credential

DEFAULT_WEB_ACL = ("127.0.0.1/32", "::1/128")
DEFAULT_MAX_CONNECTIONS = 100

# handler(request) -> (status, headers, body): a Lua function wrapped by luaapi, or Python.
WebHandler = Callable[[dict[str, Any]], tuple[int, dict[str, str], str]]


@dataclass
class WebSettings:
    """Facts §7 defaults. `sock` is the listening socket webserver() bound while serving."""
    address: tuple[str, int] | None = None
    password: Credential | None = None
    api_key: Credential | None = None
    acl: NetmaskGroup = field(default_factory=lambda: NetmaskGroup(DEFAULT_WEB_ACL))
    custom_headers: dict[str, str] | None = None
    stats_require_auth: bool = True
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    hash_plaintext: bool = False
    api_writable: bool = False
    api_config_dir: str = ""
    handlers: dict[str, WebHandler] = field(default_factory=dict)
    health_public: bool = False   # pydist.setHealthEndpoints{public=true}: probes without auth
    sock: Any = None

    def show(self) -> str:
        """showWebserverConfig() text, line for line as dnsdist 1.7.3 prints it (blank last)."""
        if self.custom_headers:
            headers = "\n" + "".join(f" - {k}: {v}\n" for k, v in
                                     sorted(self.custom_headers.items()))
        else:
            headers = "None\n"
        return ("Current web server configuration:\n"
                f"ACL: {self.acl}\n"
                f"Custom headers: {headers}"
                f"Statistics require authentication: {'yes' if self.stats_require_auth else 'no'}\n"
                f"Password: {'set' if self.password and not self.password.empty else 'unset'}\n"
                f"API key: {'set' if self.api_key and not self.api_key.empty else 'unset'}\n"
                f"API writable: {'yes' if self.api_writable else 'no'}\n"
                f"API configuration directory: {self.api_config_dir}\n"
                f"Maximum concurrent connections: {self.max_connections}\n\n")
