"""pydist-compare: run one dnsdist config on real dnsdist and on pydist, replay traffic, diff."""
