"""dnsdist's web server: Prometheus /metrics, the JSON API, the dashboard (facts §7).

settings.WebSettings is what the config declared (kept on the Registry as `web`);
server.WebServer serves it on the engine's loop; router.Router is the sans-I/O application.
"""
