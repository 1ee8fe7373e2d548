"""What the config declared about reloading (`pydist.watchConfig`): part of the registry."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ReloadSettings:
    """watch: reload when the config file or an includeDirectory() file changes; the reload
    waits a random delay up to max_delay seconds so a fleet fed the same file by Ansible or a
    ConfigMap does not reload (and take its evaluation pause) in the same second."""
    watch: bool = False
    max_delay: float = 5.0
