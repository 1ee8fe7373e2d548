"""dnsdist's web server: Prometheus /metrics, the JSON API, the dashboard (facts §7).

settings.WebSettings is what the config declared (kept on the Registry as `web`);
server.WebServer serves it on the engine's loop; router.Router is the sans-I/O application.
"""
from pydist.web.credentials import Credential, WorkFactorError, hash_password
from pydist.web.server import WebServer, bind_web_socket
from pydist.web.settings import WebSettings

__all__ = ["Credential", "WebServer", "WebSettings", "WorkFactorError", "bind_web_socket",
           "hash_password"]
