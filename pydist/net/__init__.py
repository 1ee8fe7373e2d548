"""Socket helpers shared by the frontends and the backend layer."""
