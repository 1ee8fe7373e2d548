"""Rules: selectors, actions and the chains that hold them (dnsdist-rules.hh, -lua-actions.cc)."""
