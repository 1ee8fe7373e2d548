"""The rules test bench (`pydist-test`): a config's query rules, pools, policies and cache run
on made-up queries with no network, each query traced (the rules that matched, the pool and
server chosen, the answer or the drop) and checked against what the case expects."""
