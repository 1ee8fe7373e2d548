"""pydist-key: make, check or write the console key (the ``setKey("...")`` line).

Usage: ``pydist-key`` prints a fresh line (as the console's makeKey());
``pydist-key --check FILE`` says whether the key the config would use is a
valid 32-byte key (exit 0) or not (exit 1); ``pydist-key --write FILE``
replaces every setKey() line (or appends one), keeping ``FILE.bak``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys

from pydist.console import protocol

SETKEY = re.compile(r"""setKey\s*\(\s*(["'])(.*?)\1\s*\)""")


def effective_key(config: str) -> tuple[str | None, bytes | None, str | None]:
    """The setKey() argument dnsdist would keep at startup: (text, key, error).

    While the config loads, setKey is ignored once a key is set, so the first
    argument that decodes to a non-empty key wins.
    """
    first_error: str | None = None
    found: str | None = None
    for match in SETKEY.finditer(config):
        text = match.group(2)
        found = text
        try:
            key = protocol.decode_key(text)
        except (protocol.KeyDecodeError, IndexError) as exc:
            first_error = first_error or str(exc)
            continue
        if key:
            return text, key, None
    return found, None, first_error


def check(path: str) -> int:
    """Report whether ``path`` configures a usable console key."""
    try:
        with open(path, encoding="utf-8") as f:
            config = f.read()
    except OSError as exc:
        print(f"Unable to read configuration from '{path}': {exc.strerror}", file=sys.stderr)
        return 1
    text, key, error = effective_key(config)
    if text is None:
        print(f"{path}: no setKey() directive")
        return 1
    if key is None:
        print(f"{path}: {error or 'empty key'}")
        return 1
    if not protocol.is_valid_key(key):
        print(f"{path}: invalid console key ({len(key)} bytes, 32 needed)")
        return 1
    print(f"{path}: valid console key")
    return 0


def write(path: str) -> int:
    """Put a fresh setKey() line into ``path`` in place, keeping a ``.bak`` copy."""
    try:
        with open(path, encoding="utf-8") as f:
            config = f.read()
        shutil.copy2(path, path + ".bak")
    except OSError as exc:
        print(f"Unable to read configuration from '{path}': {exc.strerror}", file=sys.stderr)
        return 1
    line = protocol.make_key_line()
    updated, count = SETKEY.subn(lambda _m: line, config)
    if count == 0:
        updated = config + ("" if config.endswith("\n") or not config else "\n") + line + "\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write(updated)
    print(line)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pydist-key`` console script."""
    parser = argparse.ArgumentParser(prog="pydist-key", description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", metavar="FILE", help="check the config's setKey()")
    group.add_argument("--write", metavar="FILE", help="write a fresh setKey() into FILE")
    args = parser.parse_args(argv)
    if args.check:
        return check(args.check)
    if args.write:
        return write(args.write)
    print(protocol.make_key_line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
